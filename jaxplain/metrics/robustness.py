"""How much a map moves when the input barely does: max- and average-sensitivity (Yeh et al., 2019; Quantus
MaxSensitivity and AvgSensitivity). The explainer runs again on ``samples`` copies of each image with uniform
noise in ``[-radius, radius]`` (in [0, 1] pixel units) added and clipped to [0, 1]; the sensitivity of one copy is
``||a(x') - a(x)|| / ||a(x)||`` (Frobenius norms). Lower is better."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def sensitivities(explain: Callable, images: jax.Array, labels: jax.Array, maps: jax.Array, key, *,
                  samples: int = 10, radius: float = 0.05) -> jax.Array:
    """``[B, samples]``: the relative change of each image's map ``maps`` under each noisy copy;
    ``explain(images, labels, key) -> maps`` is the explainer with its state and params bound (any callable: the
    copies are explained one after another)."""
    norms = jnp.maximum(jnp.sqrt((maps ** 2).reshape(len(maps), -1).sum(-1)), 1e-12)
    values = []
    for k in jax.random.split(key, samples):
        noise_key, explain_key = jax.random.split(k)
        noisy = jnp.clip(images + jax.random.uniform(noise_key, images.shape, minval=-radius, maxval=radius), 0, 1)
        moved = jnp.asarray(explain(noisy, labels, explain_key))
        values.append(jnp.sqrt(((moved - maps) ** 2).reshape(len(maps), -1).sum(-1)) / norms)
    return jnp.stack(values, -1)


def max_sensitivity(values: jax.Array) -> jax.Array:
    return values.max(-1)


def avg_sensitivity(values: jax.Array) -> jax.Array:
    return values.mean(-1)
