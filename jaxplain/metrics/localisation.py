"""Localisation metrics: pointing game (Zhang et al., 2016), the grid pointing game (GridPG), the
weakly supervised localisation error of the GFI paper, IoU with a ground-truth mask (DAX paper), and
saliency sparsity (mean intensity, seed 004 Table 3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain.imageops import minmax

POINTING_TOLERANCE = 15  # pixels


def boxes_to_mask(boxes: jax.Array, height: int, width: int) -> jax.Array:
    """Union of boxes ``[N, 4]`` given as ``(x0, y0, x1, y1)`` pixel corners (x1, y1 exclusive) as ``[H, W]``."""
    ys = jnp.arange(height)[None, :, None]
    xs = jnp.arange(width)[None, None, :]
    x0, y0, x1, y1 = (boxes[:, i, None, None] for i in range(4))
    return jnp.any((xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1), axis=0)


def pointing_hit(saliency: jax.Array, region: jax.Array, tolerance: float = POINTING_TOLERANCE) -> jax.Array:
    """True if the saliency maximum of ``[H, W]`` lies within ``tolerance`` px of the ``region`` mask."""
    height, width = saliency.shape
    flat = jnp.argmax(saliency.reshape(-1))
    y, x = flat // width, flat % width
    ys, xs = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")
    distance = jnp.sqrt(((ys - y) ** 2 + (xs - x) ** 2).astype(jnp.float32))
    nearest = jnp.min(jnp.where(region, distance, jnp.inf))
    return nearest <= tolerance


def pointing_game(saliency: jax.Array, regions: jax.Array, tolerance: float = POINTING_TOLERANCE) -> jax.Array:
    """Hits ``[B]`` of maps ``[B, H, W]`` against ground-truth masks ``[B, H, W]``."""
    return jax.vmap(lambda s, r: pointing_hit(s, r, tolerance))(saliency, regions)


def mean_intensity(saliency: jax.Array) -> jax.Array:
    """Mean of each min-max-normalised map ``[B, H, W]`` -> ``[B]``: lower means a sparser map."""
    return minmax(saliency).mean(axis=(-2, -1))


# --- Localisation without boxes: grids of images (GridPG) -------------------------------------------

def grid_cell_mask(cell: int, grid: int, height: int, width: int) -> jax.Array:
    """``[H, W]`` mask of cell ``cell`` (row-major) of a ``grid`` x ``grid`` layout of the image."""
    ys = jnp.arange(height)[:, None] * grid // height
    xs = jnp.arange(width)[None, :] * grid // width
    return (ys == cell // grid) & (xs == cell % grid)


def grid_pointing_score(saliency: jax.Array, region: jax.Array) -> jax.Array:
    """GridPG (Böhle et al., 2021): the share of positive attribution of ``[H, W]`` saliency inside ``region``.

    1 when all positive attribution lies in the explained image's cell, 0.25 for a uniform map on a
    2x2 grid; 0 for a map with no positive attribution at all (it located nothing).
    """
    positive = jnp.maximum(saliency, 0.0)
    total = positive.sum()
    return jnp.where(total > 0, jnp.sum(positive * region) / jnp.where(total > 0, total, 1.0), 0.0)


# --- Weakly supervised localisation (GFI paper, after Fong & Vedaldi 2017) ------------------------------

LOCALISATION_ALPHA = 1.1  # GFI's threshold: alpha x the mean of the min-max normalised map
LOCALISATION_IOU = 0.5
IOU_THRESHOLD = 0.2  # DAX paper: a map selects the pixels at or above 0.2 of its range


def largest_region_box(saliency: np.ndarray, alpha: float = LOCALISATION_ALPHA) -> tuple[int, int, int, int]:
    """Box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) around the largest 8-connected region of a ``[H, W]`` map
    above ``alpha`` x its mean after min-max normalisation. A map with no such pixel gives the whole image.

    Runs on the host (SciPy's connected-component labelling), after the maps are computed.
    """
    from scipy import ndimage

    saliency = np.asarray(saliency, np.float64)
    normalised = minmax(saliency, axes=None)
    above = normalised > alpha * normalised.mean()
    labels, count = ndimage.label(above, structure=np.ones((3, 3)))
    if count == 0:
        return 0, 0, saliency.shape[1], saliency.shape[0]
    sizes = np.bincount(labels.reshape(-1))[1:]
    ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def box_iou(a, b) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (x1, y1 exclusive)."""
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def grid_cell_box(cell: int, grid: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The box of :func:`grid_cell_mask`'s cell."""
    row, col = divmod(cell, grid)
    y0, y1 = -(-row * height // grid), -(-(row + 1) * height // grid)
    x0, x1 = -(-col * width // grid), -(-(col + 1) * width // grid)
    return x0, y0, x1, y1


def localisation_miss(saliency: np.ndarray, box, alpha: float = LOCALISATION_ALPHA,
                      iou: float = LOCALISATION_IOU) -> bool:
    """True when the box of the map's largest region has IoU < ``iou`` with the ground-truth ``box``."""
    return box_iou(largest_region_box(saliency, alpha), box) < iou


def mask_iou(saliency: jax.Array, region: jax.Array, threshold: float = IOU_THRESHOLD) -> jax.Array:
    """IoU of the map thresholded at ``threshold`` of its range (after min-max) with a ground-truth mask (DAX paper)."""
    selected = minmax(saliency) >= threshold
    inter = jnp.sum(selected & region)
    union = jnp.sum(selected | region)
    return jnp.where(union > 0, inter / jnp.maximum(union, 1), 0.0)


def relevance_mass_accuracy(saliency: jax.Array, regions: jax.Array) -> jax.Array:
    """Share of the attribution that lies in the region (Arras et al., 2022; Quantus RelevanceMassAccuracy, which
    keeps the sign): ``sum(a * s) / sum(a)`` per map ``[B, H, W]`` against masks ``[B, H, W]``; NaN for an empty
    region. Higher is better."""
    a = saliency.reshape(saliency.shape[0], -1)
    s = regions.reshape(regions.shape[0], -1).astype(a.dtype)
    return jnp.where(s.sum(-1) > 0, (a * s).sum(-1) / a.sum(-1), jnp.nan)


def relevance_rank_accuracy(saliency: jax.Array, regions: jax.Array) -> jax.Array:
    """Share of the region's ``K`` pixels among the ``K`` most relevant ones (Arras et al., 2022; Quantus
    RelevanceRankAccuracy) per map ``[B, H, W]``; ties broken by position; NaN for an empty region."""

    def one(a, s):
        a, s = a.reshape(-1), s.reshape(-1).astype(bool)
        k = s.sum()
        rank = jnp.zeros_like(a, jnp.int32).at[jnp.argsort(-a, stable=True)].set(jnp.arange(a.size))
        return jnp.where(k > 0, jnp.sum(s & (rank < k)) / jnp.maximum(k, 1), jnp.nan)

    return jax.vmap(one)(saliency, regions)
