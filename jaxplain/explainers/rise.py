"""RISE (Petsiuk et al., 2018): saliency = expected class probability under random smooth masks.

Each mask is a ``grid x grid`` Bernoulli(p) pattern, bilinearly upsampled to ``(grid + 1) * cell``
pixels and cropped at a random shift, as in the reference code. Masked pixels take the colour the
model normalises to zero. Masks are generated chunk by chunk inside a scan and images are taken one
at a time, so peak memory is ``chunk`` teacher inputs whatever ``num_masks`` and the batch size are.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxplain.explainers.base import Explainer, map_images, per_example_keys, stateless
from jaxplain.imageops import blend, fill_like


def random_masks(key, count: int, height: int, width: int, grid: int, p: float) -> jax.Array:
    """``count`` RISE masks ``[count, H, W]`` in [0, 1]."""
    cell_h, cell_w = math.ceil(height / grid), math.ceil(width / grid)
    up_h, up_w = (grid + 1) * cell_h, (grid + 1) * cell_w
    grid_key, shift_key = jax.random.split(key)
    cells = jax.random.bernoulli(grid_key, p, (count, grid, grid)).astype(jnp.float32)
    upsampled = jax.image.resize(cells, (count, up_h, up_w), method="bilinear")
    shifts = jax.random.randint(shift_key, (count, 2), 0, jnp.array([cell_h, cell_w]))
    crop = lambda m, s: jax.lax.dynamic_slice(m, (s[0], s[1]), (height, width))
    return jax.vmap(crop)(upsampled, shifts)


def rise(num_masks: int = 4000, grid: int = 7, p: float = 0.5, chunk: int = 100) -> Explainer:
    """RISE with ``num_masks`` masks on a ``grid`` x ``grid`` grid, keep probability ``p``."""
    if num_masks % chunk:
        raise ValueError(f"num_masks ({num_masks}) must be a multiple of chunk ({chunk})")

    def explain_one(state, params, image, label, key):
        height, width = image.shape[:2]
        fill = fill_like(image, state.model.zero_pixel)

        def accumulate(total, index):
            masks = random_masks(jax.random.fold_in(key, index), chunk, height, width, grid, p)
            probs = state.model.probabilities(params, blend(image[None], fill[None], masks))[:, label]
            return total + jnp.tensordot(probs, masks, axes=1), None

        total, _ = jax.lax.scan(accumulate, jnp.zeros((height, width)), jnp.arange(num_masks // chunk))
        return total / (num_masks * p)

    def explain(state, params, images, labels, *, key):
        keys = per_example_keys(key, images.shape[0])
        return map_images(lambda *example: explain_one(state, params, *example), images, labels, keys)

    return stateless("rise", explain)
