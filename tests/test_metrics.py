"""Metrics on hand-computed cases and against independent NumPy/SciPy computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.ndimage import correlate1d

from jaxplain.imageops import gaussian_blur, gaussian_kernel
from jaxplain.metrics import (EXACT, FAST, Protocol, auc, box_iou, boxes_to_mask, deletion_insertion, grid_cell_box,
                              grid_cell_mask, grid_pointing_score, largest_region_box, localisation_miss, mask_iou,
                              mean_intensity, pointing_game, randomise_params, rank_correlation)
from jaxplain.metrics.faithfulness import perturbation_curve, pixel_ranks, random_subsets


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def linear_probs(weights):
    """Two-class model: p(class 0) = sigmoid(sum_hw w_hw * mean_c x_hwc)."""
    w = jnp.asarray(weights)

    def prob_fn(images):
        s = jnp.einsum("nhwc,hw->n", images, w) / images.shape[-1]
        return jnp.stack([jax.nn.sigmoid(s), 1 - jax.nn.sigmoid(s)], axis=-1)

    return prob_fn


def test_protocol_step_counts():
    assert EXACT.num_steps(224, 224) == 224 and EXACT.step_size(224, 224) == 224
    assert FAST.num_steps(224, 224) == 28 and FAST.step_size(224, 224) == 1792
    assert FAST.num_steps(32, 32) == 28 and FAST.step_size(32, 32) == 37


def test_auc_of_simple_curves():
    assert float(auc(jnp.ones(5))) == pytest.approx(1.0)
    assert float(auc(jnp.linspace(1, 0, 29))) == pytest.approx(0.5)
    assert float(auc(jnp.array([0.0, 1.0, 0.0]))) == pytest.approx(0.5)


def test_pixel_ranks_order_by_saliency_then_position():
    ranks = pixel_ranks(jnp.array([[0.1, 0.9], [0.5, 0.9]]))
    np.testing.assert_array_equal(ranks, [[3, 0], [2, 1]])


def test_deletion_curve_matches_a_hand_computation():
    weights = np.array([[2.0, -1.0], [0.5, 3.0]])
    image = np.array([[0.8, 0.6], [0.9, 0.4]])[..., None].repeat(3, -1).astype(np.float32)
    saliency = jnp.asarray(weights * image[..., 0])  # ideal: each pixel's contribution
    result = deletion_insertion(linear_probs(weights), jnp.asarray(image), saliency, 0,
                                jnp.zeros(3), Protocol(steps=4, blur_size=3, blur_sigma=1.0), chunk=2)
    order = np.argsort(-np.asarray(saliency).ravel(), kind="stable")
    contributions = (weights * image[..., 0]).ravel()
    expected = [sigmoid(contributions.sum() - contributions[order[:k]].sum()) for k in range(5)]
    np.testing.assert_allclose(result["deletion_curve"], expected, rtol=1e-5)
    np.testing.assert_allclose(result["deletion"], np.trapezoid(expected, dx=0.25), rtol=1e-5)


def test_insertion_starts_from_the_blurred_image_and_ends_at_the_image():
    weights = np.ones((6, 6))
    image = np.random.default_rng(0).uniform(size=(6, 6, 3)).astype(np.float32)
    protocol = Protocol(steps=9, blur_size=3, blur_sigma=1.0)
    result = deletion_insertion(linear_probs(weights), jnp.asarray(image), jnp.asarray(image[..., 0]), 0,
                                jnp.zeros(3), protocol, chunk=4)
    kernel = np.asarray(gaussian_kernel(3, 1.0))
    blurred = correlate1d(correlate1d(image, kernel, axis=0, mode="constant"), kernel, axis=1, mode="constant")
    assert result["insertion_curve"].shape == (10,)
    np.testing.assert_allclose(result["insertion_curve"][0], sigmoid(blurred.mean(-1).sum()), rtol=1e-5)
    np.testing.assert_allclose(result["insertion_curve"][-1], sigmoid(image.mean(-1).sum()), rtol=1e-5)


def test_gaussian_blur_matches_scipy_with_constant_fill():
    image = np.random.default_rng(1).uniform(size=(12, 10, 3)).astype(np.float32)
    fill = np.array([0.2, 0.5, 0.7], np.float32)
    kernel = np.asarray(gaussian_kernel(5, 2.0))
    expected = np.stack([
        correlate1d(correlate1d(image[..., c], kernel, axis=0, mode="constant", cval=fill[c]), kernel, axis=1,
                    mode="constant", cval=fill[c]) for c in range(3)], -1)
    np.testing.assert_allclose(gaussian_blur(jnp.asarray(image), 5, 2.0, fill=fill), expected, rtol=1e-5, atol=1e-6)


def test_the_ideal_ranking_beats_its_reverse():
    rng = np.random.default_rng(2)
    weights = rng.normal(size=(8, 8))
    image = rng.uniform(size=(8, 8, 3)).astype(np.float32)
    contribution = weights * image.mean(-1)
    probe = lambda s: deletion_insertion(linear_probs(weights), jnp.asarray(image), jnp.asarray(s), 0,
                                         jnp.zeros(3), Protocol(steps=16, blur_size=3, blur_sigma=1.0), chunk=4)
    good, bad = probe(contribution), probe(-contribution)
    assert float(good["deletion"]) < float(bad["deletion"])
    assert float(good["insertion"]) > float(bad["insertion"])


def test_pointing_game_with_tolerance():
    saliency = jnp.zeros((2, 64, 64)).at[0, 10, 10].set(1.0).at[1, 50, 50].set(1.0)
    box = boxes_to_mask(jnp.array([[20, 20, 40, 40]]), 64, 64)
    hits = pointing_game(saliency, jnp.stack([box, box]), tolerance=15)
    np.testing.assert_array_equal(hits, [True, False])  # (10,10) is 14.1 px from the box; (50,50) is 15.6 px


def test_mean_intensity_of_known_maps():
    maps = jnp.stack([jnp.zeros((4, 4)).at[0, 0].set(5.0), jnp.tile(jnp.arange(4.0), (4, 1))])
    np.testing.assert_allclose(mean_intensity(maps), [1 / 16, 0.5], rtol=1e-6)


def test_rank_correlation():
    a = jax.random.uniform(jax.random.key(0), (3, 5, 5))
    np.testing.assert_allclose(rank_correlation(a, a), 1.0, rtol=1e-6)
    np.testing.assert_allclose(rank_correlation(a, -a), -1.0, rtol=1e-6)
    np.testing.assert_allclose(rank_correlation(a, 2 * a + 1), 1.0, rtol=1e-6)


def test_randomised_params_keep_shapes_and_statistics_but_change_weights(tiny_model):
    variables = {"params": tiny_model.params["params"], "batch_stats": {"m": jnp.arange(3.0)}}
    shuffled = randomise_params(variables, jax.random.key(0))
    assert jax.tree_util.tree_structure(shuffled) == jax.tree_util.tree_structure(variables)
    np.testing.assert_array_equal(shuffled["batch_stats"]["m"], variables["batch_stats"]["m"])
    for old, new in zip(jax.tree_util.tree_leaves(variables["params"]), jax.tree_util.tree_leaves(shuffled["params"])):
        assert old.shape == new.shape
        np.testing.assert_allclose(np.sort(old.ravel()), np.sort(new.ravel()))
        if old.size > 1 and np.unique(old).size > 1:
            assert not np.array_equal(old, new)  # the weights really moved


def test_sanity_check_gradcam_changes_with_random_weights(tiny_model, tiny_images):
    from jaxplain import runner

    maps = runner.explain(tiny_model, "gradcam", tiny_images, [0, 1, 2])
    random_params = randomise_params(tiny_model.params, jax.random.key(3))
    random_maps = runner.explain(tiny_model, "gradcam", tiny_images, [0, 1, 2], params=random_params)
    assert float(jnp.mean(rank_correlation(jnp.asarray(maps), jnp.asarray(random_maps)))) < 0.9


def test_grid_cells_tile_the_image():
    masks = np.stack([np.asarray(grid_cell_mask(c, 2, 6, 8)) for c in range(4)])
    np.testing.assert_array_equal(masks.sum(0), np.ones((6, 8)))
    assert masks[1][:3, 4:].all() and masks[1].sum() == 12  # top-right quarter
    assert grid_cell_box(3, 2, 6, 8) == (4, 3, 8, 6)
    for c in range(4):
        x0, y0, x1, y1 = grid_cell_box(c, 2, 6, 8)
        assert masks[c][y0:y1, x0:x1].all() and masks[c].sum() == (x1 - x0) * (y1 - y0)


def test_grid_pointing_score_by_hand():
    region = grid_cell_mask(0, 2, 4, 4)
    saliency = jnp.array([[3.0, 1.0, 0.0, 2.0],
                          [0.0, 0.0, -5.0, 0.0],
                          [0.0, 0.0, 0.0, 0.0],
                          [0.0, 4.0, 0.0, 0.0]])
    # positive mass 3 + 1 + 2 + 4 = 10, of which 4 in the top-left cell; the negative pixel is ignored
    assert float(grid_pointing_score(saliency, region)) == pytest.approx(0.4)
    assert float(grid_pointing_score(jnp.ones((4, 4)), region)) == pytest.approx(0.25)
    assert float(grid_pointing_score(-jnp.ones((4, 4)), region)) == 0.0


def test_largest_region_box_and_localisation_error_by_hand():
    saliency = np.zeros((10, 10))
    saliency[1:4, 1:3] = 1.0  # 6 pixels
    saliency[5:9, 4:9] = 0.9  # 20 pixels: the largest region
    assert largest_region_box(saliency) == (4, 5, 9, 9)
    # alpha x mean = 1.1 x 0.24 = 0.264 < 0.9, so both regions are above the threshold
    assert box_iou((4, 5, 9, 9), (5, 5, 10, 10)) == pytest.approx(16 / 29)
    assert not localisation_miss(saliency, (5, 5, 10, 10))  # IoU 0.55
    assert localisation_miss(saliency, (0, 0, 5, 5))  # IoU 1/44
    assert largest_region_box(np.zeros((4, 6))) == (0, 0, 6, 4)  # a constant map selects everything


def test_mask_iou_by_hand():
    saliency = jnp.array([[0.0, 0.1, 0.5, 1.0]])
    region = jnp.array([[False, False, True, False]])
    # min-max keeps the values; >= 0.2 selects the last two pixels; IoU = 1 / 2
    assert float(mask_iou(saliency, region)) == pytest.approx(0.5)
    assert float(mask_iou(saliency, region, threshold=0.6)) == pytest.approx(0.0)


def test_random_subsets_draw_distinct_pixels_uniformly():
    subsets = np.asarray(random_subsets(jax.random.key(0), 50, 10, 2000))
    assert subsets.shape == (2000, 10) and subsets.min() >= 0 and subsets.max() < 50
    assert all(len(set(row)) == 10 for row in subsets)
    counts = np.bincount(subsets.ravel(), minlength=50)  # 400 each expected, standard deviation about 18
    assert np.abs(counts - 400).max() < 90


def test_perturbation_curve_in_chunks_equals_one_image_per_call():
    w = jnp.arange(16.0).reshape(4, 4) / 16 - 0.4
    image = jnp.ones((4, 4, 1))
    saliency = w
    curves = [perturbation_curve(linear_probs(w), image, saliency, 0, jnp.zeros((4, 4, 1)), patch=1, steps=7,
                                 chunk=chunk) for chunk in (1, 3, 32)]
    for curve in curves[1:]:
        np.testing.assert_allclose(curve, curves[0], atol=1e-6)
    expected = [sigmoid(float((w * image[..., 0]).sum() - np.sort(np.asarray(w).ravel())[::-1][:k].sum()))
                for k in range(1, 8)]  # the k most relevant pixels (largest w) removed
    np.testing.assert_allclose(curves[0], expected, atol=1e-5)
