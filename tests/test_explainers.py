"""Every registered method: shapes, determinism, batch invariance; hand-checked cases where the answer is known."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxplain import runner
from jaxplain.explainers import METHODS
from jaxplain.explainers.occlusion import window_masks
from jaxplain.explainers.rise import random_masks, reflect_resize_matrix
from jaxplain.imageops import align_corners_matrix
from jaxplain.model import UNIT_RANGE, Preprocessing, from_callable

SMALL = {
    "rise": {"num_masks": 40, "chunk": 20},
    "lime": {"num_samples": 40, "chunk": 20, "segmentation": "slic", "n_segments": 8, "max_segments": 16},
    "occlusion": {"window": 4, "stride": 4, "chunk": 8},
    "extremal": {"iterations": 5, "stride": 4, "smoothing": 1.0, "blur_sigma": 2.0, "areas": (0.1, 0.3)},
    "integrated_gradients": {"steps": 4},
    "smoothgrad": {"samples": 3},
    "scorecam": {"chunk": 8},
    "gfi": {"steps": 6, "inversion_steps": 2},
    "dax": {"num_samples": 64, "chunk": 32, "resolution": 16, "pool": 4, "border": 1, "hidden": 8, "mask_features": 4,
            "averaged_epochs": 2, "segmentation": "slic", "n_segments": 8, "max_segments": 16},
}
STOCHASTIC = {"rise", "lime", "smoothgrad", "random", "dax"}  # gfi is random only with background="noise"
# relabel needs a VAE and surrogate a trained network: see test_relabel.py and test_surrogate.py
BASELINES = sorted(set(METHODS) - {"relabel", "surrogate"})
PRESETS = [(name, preset) for name in BASELINES for preset in METHODS[name].presets if preset != "default"]


@pytest.mark.parametrize("method", BASELINES)
def test_maps_have_image_shape_and_are_deterministic(method, tiny_model, tiny_images):
    labels = np.array([0, 3, 4])
    a = runner.explain(tiny_model, method, tiny_images, labels, key=7, **SMALL.get(method, {}))
    b = runner.explain(tiny_model, method, tiny_images, labels, key=7, **SMALL.get(method, {}))
    assert a.shape == (3, 16, 16) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    if method in STOCHASTIC:
        c = runner.explain(tiny_model, method, tiny_images, labels, key=8, **SMALL.get(method, {}))
        assert not np.allclose(a, c)


@pytest.mark.parametrize("method", BASELINES)
def test_maps_do_not_depend_on_batch_size(method, tiny_model, tiny_images):
    labels = np.array([1, 2, 3])
    whole = runner.explain(tiny_model, method, tiny_images, labels, key=3, batch_size=3, **SMALL.get(method, {}))
    singles = runner.explain(tiny_model, method, tiny_images, labels, key=3, batch_size=1, **SMALL.get(method, {}))
    # Extremal perturbation amplifies float rounding that differs between batch shapes (Adam normalises
    # near-zero gradients to full steps); DAX trains each image by the same compiled step whatever the batch
    # (images_per_step=1), so it agrees as closely as the fixed computations.
    atol = 1e-2 if method == "extremal" else 1e-5
    chex.assert_trees_all_close(whole, singles, rtol=1e-4, atol=atol)


def linear_model(weights: np.ndarray):
    """Logits = [<w, x>, 0]: class 0's evidence is a known linear function of the pixels."""
    w = jnp.asarray(weights)

    def fn(params, x):
        score = jnp.einsum("bhwc,hwc->b", x, params)
        return jnp.stack([score, jnp.zeros_like(score)], axis=-1)

    return from_callable("linear", fn, w, class_names=["a", "b"],
                         preprocessing=Preprocessing(8, 8), normalisation=UNIT_RANGE)


def test_gradient_of_a_linear_model_is_its_weights():
    weights = np.random.default_rng(0).normal(size=(8, 8, 3)).astype(np.float32)
    model = linear_model(weights)
    image = np.full((1, 8, 8, 3), 0.5, np.float32)
    np.testing.assert_allclose(runner.explain(model, "gradient", image, [0])[0], np.abs(weights).max(-1), rtol=1e-6)


def test_integrated_gradients_are_complete(tiny_model, tiny_images):
    """Attributions sum to f(x) - f(baseline) (the completeness axiom) up to the quadrature error."""
    labels = np.array([2])
    maps = runner.explain(tiny_model, "integrated_gradients", tiny_images[:1], labels, steps=64)
    logits = tiny_model.logits(tiny_model.params, jnp.concatenate([tiny_images[:1], np.zeros_like(tiny_images[:1])]))
    np.testing.assert_allclose(maps.sum(), float(logits[0, 2] - logits[1, 2]), rtol=1e-2, atol=1e-3)


def test_occlusion_of_a_linear_model_is_the_windowed_evidence():
    """Occluding a window removes exactly <w, x - fill> inside it; with disjoint windows that is the map."""
    weights = np.random.default_rng(1).normal(size=(8, 8, 3)).astype(np.float32)
    model = linear_model(weights)
    image = np.random.default_rng(2).uniform(size=(1, 8, 8, 3)).astype(np.float32)
    maps = runner.explain(model, "occlusion", image, [0], window=4, stride=4, chunk=4)
    contribution = (weights * image[0]).sum(-1)  # UNIT_RANGE: the fill colour is black
    expected = np.zeros((8, 8))
    for y in (0, 4):
        for x in (0, 4):
            expected[y:y + 4, x:x + 4] = contribution[y:y + 4, x:x + 4].sum()
    np.testing.assert_allclose(maps[0], expected, rtol=1e-5, atol=1e-5)


