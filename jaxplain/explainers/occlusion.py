"""Occlusion (Zeiler & Fergus, 2014): the score drop when a sliding square is set to the mean colour.

Matches ``captum.attr.Occlusion``: each pixel gets the mean, over the windows covering it, of
``score(x) - score(x with the window occluded)``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain.explainers.base import Explainer, each_image, select, stateless
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting
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


@dataclasses.dataclass(frozen=True)
class OcclusionSettings(Settings):
    method = "occlusion"
    window: int | None = setting(None, "side of the occluding square in px (None: 1/7 of the image side)", count=True)
    stride: int | None = setting(None, "step between windows in px (None: half the window)", count=True)
    target: str = setting("logit", "the score whose drop is recorded", choices=("logit", "probability"))
    chunk: int = setting(64, "occluded inputs per teacher call (sets peak memory)", count=True)

    def resolve(self, context):
        window = self.window or max(1, round(context.input_shape[0] / 7))
        return self.replace(window=window, stride=self.stride or max(1, window // 2))


def build(settings: OcclusionSettings) -> Explainer:
    """Occlusion with a ``window`` x ``window`` square moved by ``stride``."""
    window, stride, target, chunk = settings.window, settings.stride, settings.target, settings.chunk

    def explain_one(state, params, image, label, _, masks):
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
        return each_image(lambda image, label, k: explain_one(state, params, image, label, k, masks), images, labels)

    return stateless(settings, explain)


METHOD = Method("occlusion", build, {"default": Preset(OcclusionSettings(), "Zeiler & Fergus 2014, as captum's Occlusion")},
                "occlusion: the score drop when a sliding square is set to the mean colour (black-box)")
