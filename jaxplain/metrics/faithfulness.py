"""Deletion and insertion (Petsiuk et al., 2018, "RISE"; seed 004, Algorithms A1/A2), as pure functions.

Pixels are ranked by saliency, most salient first, and moved in ``steps`` equal steps (224 or 28: 224 and
1792 pixels per step on 224x224 images, the same fractions at any size), all channels together. *Deletion*
starts from the image and replaces moved pixels with the colour the model normalises to zero (the mean colour);
*insertion* starts from a blur of the image (11 x 11 kernel, sigma 5) and restores the original pixels. Each
curve is the softmax probability of the class under study after 0, 1, ..., ``steps`` steps; its AUC is the
trapezoid rule over the fraction of pixels moved, on [0, 1]. Lower deletion and higher insertion are better.

Two insertion substrates differ: ``"normalised"`` blurs with a normalised 11-tap Gaussian (centre weight
0.0120, corner 0.0044), ``"gaussian_filtered_delta"`` with the RISE authors' ``gkern(11, 5)`` (``eclique/RISE``,
``evaluation.py``): ``scipy.ndimage.gaussian_filter`` of a delta in an 11 x 11 array with reflected borders, a
nearly flat kernel (centre 0.0088, corner 0.0077). The ``rise`` and ``rise_fast`` protocols use the authors'
kernel and their pixel order (``np.flip(np.argsort(saliency))``: ties go to the later pixel), so their numbers
compare with published RISE tables; ``exact`` and ``fast`` are jaxplain's earlier protocols.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain.imageops import fill_like, gaussian_blur
from jaxplain.model import probabilities_of


@dataclasses.dataclass(frozen=True)
class Protocol:
    steps: int  # steps from the first to the last pixel
    blur_size: int = 11
    blur_sigma: float = 5.0
    substrate: str = "normalised"  # insertion blur kernel: "normalised" or "gaussian_filtered_delta"
    ties: str = "first"  # among equal saliencies the earlier pixel moves first, or the later ("last")

    def step_size(self, height: int, width: int) -> int:
        """Pixels moved per step (the last step may move fewer)."""
        return math.ceil(height * width / self.steps)

    def num_steps(self, height: int, width: int) -> int:
        return math.ceil(height * width / self.step_size(height, width))


EXACT = Protocol(steps=224)  # 224 pixels per step on 224x224 images
FAST = Protocol(steps=28)  # 1792 pixels per step on 224x224 images
RISE = Protocol(steps=224, substrate="gaussian_filtered_delta", ties="last")  # the RISE authors' CausalMetric
RISE_FAST = Protocol(steps=28, substrate="gaussian_filtered_delta", ties="last")  # theirs at 224 * 8 px per step
PROTOCOLS = {"exact": EXACT, "fast": FAST, "rise": RISE, "rise_fast": RISE_FAST}


def gaussian_filtered_delta(size: int, sigma: float) -> np.ndarray:
    """The RISE authors' ``gkern(size, sigma)``: ``scipy.ndimage.gaussian_filter`` (reflected borders, truncated at
    4 sigma) of a unit delta at the centre of a ``size`` x ``size`` array."""
    from scipy.ndimage import gaussian_filter

    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1.0
    return gaussian_filter(delta, sigma).astype(np.float32)


def substrate_blur(image, protocol: Protocol, zero_pixel):
    """The insertion start: ``image`` ``[H, W, C]`` blurred by the protocol's kernel, borders padded with the colour
    the model normalises to zero (the reference convolves normalised tensors with zero padding)."""
    if protocol.substrate == "normalised":
        return gaussian_blur(image, protocol.blur_size, protocol.blur_sigma, fill=zero_pixel)
    kernel = jnp.asarray(gaussian_filtered_delta(protocol.blur_size, protocol.blur_sigma))
    channels = image.shape[-1]
    fill = jnp.asarray(zero_pixel, image.dtype)
    pad = protocol.blur_size // 2
    weights = jnp.tile(kernel[:, :, None, None], (1, 1, 1, channels)).astype(image.dtype)
    out = jax.lax.conv_general_dilated((image - fill)[None], weights, (1, 1), ((pad, pad), (pad, pad)),
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels)
    return out[0] + fill


def pixel_ranks(saliency: jax.Array, ties: str = "first") -> jax.Array:
    """Rank of every pixel of ``[H, W]`` saliency, 0 for the most salient; ties go to the earlier pixel
    (``ties="first"``) or, as ``np.flip(np.argsort(saliency))`` orders them, to the later one (``"last"``)."""
    flat = saliency.reshape(-1)
    order = jnp.argsort(-flat, stable=True) if ties == "first" else jnp.argsort(flat, stable=True)[::-1]
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
    ranks = pixel_ranks(saliency, protocol.ties)
    blurred = substrate_blur(image, protocol, zero_pixel)
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