def region_model(region: np.ndarray):
    """Class 0 wins iff the pixels in ``region`` are bright: a model that only looks at ``region``."""
    mask = jnp.asarray(region, jnp.float32)[..., None]

    def fn(params, x):
        score = 20.0 * (jnp.einsum("bhwc,hwc->b", x, mask) / mask.sum() / 3 - 0.5)
        return jnp.stack([score, -score], axis=-1)

    return from_callable("region", fn, {}, class_names=["a", "b"], preprocessing=Preprocessing(16, 16),
                         normalisation=UNIT_RANGE)


@pytest.mark.parametrize("method, options", [
    ("rise", {"num_masks": 400, "grid": 4}),
    ("lime", {"num_samples": 200, "segmentation": "slic", "n_segments": 16, "max_segments": 32, "hide": "zero"}),
    ("occlusion", {"window": 4, "stride": 2}),
])
def test_black_box_methods_find_the_region_the_model_uses(method, options):
    region = np.zeros((16, 16), bool)
    region[2:8, 9:15] = True
    model = region_model(region)
    image = np.full((1, 16, 16, 3), 0.9, np.float32)
    saliency = runner.explain(model, method, image, [0], key=0, **options)[0]
    assert saliency[region].mean() > saliency[~region].mean() + 0.5 * saliency.std()


def test_rise_masks_are_smooth_binary_grids():
    masks = np.asarray(random_masks(jax.random.key(0), 50, 32, 32, grid=4, p=0.5))
    assert masks.shape == (50, 32, 32) and float(masks.min()) >= 0 and float(masks.max()) <= 1 + 1e-6
    assert abs(float(masks.mean()) - 0.5) < 0.1
    # smooth: neighbouring pixels differ by at most one cell's slope (1 / 8 px here); uniform noise by ~1/3
    assert np.abs(np.diff(masks, axis=2)).max() <= 1 / 8 + 1e-5 and np.abs(np.diff(masks, axis=1)).max() <= 1 / 8 + 1e-5
    # a grid: pixels one cell apart are independent draws, pixels a quarter cell apart nearly equal
    near = np.corrcoef(masks[:, :, 4:-4].ravel(), masks[:, :, 6:-2].ravel())[0, 1]
    far = np.corrcoef(masks[:, :, 4:-12].ravel(), masks[:, :, 12:-4].ravel())[0, 1]
    assert near > 0.8 and far < 0.5


def test_window_masks_tile_the_image():
    masks = window_masks(8, 8, window=4, stride=2)
    assert masks.shape == (9, 8, 8) and masks.sum(axis=(1, 2)).tolist() == [16.0] * 9


def test_align_corners_interpolation_keeps_the_end_samples():
    matrix = align_corners_matrix(3, 5)
    np.testing.assert_allclose(matrix @ np.array([0.0, 1.0, 4.0]), [0.0, 0.5, 1.0, 2.5, 4.0])


def test_unknown_method_and_bad_hyperparameters_are_usage_errors(tiny_model, tiny_images):
    from jaxplain.errors import UsageError

    with pytest.raises(UsageError, match="unknown method 'nope'"):
        runner.explain(tiny_model, "nope", tiny_images)
    with pytest.raises(UsageError, match="rise"):
        runner.explain(tiny_model, "rise", tiny_images, masks=3)


def test_repeated_calls_reuse_the_explainer_and_its_compiled_program(tiny_model, tiny_images):
    from jaxplain.parallel import compiled_program

    runner.explain(tiny_model, "rise", tiny_images, key=0, num_masks=40, chunk=20)
    before = compiled_program.cache_info()
    runner.explain(tiny_model, "rise", tiny_images, key=1, num_masks=40, chunk=20)
    after = compiled_program.cache_info()
    assert after.misses == before.misses and after.hits > before.hits
    assert runner.cached_explainer("rise", num_masks=40, chunk=20) is runner.cached_explainer("rise", chunk=20,
                                                                                              num_masks=40)


@pytest.mark.parametrize("method, preset", PRESETS)
def test_every_preset_explains_a_tiny_model(method, preset, tiny_model, tiny_images):
    maps = runner.explain(tiny_model, f"{method}:{preset}", tiny_images, key=2, **SMALL.get(method, {}))
    assert maps.shape == (3, 16, 16) and np.isfinite(maps).all() and maps.std() > 0


def test_the_reflect_upsampling_of_rise_reference_is_scikit_images():
    from skimage.transform import resize

    grid = np.random.default_rng(0).uniform(size=(7, 7))
    expected = resize(grid, (40, 40), order=1, mode="reflect", anti_aliasing=False)
    rows, cols = np.asarray(reflect_resize_matrix(7, 40)), np.asarray(reflect_resize_matrix(7, 40))
    np.testing.assert_allclose(rows @ grid @ cols.T, expected, atol=1e-6)
