"""The metrics beyond deletion/insertion: values on hand-computed cases, and parity with Quantus 0.6 on the same
maps, inputs and weights (a linear model written twice, in PyTorch for Quantus and in JAX for jaxplain, so each
metric's procedure is compared step for step)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxplain.metrics.complexity import complexity, sparseness
from jaxplain.metrics.faithfulness import (faithfulness_correlation, linear_imputation, perturbation_curve,
                                           random_subsets, region_order, road_curve)
from jaxplain.metrics.localisation import relevance_mass_accuracy, relevance_rank_accuracy
from jaxplain.metrics.robustness import avg_sensitivity, max_sensitivity, sensitivities
from jaxplain.metrics.sanity import parameter_randomisation, random_logit, rank_correlation, ssim

SIDE = 16


def test_sparseness_and_complexity_by_hand():
    uniform, one = jnp.ones((1, 10, 10)), jnp.zeros((1, 10, 10)).at[0, 3, 4].set(5.0)
    assert float(sparseness(uniform)[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(sparseness(one)[0]) == pytest.approx(99 / 100, abs=1e-5)  # (n - 1) / n
    assert float(complexity(uniform)[0]) == pytest.approx(np.log(100), rel=1e-5)
    assert float(complexity(one)[0]) == pytest.approx(0.0, abs=1e-5)


def test_relevance_mass_and_rank_by_hand():
    region = jnp.zeros((1, 4, 4), bool).at[0, :2, :2].set(True)
    inside = region.astype(jnp.float32)
    half = inside + jnp.zeros((1, 4, 4)).at[0, 3, 3].set(4.0)  # 4 inside, 4 outside
    assert float(relevance_mass_accuracy(inside, region)[0]) == 1.0
    assert float(relevance_mass_accuracy(half, region)[0]) == pytest.approx(0.5)
    assert float(relevance_rank_accuracy(inside, region)[0]) == 1.0
    assert float(relevance_rank_accuracy(1.0 - inside, region)[0]) == 0.0
    assert float(relevance_rank_accuracy(half, region)[0]) == pytest.approx(3 / 4)  # the top 4: (3,3) and 3 inside
    assert np.isnan(float(relevance_mass_accuracy(inside, jnp.zeros((1, 4, 4), bool))[0]))


def linear(weights):
    """Class 0's score is ``<w, x>``, class 1's is 0."""
    w = jnp.asarray(weights)
    return lambda x: jnp.stack([jnp.einsum("bhwc,hwc->b", x, w), jnp.zeros(len(x))], -1)


def test_pixel_flipping_drops_the_score_by_each_pixels_contribution():
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=(4, 4, 1)).astype(np.float32), rng.uniform(size=(4, 4, 1)).astype(np.float32)
    contribution = (w * x)[..., 0]
    curve = perturbation_curve(linear(w), jnp.asarray(x), jnp.asarray(contribution), 0, jnp.zeros((4, 4, 1)),
                               patch=1, steps=16, per_step=1)
    expected = contribution.sum() - np.cumsum(np.sort(contribution.ravel())[::-1])
    np.testing.assert_allclose(curve, expected, atol=1e-5)


def test_regions_are_ranked_by_their_summed_relevance():
    saliency = jnp.zeros((4, 4)).at[2:, 2:].set(1.0).at[0, 0].set(3.0)
    ranks = region_order(saliency, 2, "morf")
    assert int(ranks[3, 3]) == 0 and int(ranks[0, 0]) == 1  # 4 > 3: the bottom-right region first
    assert int(region_order(saliency, 2, "lerf")[3, 3]) == 3


def test_linear_imputation_reproduces_a_linear_ramp_inside_a_hole():
    ramp = (jnp.arange(12.0)[:, None, None] * 0.05 + jnp.arange(12.0)[None, :, None] * 0.02) * jnp.ones((1, 1, 3))
    hole = jnp.zeros((12, 12), bool).at[3:9, 4:8].set(True)
    np.testing.assert_allclose(linear_imputation(ramp, hole), ramp, atol=1e-5)


def test_road_keeps_the_class_while_irrelevant_pixels_go():
    w = np.zeros((8, 8, 1), np.float32)
    w[2:4, 2:4] = 5.0
    x = np.full((8, 8, 1), 0.2, np.float32)
    x[2:4, 2:4] = 1.0
    prob = lambda images: jax.nn.softmax(linear(w)(images) - jnp.array([9.0, 0.0]))
    saliency = jnp.asarray(w[..., 0])
    probability, kept = road_curve(prob, jnp.asarray(x), saliency, 0, jax.random.key(0), percentages=(10, 50),
                                   order="lerf", noise=0.0)
    assert bool(kept.all())  # the least relevant half goes: the evidence stays
    _, kept = road_curve(prob, jnp.asarray(x), saliency, 0, jax.random.key(0), percentages=(10,), order="morf",
                         noise=0.0)
    assert not bool(kept[0])  # the four evidence pixels go first and are imputed from their 0.2 neighbours


def test_faithfulness_correlation_of_exact_contributions_is_one():
    rng = np.random.default_rng(1)
    w, x = rng.normal(size=(8, 8, 1)).astype(np.float32), rng.uniform(size=(8, 8, 1)).astype(np.float32)
    value = faithfulness_correlation(linear(w), jnp.asarray(x), jnp.asarray((w * x)[..., 0]), 0, jnp.zeros((8, 8, 1)),
                                     jax.random.key(0), runs=20, subset=10)
    assert float(value) == pytest.approx(1.0, abs=1e-5)


def test_sensitivity_is_zero_for_a_constant_explainer_and_positive_for_the_input():
    images, labels = jnp.full((2, 4, 4, 3), 0.5), jnp.array([0, 1])
    constant = lambda x, y, k: jnp.ones(x.shape[:3])
    values = sensitivities(constant, images, labels, jnp.ones((2, 4, 4)), jax.random.key(0), samples=5, radius=0.1)
    assert float(max_sensitivity(values).max()) == 0.0
    echo = lambda x, y, k: x.mean(-1)
    values = sensitivities(echo, images, labels, images.mean(-1), jax.random.key(0), samples=5, radius=0.1)
    assert 0 < float(avg_sensitivity(values).max()) <= float(max_sensitivity(values).max()) < 0.2


def test_parameter_randomisation_destroys_a_gradient_map_and_random_logit_compares_classes():
    rng = np.random.default_rng(2)
    params = {"params": {"hidden": jnp.asarray(rng.normal(size=(64, 8)), jnp.float32),
                         "out": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)}}
    x = jnp.asarray(rng.uniform(size=(2, 8, 8, 1)), jnp.float32)

    def explain(p, images, labels, key):
        logits = lambda im: jnp.tanh(im.reshape(len(im), -1) @ p["params"]["hidden"]) @ p["params"]["out"]
        return jax.grad(lambda im: jnp.take_along_axis(logits(im), labels[:, None], 1).sum())(images)[..., 0]

    names, correlations = parameter_randomisation(explain, params, x, jnp.array([0, 1]), jax.random.key(0))
    assert names == ["out", "hidden"]
    assert float(jnp.abs(correlations[-1]).mean()) < 0.6  # both layers randomised: the structure is gone
    last, alone = parameter_randomisation(explain, params, x, jnp.array([0, 1]), jax.random.key(0), last_only=True)
    assert last == ["hidden"]
    np.testing.assert_allclose(alone[0], correlations[-1], rtol=1e-6)  # one explanation, the same value
    maps = explain(params, x, jnp.array([0, 1]), None)
    same = random_logit(lambda im, y, k: explain(params, im, jnp.array([0, 1]), k), x, jnp.array([0, 1]), maps, 3,
                        jax.random.key(0))
    np.testing.assert_allclose(same, 1.0, atol=1e-6)  # an explainer blind to the class scores 1
    assert float(rank_correlation(maps, maps)[0]) == pytest.approx(1.0)


# ---- parity with Quantus 0.6 ---------------------------------------------------------------------------------

quantus = pytest.importorskip("quantus", reason="quantus is not installed: pip install -e '.[reference]' runs these")
torch = pytest.importorskip("torch")

@pytest.fixture(scope="module")
def twin():
    """A linear classifier of 1 x 16 x 16 inputs in PyTorch, and the same in JAX on [16, 16, 1] images."""
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(3, SIDE * SIDE)).astype(np.float32) * 0.3
    torch_model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(SIDE * SIDE, 3, bias=False))
    with torch.no_grad():
        torch_model[1].weight.copy_(torch.from_numpy(weights))
    torch_model.eval()
    w = jnp.asarray(weights)
    logits = lambda images: images.reshape(len(images), -1) @ w.T  # [N, 16, 16, 1] -> [N, 3]
    x = rng.uniform(size=(3, 1, SIDE, SIDE)).astype(np.float32)
    a = rng.normal(size=(3, 1, SIDE, SIDE)).astype(np.float32)
    y = np.asarray(logits(jnp.asarray(x.transpose(0, 2, 3, 1))).argmax(-1))
    return torch_model, logits, x, a, y


def quiet(metric, **kwargs):
    return metric(disable_warnings=True, display_progressbar=False, **kwargs)


@pytest.mark.reference
def test_complexity_and_localisation_metrics_equal_quantus(twin):
    _, _, x, a, y = twin
    s = np.zeros_like(a)
    s[:, :, 4:10, 2:12] = 1
    ours = {"sparseness": sparseness(a[:, 0]), "complexity": complexity(a[:, 0]),
            "mass": relevance_mass_accuracy(a[:, 0], s[:, 0]), "rank": relevance_rank_accuracy(a[:, 0], s[:, 0])}
    theirs = {"sparseness": quiet(quantus.Sparseness)(model=None, x_batch=x, y_batch=y, a_batch=a.copy()),
              "complexity": quiet(quantus.Complexity)(model=None, x_batch=x, y_batch=y, a_batch=a.copy()),
              "mass": quiet(quantus.RelevanceMassAccuracy)(model=None, x_batch=x, y_batch=y, a_batch=a.copy(),
                                                          s_batch=s),
              "rank": quiet(quantus.RelevanceRankAccuracy)(model=None, x_batch=x, y_batch=y, a_batch=a.copy(),
                                                          s_batch=s)}
    for name in ours:
        np.testing.assert_allclose(np.asarray(ours[name]), np.asarray(theirs[name], np.float64), rtol=1e-5,
                                   err_msg=name)


@pytest.mark.reference
def test_pixel_flipping_and_region_perturbation_equal_quantus(twin):
    """Quantus's "black" baseline is each input's smallest value."""
    model, logits, x, a, y = twin
    prob = lambda images: jax.nn.softmax(logits(images), -1)
    a_ties = a + 1e-4 * np.arange(SIDE * SIDE).reshape(1, 1, SIDE, SIDE)  # no ties: the order is the same
    theirs = quiet(quantus.PixelFlipping, features_in_step=16, perturb_baseline="black")(
        model=model, x_batch=x, y_batch=y, a_batch=a_ties.copy(), channel_first=True)
    regions = quiet(quantus.RegionPerturbation, patch_size=4, regions_evaluation=10, perturb_baseline="black",
                    order="morf")(model=model, x_batch=x, y_batch=y, a_batch=a_ties.copy(), channel_first=True)
    for i in range(len(x)):
        image, saliency = jnp.asarray(x[i].transpose(1, 2, 0)), jnp.asarray(a_ties[i, 0])
        black = jnp.full_like(image, image.min())
        ours = perturbation_curve(prob, image, saliency, int(y[i]), black, patch=1, steps=16, per_step=16)
        np.testing.assert_allclose(ours, theirs[i], atol=1e-5)
        curve = perturbation_curve(prob, image, saliency, int(y[i]), black, patch=4, steps=10)
        clean = float(prob(image[None])[0, int(y[i])])
        np.testing.assert_allclose(clean - np.asarray(curve), regions[i], atol=1e-5)  # Quantus reports the drop


@pytest.mark.reference
def test_road_imputation_equals_quantus_linear_solve():
    from quantus.functions.perturb_func import noisy_linear_imputation

    rng = np.random.default_rng(4)
    image = rng.uniform(size=(3, 12, 12)).astype(np.float64)
    removed = rng.choice(144, 50, replace=False)
    theirs = noisy_linear_imputation(image, removed, noise=0.0)
    mask = jnp.zeros(144, bool).at[removed].set(True).reshape(12, 12)
    ours = linear_imputation(jnp.asarray(image.transpose(1, 2, 0), jnp.float32), mask)
    np.testing.assert_allclose(np.asarray(ours).transpose(2, 0, 1), theirs, atol=1e-4)


@pytest.mark.reference
def test_faithfulness_correlation_equals_quantus_on_the_same_subsets(twin, monkeypatch):
    model, logits, x, a, y = twin
    runs, subset = 12, 20
    keys = jax.random.split(jax.random.key(0), len(x))
    ours = [faithfulness_correlation(logits, jnp.asarray(x[i].transpose(1, 2, 0)), jnp.asarray(a[i, 0]), int(y[i]),
                                     jnp.full((SIDE, SIDE, 1), x[i].min()), keys[i], runs=runs, subset=subset)
            for i in range(len(x))]  # Quantus's "black": each input's smallest value
    # the subsets jaxplain drew, handed to Quantus in its order of draws (run by run, image by image)
    drawn = [np.asarray(random_subsets(keys[i], SIDE * SIDE, subset, runs)) for i in range(len(x))]
    sequence = iter([drawn[i][r] for r in range(runs) for i in range(len(x))])
    monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(sequence))
    theirs = quiet(quantus.FaithfulnessCorrelation, nr_runs=runs, subset_size=subset, perturb_baseline="black",
                   return_aggregate=False)(model=model, x_batch=x, y_batch=y, a_batch=a.copy(), channel_first=True)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-4)


@pytest.mark.reference
def test_ssim_equals_quantus_and_scikit_image():
    from quantus.functions.similarity_func import ssim as quantus_ssim

    rng = np.random.default_rng(5)
    a, b = rng.uniform(size=(2, 20, 24)).astype(np.float32), rng.uniform(size=(2, 20, 24)).astype(np.float32)
    np.testing.assert_allclose(ssim(jnp.asarray(a), jnp.asarray(b)), quantus_ssim(a, b, batched=True), atol=1e-5)

