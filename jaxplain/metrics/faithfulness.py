"""Deletion and insertion (Petsiuk et al., 2018, "RISE"; seed 004, Algorithms A1/A2), as pure functions.

Pixels are ranked by saliency, most salient first (ties broken by position), and moved in ``steps``
equal steps (224 for the exact protocol, 28 for the fast one: 224 and 1792 pixels per step on
224x224 images, the same fractions at any size), all channels together. *Deletion* starts from the image and replaces moved pixels
with the colour the model normalises to zero (the mean colour); *insertion* starts from a Gaussian
blur of the image (kernel 11, sigma 5) and restores the original pixels. Each curve is the softmax
probability of the class under study after 0, 1, ..., ``steps`` steps; its AUC is the trapezoid
rule over the fraction of pixels moved, on [0, 1]. Lower deletion and higher insertion are better.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from jaxplain.imageops import fill_like, gaussian_blur
from jaxplain.model import probabilities_of


@dataclasses.dataclass(frozen=True)
class Protocol:
    steps: int  # steps from the first to the last pixel
    blur_size: int = 11
    blur_sigma: float = 5.0

    def step_size(self, height: int, width: int) -> int:
        """Pixels moved per step (the last step may move fewer)."""
        return math.ceil(height * width / self.steps)

    def num_steps(self, height: int, width: int) -> int:
        return math.ceil(height * width / self.step_size(height, width))


EXACT = Protocol(steps=224)  # 224 pixels per step on 224x224 images
FAST = Protocol(steps=28)  # 1792 pixels per step on 224x224 images
PROTOCOLS = {"exact": EXACT, "fast": FAST}


def pixel_ranks(saliency: jax.Array) -> jax.Array:
    """Rank of every pixel of ``[H, W]`` saliency, 0 for the most salient; ties go to the earlier pixel."""
    order = jnp.argsort(-saliency.reshape(-1), stable=True)
    return jnp.zeros_like(order).at[order].set(jnp.arange(order.size)).reshape(saliency.shape)


def auc(curve: jax.Array) -> jax.Array:
    """Trapezoid-rule area under a curve sampled uniformly on [0, 1] (last axis)."""
    n = curve.shape[-1] - 1
    return (curve.sum(-1) - 0.5 * (curve[..., 0] + curve[..., -1])) / n


def _curve(prob_fn, start, finish, ranks, label, num_steps: int, step: int, chunk: int) -> jax.Array:
    """Probabilities of ``label`` as pixels move from ``start`` to ``finish`` in rank order."""
    points = num_steps + 1
    padded = -(-points // chunk) * chunk
    counts = jnp.arange(padded).reshape(-1, chunk) * step

    def score(chunk_counts):
        moved = (ranks[None] < chunk_counts[:, None, None])[..., None]
        images = jnp.where(moved, finish[None], start[None])
        return prob_fn(images)[:, label]

    return jax.lax.map(score, counts).reshape(-1)[:points]


def deletion_insertion(prob_fn, image, saliency, label, zero_pixel, protocol: Protocol = FAST, chunk: int = 32):
    """Deletion and insertion curves of one image ``[H, W, C]`` explained by ``saliency`` ``[H, W]``.

    ``prob_fn(images[N, H, W, C]) -> probabilities[N, K]``. Returns a dict of both curves and AUCs.
    """
    height, width = saliency.shape
    num_steps = protocol.num_steps(height, width)
    ranks = pixel_ranks(saliency)
    blurred = gaussian_blur(image, protocol.blur_size, protocol.blur_sigma, fill=zero_pixel)
    step = protocol.step_size(height, width)
    deletion = _curve(prob_fn, image, fill_like(image, zero_pixel), ranks, label, num_steps, step, chunk)
    insertion = _curve(prob_fn, blurred, image, ranks, label, num_steps, step, chunk)
    return {"deletion": auc(deletion), "insertion": auc(insertion),
            "deletion_curve": deletion, "insertion_curve": insertion}


def batch_deletion_insertion(apply_fn, params, images, saliency, labels, zero_pixel,
                             protocol: Protocol = FAST, chunk: int = 32):
    """:func:`deletion_insertion` for a batch, image after image (peak memory: ``chunk`` teacher
    inputs whatever the batch size); ``apply_fn`` follows the model contract."""

    prob_fn = functools.partial(probabilities_of, apply_fn, params)

    one = lambda example: deletion_insertion(prob_fn, *example, zero_pixel, protocol, chunk)
    return jax.lax.map(one, (images, saliency, labels))
