"""Every metric ``jaxplain evaluate --metrics`` can compute, turning a batch of maps into per-image scores.

Each metric has a direction and fixed settings (:data:`METRIC_SETTINGS`, recorded in a run's identity). Map-only
metrics read the maps and the teacher; ``sensitivity``, ``randomisation`` and ``random_logit`` explain again (noisy
inputs, randomised weights, another class), so they cost as many explanations as their settings say.

| metric | record fields | better |
| --- | --- | --- |
| ``deletion_insertion`` | ``deletion``, ``insertion`` (and their curves) | lower / higher |
| ``road`` | ``road_morf``, ``road_lerf``: mean class probability over ROAD's percentages | lower / higher |
| ``faithfulness_correlation`` | ``faithfulness_correlation`` | higher |
| ``region_perturbation`` | ``region_perturbation``: mean drop of the class probability over the regions | higher |
| ``sparseness``, ``complexity`` | ``sparseness`` (Gini), ``complexity`` (entropy) | higher / lower |
| ``sensitivity`` | ``max_sensitivity``, ``avg_sensitivity`` | lower |
| ``randomisation`` | ``randomisation``: rank correlation with the map of the fully randomised teacher (cascading) | lower |
| ``random_logit`` | ``random_logit``: SSIM with the map of a random other class | lower |
| grids: ``gridpg``, ``localisation``, ``iou``, ``relevance_mass``, ``relevance_rank`` | as named | higher (localisation: the miss rate, lower) |
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain.explainers.base import ModelHandle
from jaxplain.metrics.complexity import complexity, sparseness
from jaxplain.metrics.faithfulness import (PROTOCOLS, batch_deletion_insertion, faithfulness_correlation,
                                           perturbation_curve, road_curve)
from jaxplain.metrics.localisation import (IOU_THRESHOLD, LOCALISATION_ALPHA, grid_cell_box, grid_cell_mask,
                                           grid_pointing_score, localisation_miss, mask_iou, mean_intensity,
                                           relevance_mass_accuracy, relevance_rank_accuracy)
from jaxplain.metrics.robustness import avg_sensitivity, max_sensitivity, sensitivities
from jaxplain.metrics.sanity import parameter_randomisation, random_logit
from jaxplain.model import probabilities_of
from jaxplain.parallel import pad_rows, run_sharded

MAP_METRICS = ("deletion_insertion", "road", "faithfulness_correlation", "region_perturbation", "sparseness",
               "complexity")
EXPLAINING_METRICS = ("sensitivity", "randomisation", "random_logit")
GRID_METRICS = ("gridpg", "localisation", "iou", "relevance_mass", "relevance_rank")
METRICS = MAP_METRICS + EXPLAINING_METRICS + GRID_METRICS
# every setting of the metrics: fixed, recorded with each run
METRIC_SETTINGS = {
    "road": {"percentages": list(range(1, 100, 2)), "noise": 0.01},
    "faithfulness_correlation": {"runs": 100, "subset": 224, "score": "logit", "fill": "zero colour"},
    "region_perturbation": {"patch": 8, "regions": 100, "order": "morf", "fill": "zero colour"},
    "sensitivity": {"samples": 10, "radius": 0.05},
    "randomisation": {"mode": "cascading", "similarity": "rank correlation of |map|"},
    "random_logit": {"similarity": "ssim"},
}
# summary column -> (record field, higher is better)
SCORE_FIELDS = {"road_morf": False, "road_lerf": True, "faithfulness_correlation": True, "region_perturbation": True,
                "sparseness": True, "complexity": False, "max_sensitivity": False, "avg_sensitivity": False,
                "randomisation": False, "random_logit": False, "relevance_mass": True, "relevance_rank": True}


_sparseness, _complexity = jax.jit(sparseness), jax.jit(complexity)


@functools.lru_cache(maxsize=8)
def _deletion_insertion_fn(handle: ModelHandle, protocol: str):
    def scores(params, images, maps, labels):
        return batch_deletion_insertion(handle.apply_fn, params, images, maps, labels, jnp.asarray(handle.zero_pixel),
                                        PROTOCOLS[protocol])

    return scores


@functools.lru_cache(maxsize=8)
def _map_metrics_fn(handle: ModelHandle, metrics: tuple[str, ...]):
    """The map-only metrics besides deletion/insertion, image by image (memory: one image's teacher calls)."""
    road, correlation, regions = (METRIC_SETTINGS[m] for m in ("road", "faithfulness_correlation",
                                                               "region_perturbation"))

    def one(params, image, saliency, label, key):
        prob = functools.partial(probabilities_of, handle.apply_fn, params)
        fill = jnp.broadcast_to(jnp.asarray(handle.zero_pixel, image.dtype), image.shape)
        out = {}
        if "road" in metrics:
            for order in ("morf", "lerf"):
                probability, _ = road_curve(prob, image, saliency, label, jax.random.fold_in(key, order == "lerf"),
                                            percentages=tuple(road["percentages"]), order=order, noise=road["noise"])
                out[f"road_{order}"] = probability.mean()
        if "faithfulness_correlation" in metrics:
            logits = lambda images: handle.apply_fn(params, images)[0].astype(jnp.float32)
            out["faithfulness_correlation"] = faithfulness_correlation(
                logits, image, saliency, label, fill, jax.random.fold_in(key, 2), runs=correlation["runs"],
                subset=correlation["subset"])
        if "region_perturbation" in metrics:
            curve = perturbation_curve(prob, image, saliency, label, fill, patch=regions["patch"],
                                       steps=regions["regions"], order=regions["order"])
            out["region_perturbation"] = prob(image[None])[0, label] - curve.mean()
        return out

    def scores(params, images, maps, labels, keys):
        return jax.lax.map(lambda example: one(params, *example), (images, maps, labels, keys))

    return scores


def grid_scores(maps: np.ndarray, cells: np.ndarray, metrics=GRID_METRICS, alpha: float = LOCALISATION_ALPHA,
                iou_threshold: float = IOU_THRESHOLD) -> dict[str, np.ndarray]:
    """The grid ``metrics`` of maps ``[B, H, W]`` explaining the images in ``cells`` of 2x2 grids: GridPG,
    localisation misses (box of the largest region against the cell), IoU of the thresholded map with the cell,
    and the relevance mass and rank accuracies of the cell."""
    from jaxplain.data.grids import GRID

    height, width = maps.shape[1:]
    regions = np.stack([np.asarray(grid_cell_mask(int(c), GRID, height, width)) for c in cells])
    scores = {}
    if "gridpg" in metrics:
        scores["gridpg"] = np.asarray(jax.vmap(grid_pointing_score)(maps, regions))
    if "localisation" in metrics:
        misses = [localisation_miss(m, grid_cell_box(int(c), GRID, height, width), alpha) for m, c in zip(maps, cells)]
        scores["localisation_miss"] = np.asarray(misses, np.float32)
    if "iou" in metrics:
        scores["iou"] = np.asarray(jax.vmap(lambda m, r: mask_iou(m, r, iou_threshold))(maps, regions))
    if "relevance_mass" in metrics:
        scores["relevance_mass"] = np.asarray(relevance_mass_accuracy(maps, regions))
    if "relevance_rank" in metrics:
        scores["relevance_rank"] = np.asarray(relevance_rank_accuracy(maps, regions))
    return scores


def map_flags(maps: np.ndarray) -> list[str | None]:
    """``"non-finite"`` or ``"constant"`` for maps that rank nothing (they are scored in raster order, and
    the record and the summary say so), else None."""
    flat = maps.reshape(len(maps), -1)
    finite = np.isfinite(flat).all(axis=1)
    constant = np.where(finite, flat.max(axis=1) == flat.min(axis=1), False)
    return ["non-finite" if not f else "constant" if c else None for f, c in zip(finite, constant)]


def score_maps(model, metrics, protocol: str, images, maps, targets, cells, indices, mesh, *, batch_size: int,
               alpha: float = LOCALISATION_ALPHA, iou_threshold: float = IOU_THRESHOLD, seed: int = 0,
               reexplain=None, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """Every metric of ``metrics`` for a batch of maps, as ``{name: [B] or [B, steps]}``; non-finite values of a
    map count as zero. ``reexplain(params, images, labels, keys) -> maps`` serves the metrics that explain again.
    Each image's randomness is ``fold_in(seed, index)``, like the explainers'."""
    maps = np.nan_to_num(np.asarray(maps, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    scores = {"intensity": np.asarray(mean_intensity(maps))}
    handle = ModelHandle.of(model)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed ^ 0x5C0E), i))(jnp.asarray(indices, jnp.uint32))
    if "deletion_insertion" in metrics:
        padded = pad_rows((images, maps, targets), batch_size)
        out = run_sharded(_deletion_insertion_fn(handle, protocol), (model.params,), padded, mesh, per_device=True)
        scores |= {k: np.asarray(v[: len(images)]) for k, v in out.items()}
    chosen = tuple(m for m in ("road", "faithfulness_correlation", "region_perturbation") if m in metrics)
    if chosen:
        padded = pad_rows((images, maps, targets, keys), batch_size)
        out = run_sharded(_map_metrics_fn(handle, chosen), (model.params,), padded, mesh, per_device=True)
        scores |= {k: np.asarray(v[: len(images)]) for k, v in out.items()}
    if "sparseness" in metrics:
        scores["sparseness"] = np.asarray(_sparseness(maps))
    if "complexity" in metrics:
        scores["complexity"] = np.asarray(_complexity(maps))
    if reexplain is not None:
        images_, targets_ = jnp.asarray(images), jnp.asarray(targets)
        if "sensitivity" in metrics:
            settings = METRIC_SETTINGS["sensitivity"]
            bound = lambda x, y, k: reexplain(model.params, x, y, jax.random.split(k, len(x)))
            values = sensitivities(bound, images_, targets_, jnp.asarray(maps), keys[0], samples=settings["samples"],
                                   radius=settings["radius"])
            scores |= {"max_sensitivity": np.asarray(max_sensitivity(values)),
                       "avg_sensitivity": np.asarray(avg_sensitivity(values))}
        if "randomisation" in metrics:
            _, correlations = parameter_randomisation(
                lambda p, x, y, k: reexplain(p, x, y, keys), model.params, images_, targets_, keys[0], last_only=True)
            scores["randomisation"] = np.asarray(correlations[-1])
        if "random_logit" in metrics:
            scores["random_logit"] = np.asarray(random_logit(lambda x, y, k: reexplain(model.params, x, y, keys),
                                                             images_, targets_, jnp.asarray(maps), num_classes,
                                                             keys[0]))
    if any(m in GRID_METRICS for m in metrics):
        scores |= grid_scores(maps, cells, metrics, alpha, iou_threshold)
    return scores
