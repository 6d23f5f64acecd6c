"""Extremal perturbation (Fong, Patrick & Vedaldi, 2019): the smooth mask of a fixed area that keeps
the class score highest when everything outside it is blurred.

For each target area ``a`` a low-resolution mask is optimised with Adam in a ``lax.scan``; it is
upsampled and smoothed, the image is preserved inside it and blurred outside, and the energy is
``-logit_c + lambda_t * ||sort(m) - r_a||^2 / HW`` where ``r_a`` is the sorted mask of area ``a`` and
``lambda_t`` grows geometrically from 1 to ``area_weight`` (the area constraint tightens as the
optimisation proceeds). The saliency is the sum of the masks over areas, as in TorchRay's demos.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxplain.explainers.base import Explainer, select, stateless
from jaxplain.imageops import blend, gaussian_blur


def smooth_mask(grid: jax.Array, height: int, width: int, sigma: float) -> jax.Array:
    """Bilinearly upsamples a ``[h, w]`` parameter grid in [0, 1] and smooths it with a Gaussian."""
    mask = jax.image.resize(jnp.clip(grid, 0.0, 1.0), (height, width), method="bilinear")
    size = int(2 * round(2 * sigma) + 1)
    return gaussian_blur(mask[..., None], size, sigma)[..., 0]


def area_reference(pixels: int, area: float) -> jax.Array:
    """The sorted values of an ideal mask that keeps a fraction ``area`` of ``pixels``."""
    return (jnp.arange(pixels) >= jnp.round(pixels * (1.0 - area))).astype(jnp.float32)


def extremal(areas: tuple[float, ...] = (0.05, 0.1, 0.2), iterations: int = 300, learning_rate: float = 0.05,
             stride: int | None = None, smoothing: float | None = None, blur_sigma: float | None = None,
             area_weight: float = 300.0) -> Explainer:
    """Extremal perturbation ("preserve" variant) for the given ``areas``.

    ``stride`` (mask cell size), ``smoothing`` and ``blur_sigma`` default to fractions of the image
    side: 14, 8 and 10 px at 224 px.
    """
    areas = tuple(float(a) for a in areas)

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

        def step(carry, t):
            grid, opt_state = carry
            weight = area_weight ** (t / max(iterations - 1, 1))
            grads = jax.grad(energy)(grid, weight)
            updates, opt_state = optimiser.update(grads, opt_state)
            return (jnp.clip(optax.apply_updates(grid, updates), 0.0, 1.0), opt_state), None

        (grid, _), _ = jax.lax.scan(step, (grid, optimiser.init(grid)), jnp.arange(iterations))
        return smooth_mask(grid, height, width, sigma)

    def explain_one(state, params, image, label):
        sigma = blur_sigma or image.shape[0] / 22.4
        blurred = gaussian_blur(image, int(2 * round(2 * sigma) + 1), sigma, fill=state.model.zero_pixel)
        per_area = jax.vmap(explain_area, in_axes=(None, None, None, None, None, 0))
        return per_area(state, params, image, blurred, label, jnp.asarray(areas)).sum(axis=0)

    def explain(state, params, images, labels, *, key=None):
        del key
        return jax.vmap(explain_one, in_axes=(None, None, 0, 0))(state, params, images, labels)

    return stateless("extremal", explain)
