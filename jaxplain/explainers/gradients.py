"""Gradient attributions: plain gradient (Simonyan et al., 2014), integrated gradients (Sundararajan
et al., 2017) and SmoothGrad (Smilkov et al., 2017). All differentiate the class logit."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxplain.explainers.base import Explainer, per_example_keys, select, stateless


def input_gradients(state, params, images, labels):
    """``d logit_label / d images`` for a batch (examples are independent in inference mode)."""

    def total(x):
        return jnp.sum(select(state.model.logits(params, x), labels))

    return jax.grad(total)(images)


def _channel_max_abs(attribution):
    return jnp.max(jnp.abs(attribution), axis=-1)


def gradient() -> Explainer:
    """Plain gradient: max over channels of |d logit_c / d x| (Simonyan et al.)."""

    def explain(state, params, images, labels, *, key=None):
        del key
        return _channel_max_abs(input_gradients(state, params, images, labels))

    return stateless("gradient", explain)


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


def integrated_gradients(steps: int = 50, baseline: str = "black", reduce: str = "sum") -> Explainer:
    """Integrated gradients from a ``black`` or ``mean``-colour baseline; channels summed (``sum``) or ``abs``-summed."""
    if baseline not in ("black", "mean"):
        raise ValueError(f"baseline must be 'black' or 'mean', not {baseline!r}")
    if reduce not in ("sum", "abs"):
        raise ValueError(f"reduce must be 'sum' or 'abs', not {reduce!r}")

    def explain(state, params, images, labels, *, key=None):
        del key
        colour = jnp.zeros(3) if baseline == "black" else jnp.asarray(state.model.zero_pixel)
        start = jnp.broadcast_to(colour.astype(images.dtype), images.shape)
        attribution = integrated_gradients_attribution(state, params, images, labels, start, steps)
        return attribution.sum(-1) if reduce == "sum" else jnp.abs(attribution).sum(-1)

    return stateless("integrated_gradients", explain)


def smoothgrad(samples: int = 50, noise: float = 0.15) -> Explainer:
    """SmoothGrad: gradients averaged over ``samples`` copies with Gaussian noise (``noise`` x the [0, 1] range)."""

    def explain(state, params, images, labels, *, key):
        keys = per_example_keys(key, images.shape[0])

        def accumulate(total, index):
            noise_keys = jax.vmap(lambda k: jax.random.fold_in(k, index))(keys)
            eps = jax.vmap(lambda k: jax.random.normal(k, images.shape[1:], images.dtype))(noise_keys)
            return total + input_gradients(state, params, images + noise * eps, labels), None

        total, _ = jax.lax.scan(accumulate, jnp.zeros_like(images), jnp.arange(samples))
        return _channel_max_abs(total / samples)

    return stateless("smoothgrad", explain)
