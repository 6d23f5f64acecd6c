"""Pointing game (Zhang et al., 2016) and saliency sparsity (mean intensity, seed 004 Table 3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

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
