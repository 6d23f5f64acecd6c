"""Reference maps every real method must beat: uniform noise and a centred Gaussian."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxplain.explainers.base import Explainer, per_example_keys, stateless


def random() -> Explainer:
    """Uniform noise, independent per image (the floor of every faithfulness metric)."""

    def explain(state, params, images, labels, *, key):
        del state, params, labels
        keys = per_example_keys(key, images.shape[0])
        return jax.vmap(lambda k: jax.random.uniform(k, images.shape[1:3]))(keys)

    return stateless("random", explain)


def centre(sigma: float = 0.25) -> Explainer:
    """A Gaussian centred on the image, standard deviation ``sigma`` x the image side (photographer's bias)."""

    def explain(state, params, images, labels, *, key=None):
        del state, params, labels, key
        height, width = images.shape[1:3]
        ys = (jnp.arange(height) - (height - 1) / 2) / (sigma * height)
        xs = (jnp.arange(width) - (width - 1) / 2) / (sigma * width)
        bump = jnp.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
        return jnp.broadcast_to(bump, (images.shape[0], height, width))

    return stateless("centre", explain)
