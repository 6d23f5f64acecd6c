"""Gradient attributions: plain gradient (Simonyan et al., 2014), integrated gradients (Sundararajan
et al., 2017) and SmoothGrad (Smilkov et al., 2017). All differentiate the class logit."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxplain.explainers.base import Explainer, per_example_keys, select, stateless
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting


@dataclasses.dataclass(frozen=True)
class GradientSettings(Settings):
    method = "gradient"


@dataclasses.dataclass(frozen=True)
class IntegratedGradientsSettings(Settings):
    method = "integrated_gradients"
    steps: int = setting(50, "intervals of the trapezoid rule (teacher backward passes: steps + 1)", count=True)
    baseline: str = setting("black", "the path's start: black, or the model's mean colour", choices=("black", "mean"))
    reduce: str = setting("sum", "how channels are combined: sum, or sum of absolute values", choices=("sum", "abs"))


@dataclasses.dataclass(frozen=True)
class SmoothgradSettings(Settings):
    method = "smoothgrad"
    samples: int = setting(50, "noisy copies averaged", count=True)
    noise: float = setting(0.15, "noise standard deviation as a fraction of the [0, 1] range", at_least=0.0)


def input_gradients(state, params, images, labels):
    """``d logit_label / d images`` for a batch (examples are independent in inference mode)."""

    def total(x):
        return jnp.sum(select(state.model.logits(params, x), labels))

    return jax.grad(total)(images)


def _channel_max_abs(attribution):
    return jnp.max(jnp.abs(attribution), axis=-1)


def build_gradient(settings: GradientSettings) -> Explainer:
    """Plain gradient: max over channels of |d logit_c / d x| (Simonyan et al.)."""

    def explain(state, params, images, labels, *, key=None):
        del key
        return _channel_max_abs(input_gradients(state, params, images, labels))

    return stateless(settings, explain)


def integrated_gradients_attribution(state, params, images, labels, baseline, steps: int):
    """Per-channel IG ``(x - x0) * mean_k grad(x0 + a_k (x - x0))`` with the trapezoid rule on ``steps`` intervals."""
    alphas = jnp.linspace(0.0, 1.0, steps + 1)
    weights = jnp.full((steps + 1,), 1.0 / steps).at[0].mul(0.5).at[-1].mul(0.5)

    def accumulate(total, alpha_weight):
        alpha, weight = alpha_weight
        grads = input_gradients(state, params, baseline + alpha * (images - baseline), labels)
        return total + weight * grads, None

    mean_grads, _ = jax.lax.scan(accumulate, jnp.zeros_like(images), (alphas, weights))
    return (images - baseline) * mean_grads


def build_integrated_gradients(settings: IntegratedGradientsSettings) -> Explainer:
    """Integrated gradients from a ``black`` or ``mean``-colour baseline; channels summed (``sum``) or ``abs``-summed."""
    steps, baseline, reduce = settings.steps, settings.baseline, settings.reduce

    def explain(state, params, images, labels, *, key=None):
        del key
        colour = jnp.zeros(3) if baseline == "black" else jnp.asarray(state.model.zero_pixel)
        start = jnp.broadcast_to(colour.astype(images.dtype), images.shape)
        attribution = integrated_gradients_attribution(state, params, images, labels, start, steps)
        return attribution.sum(-1) if reduce == "sum" else jnp.abs(attribution).sum(-1)

    return stateless(settings, explain)


def build_smoothgrad(settings: SmoothgradSettings) -> Explainer:
    """SmoothGrad: gradients averaged over ``samples`` copies with Gaussian noise (``noise`` x the [0, 1] range)."""
    samples, noise = settings.samples, settings.noise

    def explain(state, params, images, labels, *, key):
        keys = per_example_keys(key, images.shape[0])

        def accumulate(total, index):
            noise_keys = jax.vmap(lambda k: jax.random.fold_in(k, index))(keys)
            eps = jax.vmap(lambda k: jax.random.normal(k, images.shape[1:], images.dtype))(noise_keys)
            return total + input_gradients(state, params, images + noise * eps, labels), None

        total, _ = jax.lax.scan(accumulate, jnp.zeros_like(images), jnp.arange(samples))
        return _channel_max_abs(total / samples)

    return stateless(settings, explain)


GRADIENT = Method("gradient", build_gradient, {"default": Preset(GradientSettings(), "Simonyan et al. 2014")},
                  "plain gradient: |d logit / d pixel|, largest over channels (gradient)")
INTEGRATED_GRADIENTS = Method("integrated_gradients", build_integrated_gradients, {
    "default": Preset(IntegratedGradientsSettings(), "Sundararajan et al. 2017, as captum's IntegratedGradients")},
    "integrated gradients from a black or mean-colour baseline (gradient)")
SMOOTHGRAD = Method("smoothgrad", build_smoothgrad, {"default": Preset(SmoothgradSettings(), "Smilkov et al. 2017")},
                    "SmoothGrad: gradients averaged over noisy copies (gradient)")
