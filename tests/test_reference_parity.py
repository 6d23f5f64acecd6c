"""Parity with PyTorch references on the same EfficientNet-Lite0 weights and real photos.

Needs the 'reference' extra (torch, efficientnet-lite-pytorch, captum, grad-cam); skipped without it.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[reference]' runs these")
pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch is not installed")

from jaxplain import runner  # noqa: E402
from jaxplain.models.torch_legacy import load_state_dict  # noqa: E402
from jaxplain.models.torch_reference import TorchLite0, nchw  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.real_model]


@pytest.fixture(scope="module")
def torch_model():
    torch.manual_seed(0)
    return TorchLite0().eval()


def correlation(a, b):
    return np.corrcoef(np.ravel(a), np.ravel(b))[0, 1]


def test_logits_match_torch(torch_model, teacher, photos):
    with torch.no_grad():
        expected = torch_model(nchw(photos)).numpy()
    logits = np.asarray(teacher.logits(teacher.params, photos))
    assert np.abs(logits - expected).max() <= 1e-4 * np.abs(expected).max()
    np.testing.assert_array_equal(logits.argmax(-1), expected.argmax(-1))


def test_zip_format_checkpoint_reads_like_torch(tmp_path):
    state = {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4).t(), "n": torch.tensor(7)}
    torch.save(state, tmp_path / "zip.pt")
    torch.save(state, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("zip.pt", "legacy.pt"):
        loaded = load_state_dict(tmp_path / name)
        np.testing.assert_array_equal(loaded["w"], state["w"].numpy())
        assert int(loaded["n"]) == 7


def test_gradcam_matches_grad_cam_package(torch_model, teacher, photos):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    labels = [282, 967]
    with GradCAM(model=torch_model, target_layers=[torch_model.head_act]) as cam:
        expected = cam(input_tensor=nchw(photos), targets=[ClassifierOutputTarget(c) for c in labels])
    maps = runner.explain(teacher, "gradcam", photos, labels)
    for m, e in zip(maps, expected):
        assert correlation(m, e) >= 0.99


def test_scorecam_matches_grad_cam_package(torch_model, teacher, photos):
    from pytorch_grad_cam import ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    image, label = photos[:1], [282]
    with ScoreCAM(model=torch_model, target_layers=[torch_model.net._blocks[15]]) as cam:
        expected = cam(input_tensor=nchw(image), targets=[ClassifierOutputTarget(c) for c in label])
    maps = runner.explain(teacher, "scorecam", image, label, layer="stage7")
    assert correlation(maps[0], expected[0]) >= 0.99


def test_integrated_gradients_match_captum(torch_model, teacher, photos):
    from captum.attr import IntegratedGradients

    labels = [282, 967]
    expected = IntegratedGradients(torch_model).attribute(
        nchw(photos), baselines=0.0, target=labels, n_steps=32, method="riemann_trapezoid"
    ).detach().numpy().sum(1)
    maps = runner.explain(teacher, "integrated_gradients", photos, labels, steps=31, baseline="mean")
    for m, e in zip(maps, expected):
        assert correlation(m, e) >= 0.99


def test_occlusion_matches_captum(torch_model, teacher, photos):
    from captum.attr import Occlusion

    image, label = photos[1:], [967]
    expected = Occlusion(torch_model).attribute(
        nchw(image), sliding_window_shapes=(3, 56, 56), strides=(3, 28, 28), baselines=0.0, target=label
    ).detach().numpy()[0, 0]
    maps = runner.explain(teacher, "occlusion", image, label, window=56, stride=28)
    assert correlation(maps[0], expected) >= 0.99
