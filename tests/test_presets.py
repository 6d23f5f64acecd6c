"""Each seed method's ``paper`` and ``reference`` presets hold what the paper and the authors' code say, value by
value (the sentence, equation or line is cited beside each); presets are whole and select by name everywhere."""

import pytest

from jaxplain.errors import UsageError
from jaxplain.explainers import METHODS, SEED_METHODS, configure, get


def settings(spec):
    return configure(spec)[2]


def test_relabel_paper():
    s = settings("relabel:paper")
    assert s.num_samples == 1000  # 001: "generates 1000 synthetic images per input"
    assert s.neighbourhood == "decoded"  # 000, Fig. 2: the CNN re-labels the VAE's synthetic images themselves
    assert not s.adapt_noise  # 000: "perturbing the latent vector with random noise": no probe of scales
    assert s.soft_weight > 0 and s.hard_weight > 0  # 001: "distilling both soft and hard information"
    assert s.student_input == "image"  # 000 abstract: "learn a direct map from the input to the prediction"
    assert s.attribution == "magnitude"  # 000, Fig. 2: "the weights of the trained linear model can mark the location"
    assert s.holdout == 0.0 and s.l2 == 0.0  # no held-out share and no weight penalty in the paper's objective
    assert s.probe_shares == () and s.temperature == 1.0


def test_gfi_paper_and_reference():
    paper = settings("gfi:paper")
    assert paper.background == "noise"  # 002, eq. (1): "another noise background image p"
    assert paper.penalty_norm == 1  # 002, eqs. (2), (3): gamma ||w||_1 and delta ||w||_1
    assert paper.inversion_loss == "squared"  # 002, eq. (2): ||f^l(Phi(x, w)) - f^l(x)||^2, not divided
    reference = settings("gfi:reference")  # mndu/guided-feature-inversion, main.py
    assert (reference.steps, reference.inversion_steps) == (80, 11)  # --epochs 80; "if i < 11"
    assert (reference.learning_rate, reference.decay_every) == (1e-2, 10)  # Adam lr 1e-2; decay_lr 0.5 every 10
    assert reference.initial_weight == 0.1  # torch.ones(1, K) / 10
    assert reference.channel_weights == "non_negative"  # w.data.clamp_(0, 100000)
    assert (reference.inversion_penalty, reference.suppress_weight, reference.target_penalty) == (5.0, 1.0, 2.0)
    assert reference.penalty_norm == 2 and reference.inversion_loss == "relative"  # alpha_prior(w, 2); perceptual_loss
    assert reference.class_score == "probability"  # torch.nn.Softmax()(model(x_))[0][category]
    assert reference.mask_upsampling == "align_corners"  # torch.nn.UpsamplingBilinear2d
    assert reference.mask_normalisation == "over_max"  # (m - m.min()) / m.max()
    assert reference.background == "blur"  # ImageFilter.GaussianBlur(radius=11)


def test_dax_reference():
    s = settings("dax:reference")  # iiscleap/DAX, lime/lime_image.py and lime/student_ntw_learn.py
    assert s.num_samples == 3000  # explain_VOC.generate_explanation(num_samples=3000)
    assert s.segmentation == "quickshift"  # SegmentationAlgorithm('quickshift', kernel_size=4, max_dist=200, ratio=0.2)
    assert s.holdout == 0.1  # train_test_split(..., test_size=0.1, shuffle=False)
    assert (s.batch_size, s.learning_rate) == (16, 1e-3)  # BATCH_SIZE = 16; SGD(lr=1e-3, momentum=0.9, nesterov=True)
    assert s.averaged_epochs == 6  # masks recorded "if ind==0 and epoch>=0 and epoch<=5"
    assert s.colour_augmentation  # rgb2hsv on 3/5 or 2/5 of each batch and on the intact input
    assert s.init == "torch" and s.mask_normalisation == "batch"  # PyTorch modules; out_mask.min()/max() of the batch
    assert (s.mask_features, s.mask_kernel, s.pool, s.hidden, s.dropout) == (32, 7, 8, 512, 0.1)
    assert s.complement == "joint" and s.masked_fill == "zero"  # loss1 - 1.0 * loss5 on x * m and x * (1 - m)
    assert s.resolution is None  # Resize((128, 128)): None resolves to 128 px at 224
    assert settings("dax:paper") == s  # the paper states no values: its preset is the authors' code's


def test_surrogate_paper():
    assert settings("surrogate:paper").student == "scratch"  # 004: a separate attentive student, not the teacher
    assert settings("surrogate:paper").refine_steps == 0  # 004: one forward pass per map
    assert settings("surrogate:paper").l1 == 1e-5  # 004, Implementation Details: lambda = 1e-5


def test_rise_and_lime_reference():
    rise = settings("rise:reference")  # eclique/RISE Saliency.ipynb: generate_masks(N=6000, s=8, p1=0.1)
    assert (rise.num_masks, rise.grid, rise.p, rise.mask_resize) == (6000, 8, 0.1, "reflect")
    assert settings("lime:reference").segmentation == "quickshift"  # lime_image's default segmentation_fn


@pytest.mark.parametrize("name", SEED_METHODS)
def test_every_seed_method_has_a_paper_preset_and_marks_what_its_source_leaves_open(name):
    method = METHODS[name]
    assert "paper" in method.presets
    paper = method.presets["paper"]
    assert paper.source and paper.settings != method.presets["default"].settings


def test_presets_are_selected_by_name_everywhere():
    assert get("rise:reference").settings == settings("rise:reference")
    assert get("rise", preset="reference", num_masks=1200).settings.num_masks == 1200
    with pytest.raises(UsageError, match="has no preset 'paper'"):
        get("rise:paper")
    with pytest.raises(UsageError, match="names preset 'reference', but preset='default' was given"):
        get("rise:reference", preset="default")
