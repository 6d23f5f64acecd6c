"""Reference maps every real method must beat: uniform noise and a centred Gaussian."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxplain.explainers.base import Explainer, each_image, stateless
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting


@dataclasses.dataclass(frozen=True)
class RandomSettings(Settings):
    method = "random"


@dataclasses.dataclass(frozen=True)
class CentreSettings(Settings):
    method = "centre"
    sigma: float = setting(0.25, "standard deviation as a fraction of the image side", above=0.0)


def build_random(settings: RandomSettings) -> Explainer:
    """Uniform noise, independent per image (the floor of every faithfulness metric)."""

    def explain(state, params, images, labels, *, key):
        del state, params
        one = lambda image, label, k: jax.random.uniform(k, image.shape[:2])
        return each_image(one, images, labels, key, sequential=False)

    return stateless(settings, explain)


def build_centre(settings: CentreSettings) -> Explainer:
    """A Gaussian centred on the image, standard deviation ``sigma`` x the image side (photographer's bias)."""

    def explain(state, params, images, labels, *, key=None):
        del state, params, labels, key
        height, width = images.shape[1:3]
        ys = (jnp.arange(height) - (height - 1) / 2) / (settings.sigma * height)
        xs = (jnp.arange(width) - (width - 1) / 2) / (settings.sigma * width)
        bump = jnp.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
        return jnp.broadcast_to(bump, (images.shape[0], height, width))

    return stateless(settings, explain)


RANDOM = Method("random", build_random, {"default": Preset(RandomSettings(), "uniform noise")},
                "uniform noise: the floor every method must beat")
CENTRE = Method("centre", build_centre, {"default": Preset(CentreSettings(), "a centred Gaussian")},
                "a centred Gaussian: the photographer's bias every method must beat")
