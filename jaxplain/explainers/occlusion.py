"""Occlusion (Zeiler & Fergus, 2014): the score drop when a sliding square is set to the mean colour.

Matches ``captum.attr.Occlusion``: each pixel gets the mean, over the windows covering it, of
``score(x) - score(x with the window occluded)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain.explainers.base import Explainer, map_images, select, stateless
from jaxplain.imageops import blend, fill_like


def window_masks(height: int, width: int, window: int, stride: int) -> np.ndarray:
    """All window positions as masks ``[N, H, W]`` (1 inside the window), row-major origins."""
    origins = [(y, x) for y in range(0, height - window + 1, stride) for x in range(0, width - window + 1, stride)]
    masks = np.zeros((len(origins), height, width), np.float32)
    for n, (y, x) in enumerate(origins):
        masks[n, y:y + window, x:x + window] = 1.0
    return masks


def class_score(state, params, images, labels, target: str):
    scores = state.model.probabilities(params, images) if target == "probability" else state.model.logits(params, images)
    return select(scores, labels)


def occlusion(window: int | None = None, stride: int | None = None, target: str = "logit", chunk: int = 64) -> Explainer:
    """Occlusion with a ``window`` x ``window`` square moved by ``stride``; ``target`` is ``logit`` or ``probability``.

    By default the window is 1/7 of the image side (32 px at 224) and the stride half the window.
    """
    if target not in ("logit", "probability"):
        raise ValueError(f"target must be 'logit' or 'probability', not {target!r}")

    def explain_one(state, params, image, label, masks):
        fill = fill_like(image, state.model.zero_pixel)
        clean = class_score(state, params, image[None], label[None], target)[0]

        def drops(chunk_masks):
            occluded = blend(fill[None], image[None], chunk_masks)
            scores = class_score(state, params, occluded, jnp.broadcast_to(label, (chunk,)), target)
            return jnp.tensordot(clean - scores, chunk_masks, axes=1)

        total = jax.lax.map(drops, masks.reshape(-1, chunk, *masks.shape[1:])).sum(0)
        coverage = masks.sum(0)
        return jnp.where(coverage > 0, total / jnp.maximum(coverage, 1.0), 0.0)

    def explain(state, params, images, labels, *, key=None):
        del key
        height, width = images.shape[1:3]
        side = window or max(1, round(height / 7))
        masks = window_masks(height, width, side, stride or max(1, side // 2))
        masks = np.concatenate([masks, np.zeros((-len(masks) % chunk, height, width), np.float32)])
        masks = jnp.asarray(masks)
        return map_images(lambda image, label: explain_one(state, params, image, label, masks), images, labels)

    return stateless("occlusion", explain)
