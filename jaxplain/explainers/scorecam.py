"""Score-CAM (Wang et al., 2020): each feature channel, upsampled and min-max normalised, masks the
input; the class logits of the masked inputs, softmaxed over channels, weight the channels.

Follows the ``grad-cam`` package: masks are upsampled bilinearly with aligned corners, masked pixels
take the colour the model normalises to zero, and the map is ``ReLU(sum_k w_k A_k)`` upsampled.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain.explainers.base import Explainer, map_images, require_feature, resize_maps, select, stateless
from jaxplain.imageops import blend, fill_like


def align_corners_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Linear interpolation ``[size_out, size_in]`` mapping the first/last samples onto each other."""
    if size_in == 1:
        return np.ones((size_out, 1), np.float32)
    position = np.arange(size_out) * (size_in - 1) / max(size_out - 1, 1)
    low = np.clip(np.floor(position).astype(int), 0, size_in - 2)
    frac = position - low
    matrix = np.zeros((size_out, size_in), np.float32)
    matrix[np.arange(size_out), low] = 1 - frac
    matrix[np.arange(size_out), low + 1] += frac
    return matrix


def scorecam(layer: str = "head", chunk: int = 64) -> Explainer:
    """Score-CAM at feature ``layer`` (one forward pass per channel, ``chunk`` at a time)."""

    def explain_one(state, params, image, label, activation):
        height, width = image.shape[:2]
        rows = jnp.asarray(align_corners_matrix(activation.shape[0], height))
        cols = jnp.asarray(align_corners_matrix(activation.shape[1], width))
        channels = activation.shape[-1]
        padded = -(-channels // chunk) * chunk
        maps = jnp.moveaxis(activation, -1, 0)
        maps = jnp.concatenate([maps, jnp.zeros((padded - channels, *maps.shape[1:]), maps.dtype)])
        fill = fill_like(image, state.model.zero_pixel)

        def scores(chunk_maps):
            masks = jnp.einsum("Hh,chw,Ww->cHW", rows, chunk_maps, cols)
            low = masks.min(axis=(1, 2), keepdims=True)
            high = masks.max(axis=(1, 2), keepdims=True)
            masks = (masks - low) / (high - low + 1e-8)
            logits = state.model.logits(params, blend(image[None], fill[None], masks))
            return select(logits, jnp.broadcast_to(label, (chunk,)))

        logits = jax.lax.map(scores, maps.reshape(-1, chunk, *maps.shape[1:])).reshape(-1)[:channels]
        weights = jax.nn.softmax(logits)
        return jax.nn.relu(jnp.einsum("hwc,c->hw", activation, weights))

    def explain(state, params, images, labels, *, key=None):
        del key
        _, features = state.model.apply_fn(params, images)
        activations = require_feature(features, layer)
        cams = map_images(lambda *example: explain_one(state, params, *example), images, labels, activations)
        return resize_maps(cams, images.shape[1:3])

    return stateless("scorecam", explain)
