"""Extremal perturbation (Fong, Patrick & Vedaldi, 2019): the smooth mask of a fixed area that keeps
the class score highest when everything outside it is blurred.

For each target area ``a`` a low-resolution mask is optimised with Adam in a ``lax.scan``; it is
upsampled and smoothed, the image is preserved inside it and blurred outside, and the energy is
``-logit_c + lambda_t * ||sort(m) - r_a||^2 / HW`` where ``r_a`` is the sorted mask of area ``a`` and
``lambda_t`` grows geometrically from 1 to ``area_weight`` (the area constraint tightens as the
optimisation proceeds). The saliency is the sum of the masks over areas, as in TorchRay's demos.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxplain.explainers.base import Explainer, each_image, minimise, select, stateless
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting
from jaxplain.imageops import blend, gaussian_blur


def smooth_mask(grid: jax.Array, height: int, width: int, sigma: float) -> jax.Array:
    """Bilinearly upsamples a ``[h, w]`` parameter grid in [0, 1] and smooths it with a Gaussian."""
    mask = jax.image.resize(jnp.clip(grid, 0.0, 1.0), (height, width), method="bilinear")
    size = int(2 * round(2 * sigma) + 1)
    return gaussian_blur(mask[..., None], size, sigma)[..., 0]


def area_reference(pixels: int, area: float) -> jax.Array:
    """The sorted values of an ideal mask that keeps a fraction ``area`` of ``pixels``."""
    return (jnp.arange(pixels) >= jnp.round(pixels * (1.0 - area))).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class ExtremalSettings(Settings):
    method = "extremal"
    areas: tuple[float, ...] = setting((0.05, 0.1, 0.2), "areas of the masks whose sum is the map", above=0.0,
                                       below=1.0)
    iterations: int = setting(300, "Adam steps per area", count=True)
    learning_rate: float = setting(0.05, "Adam's step size", above=0.0)
    stride: int | None = setting(None, "mask cell size in px (None: 1/16 of the side, 14 px at 224)", count=True)
    smoothing: float | None = setting(None, "mask smoothing sigma in px (None: side / 28, 8 px at 224)", above=0.0)
    blur_sigma: float | None = setting(None, "background blur sigma in px (None: side / 22.4, 10 px at 224)",
                                       above=0.0)
    area_weight: float = setting(300.0, "final weight of the area constraint (it grows from 1)", above=0.0)

    def check(self):
        if not self.areas:
            raise ValueError("areas is empty; give at least one area in (0, 1)")

    def resolve(self, context):
        side = context.input_shape[0]
        return self.replace(stride=self.stride or max(1, side // 16), smoothing=self.smoothing or side / 28,
                            blur_sigma=self.blur_sigma or side / 22.4)


def build(settings: ExtremalSettings) -> Explainer:
    """Extremal perturbation ("preserve" variant) for the given ``areas``."""
    areas, iterations, learning_rate = settings.areas, settings.iterations, settings.learning_rate
    stride, smoothing, blur_sigma, area_weight = settings.stride, settings.smoothing, settings.blur_sigma, settings.area_weight

    def explain_area(state, params, image, blurred, label, area):
        height, width = image.shape[:2]
        cell = stride or max(1, height // 16)
        sigma = smoothing or height / 28
        reference = area_reference(height * width, area)
        optimiser = optax.adam(learning_rate)
        grid = jnp.full((-(-height // cell), -(-width // cell)), 0.5)

        def energy(grid, weight):
            mask = smooth_mask(grid, height, width, sigma)
            logit = select(state.model.logits(params, blend(image, blurred, mask)[None]), label[None])[0]
            area_loss = jnp.mean((jnp.sort(mask.reshape(-1)) - reference) ** 2)
            return -logit + weight * area_loss

        weight = lambda t: area_weight ** (t / max(iterations - 1, 1))
        grid, _ = minimise(lambda g, t: energy(g, weight(t)), grid, optimiser, iterations, xs=jnp.arange(iterations),
                           project=lambda g: jnp.clip(g, 0.0, 1.0))
        return smooth_mask(grid, height, width, sigma)

    def explain_one(state, params, image, label, _):
        sigma = blur_sigma or image.shape[0] / 22.4
        blurred = gaussian_blur(image, int(2 * round(2 * sigma) + 1), sigma, fill=state.model.zero_pixel)
        per_area = jax.vmap(explain_area, in_axes=(None, None, None, None, None, 0))
        return per_area(state, params, image, blurred, label, jnp.asarray(areas)).sum(axis=0)

    def explain(state, params, images, labels, *, key=None):
        del key
        return each_image(lambda *example: explain_one(state, params, *example), images, labels, sequential=False)

    return stateless(settings, explain)


METHOD = Method("extremal", build, {"default": Preset(ExtremalSettings(), "Fong, Patrick & Vedaldi 2019 (TorchRay's demo)")},
                "extremal perturbation: smooth masks of fixed areas that keep the class (gradient)")
