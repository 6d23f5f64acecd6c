"""RISE (Petsiuk et al., 2018): saliency = expected class probability under random smooth masks.

Each mask is a ``grid x grid`` Bernoulli(p) pattern, bilinearly upsampled to ``(grid + 1) * cell``
pixels and cropped at a random shift, as in the reference code. Masked pixels take the colour the
model normalises to zero. Masks are generated chunk by chunk inside a scan and images are taken one
at a time, so peak memory is ``chunk`` teacher inputs whatever ``num_masks`` and the batch size are.
The authors' code (``eclique/RISE``, ``explanations.py``) upsamples with scikit-image's ``resize(order=1,
mode="reflect")``, which mirrors the grid at its border (``mask_resize="reflect"``); ``"edge"`` repeats the
border cell, as ``jax.image.resize`` does.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from jaxplain.explainers.base import Explainer, each_image, stateless
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting
from jaxplain.imageops import blend, fill_like


@dataclasses.dataclass(frozen=True)
class RiseSettings(Settings):
    method = "rise"
    num_masks: int = setting(4000, "random masks (teacher queries per map)", count=True)
    grid: int = setting(7, "cells per side of a mask before upsampling", count=True)
    p: float = setting(0.5, "probability that a cell is kept", above=0.0, at_most=1.0)
    mask_resize: str = setting("edge", "upsampling border: edge (jax.image.resize) or reflect (the authors' "
                                       "scikit-image resize)", choices=("edge", "reflect"))
    chunk: int = setting(100, "masks per teacher call (sets peak memory)", count=True)

    def check(self):
        if self.num_masks % self.chunk:
            raise ValueError(f"num_masks ({self.num_masks}) must be a multiple of chunk ({self.chunk})")


def reflect_resize_matrix(size_in: int, size_out: int):
    """``[size_out, size_in]`` linear interpolation with half-pixel centres and mirrored borders (NumPy's and
    scikit-image's ``mode="reflect"``: the sample before the first is the second)."""
    position = (jnp.arange(size_out) + 0.5) * size_in / size_out - 0.5
    low = jnp.floor(position).astype(jnp.int32)
    frac = position - low
    mirror = lambda i: jnp.abs(jnp.where(i >= size_in, 2 * (size_in - 1) - i, i)) if size_in > 1 else 0 * i
    rows = jnp.arange(size_out)
    matrix = jnp.zeros((size_out, size_in))
    matrix = matrix.at[rows, mirror(low)].add(1.0 - frac)
    return matrix.at[rows, mirror(low + 1)].add(frac)


def random_masks(key, count: int, height: int, width: int, grid: int, p: float, resize: str = "edge") -> jax.Array:
    """``count`` RISE masks ``[count, H, W]`` in [0, 1]."""
    cell_h, cell_w = math.ceil(height / grid), math.ceil(width / grid)
    up_h, up_w = (grid + 1) * cell_h, (grid + 1) * cell_w
    grid_key, shift_key = jax.random.split(key)
    cells = jax.random.bernoulli(grid_key, p, (count, grid, grid)).astype(jnp.float32)
    if resize == "reflect":
        rows, cols = reflect_resize_matrix(grid, up_h), reflect_resize_matrix(grid, up_w)
        upsampled = jnp.einsum("Hh,chw,Ww->cHW", rows, cells, cols)
    else:
        upsampled = jax.image.resize(cells, (count, up_h, up_w), method="bilinear")
    shifts = jax.random.randint(shift_key, (count, 2), 0, jnp.array([cell_h, cell_w]))
    crop = lambda m, s: jax.lax.dynamic_slice(m, (s[0], s[1]), (height, width))
    return jax.vmap(crop)(upsampled, shifts)


def build(settings: RiseSettings) -> Explainer:
    s = settings

    def explain_one(state, params, image, label, key):
        height, width = image.shape[:2]
        fill = fill_like(image, state.model.zero_pixel)

        def accumulate(total, index):
            masks = random_masks(jax.random.fold_in(key, index), s.chunk, height, width, s.grid, s.p, s.mask_resize)
            probs = state.model.probabilities(params, blend(image[None], fill[None], masks))[:, label]
            return total + jnp.tensordot(probs, masks, axes=1), None

        total, _ = jax.lax.scan(accumulate, jnp.zeros((height, width)), jnp.arange(s.num_masks // s.chunk))
        return total / (s.num_masks * s.p)

    def explain(state, params, images, labels, *, key):
        return each_image(lambda *example: explain_one(state, params, *example), images, labels, key)

    return stateless(settings, explain)


METHOD = Method("rise", build, {
    "default": Preset(RiseSettings(), "RISE paper (Petsiuk et al. 2018): N = 4000 masks, s = 7, p = 0.5"),
    "reference": Preset(RiseSettings(num_masks=6000, grid=8, p=0.1, mask_resize="reflect"),
                        "the authors' code, eclique/RISE: Saliency.ipynb generate_masks(N=6000, s=8, p1=0.1), "
                        "explanations.py's scikit-image resize(order=1, mode='reflect')"),
}, "RISE: class probability under random smooth masks (black-box)")
