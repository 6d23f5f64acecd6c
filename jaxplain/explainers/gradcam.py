"""Grad-CAM (Selvaraju et al., 2017): feature maps weighted by their spatially averaged class gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxplain.explainers.base import Explainer, require_feature, resize_maps, select, stateless


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


def gradcam(layer: str = "head") -> Explainer:
    """Grad-CAM at feature ``layer``: ``ReLU(sum_k mean_ij(dY_c/dA_k) A_k)``, bilinearly upsampled."""

    def explain(state, params, images, labels, *, key=None):
        del key
        activations, grads = feature_gradients(state, params, images, labels, layer)
        weights = jnp.mean(grads, axis=(1, 2))
        cam = jax.nn.relu(jnp.einsum("bhwc,bc->bhw", activations, weights))
        return resize_maps(cam, images.shape[1:3])

    return stateless("gradcam", explain, needs_taps=True)
