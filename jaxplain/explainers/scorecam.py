"""Score-CAM (Wang et al., 2020): each feature channel, upsampled and min-max normalised, masks the
input; the class logits of the masked inputs, softmaxed over channels, weight the channels.

Follows the ``grad-cam`` package: masks are upsampled bilinearly with aligned corners, masked pixels
take the colour the model normalises to zero, and the map is ``ReLU(sum_k w_k A_k)`` upsampled.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jaxplain.explainers.base import Explainer, each_image, require_feature, resize_maps, select, stateless
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting
from jaxplain.imageops import align_corners_matrix, blend, fill_like, minmax


@dataclasses.dataclass(frozen=True)
class ScorecamSettings(Settings):
    method = "scorecam"
    layer: str = setting("head", "the feature whose channels mask the input")
    chunk: int = setting(64, "masked inputs per teacher call (sets peak memory)", count=True)


def build(settings: ScorecamSettings) -> Explainer:
    """Score-CAM at feature ``layer`` (one forward pass per channel, ``chunk`` at a time)."""
    layer, chunk = settings.layer, settings.chunk

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
            masks = minmax(masks, eps=1e-8)
            logits = state.model.logits(params, blend(image[None], fill[None], masks))
            return select(logits, jnp.broadcast_to(label, (chunk,)))

        logits = jax.lax.map(scores, maps.reshape(-1, chunk, *maps.shape[1:])).reshape(-1)[:channels]
        weights = jax.nn.softmax(logits)
        return jax.nn.relu(jnp.einsum("hwc,c->hw", activation, weights))

    def explain(state, params, images, labels, *, key=None):
        del key
        _, features = state.model.apply_fn(params, images)
        activations = require_feature(features, layer)
        one = lambda image, label, _key, activation: explain_one(state, params, image, label, activation)
        cams = each_image(one, images, labels, None, activations)
        return resize_maps(cams, images.shape[1:3])

    return stateless(settings, explain)


METHOD = Method("scorecam", build, {"default": Preset(ScorecamSettings(), "Wang et al. 2020, as the grad-cam package")},
                "Score-CAM: channels weighted by the class score of the input they mask (black-box given features)")
