"""Grad-CAM (Selvaraju et al., 2017): feature maps weighted by their spatially averaged class gradients."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxplain.explainers.base import Explainer, require_feature, resize_maps, select, stateless
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting


@dataclasses.dataclass(frozen=True)
class GradcamSettings(Settings):
    method = "gradcam"
    layer: str = setting("head", "the feature whose channels are weighted (the last convolution's)")


def feature_gradients(state, params, images, labels, layer: str):
    """Returns ``(A, dY_c/dA)`` for feature ``layer``, with ``Y_c`` the logit of each example's label.

    The gradient is taken at a zero *tap* added to the feature, so it needs a model built with taps.
    """
    apply_fn = state.model.apply_fn
    _, features = jax.eval_shape(apply_fn, params, images)
    feature = require_feature(features, layer)
    zero = jnp.zeros(feature.shape, feature.dtype)

    def class_score(tap):
        logits, feats = apply_fn(params, images, {layer: tap})
        return jnp.sum(select(logits, labels)), feats[layer]

    grads, activations = jax.grad(class_score, has_aux=True)(zero)
    return activations, grads


def build(settings: GradcamSettings) -> Explainer:
    """Grad-CAM at feature ``layer``: ``ReLU(sum_k mean_ij(dY_c/dA_k) A_k)``, bilinearly upsampled."""

    def explain(state, params, images, labels, *, key=None):
        del key
        activations, grads = feature_gradients(state, params, images, labels, settings.layer)
        weights = jnp.mean(grads, axis=(1, 2))
        cam = jax.nn.relu(jnp.einsum("bhwc,bc->bhw", activations, weights))
        return resize_maps(cam, images.shape[1:3])

    return stateless(settings, explain, needs_taps=True)


METHOD = Method("gradcam", build, {"default": Preset(GradcamSettings(), "Selvaraju et al. 2017")},
                "Grad-CAM: feature channels weighted by their averaged class gradients (white-box)")
