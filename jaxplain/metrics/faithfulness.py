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


def _batched(fn, xs, chunk: int):
    """``lax.map(fn, xs)`` with ``fn`` vectorised over batches of at most ``chunk`` (balanced, so that no teacher pass
    is spent on padding): the teacher sees a batch, and peak memory stays ``chunk`` inputs."""
    n = jax.tree.leaves(xs)[0].shape[0]
    return jax.lax.map(fn, xs, batch_size=-(-n // -(-n // chunk)))


def _curve(prob_fn, start, finish, ranks, label, num_steps: int, step: int, chunk: int) -> jax.Array:
    """Probabilities of ``label`` as pixels move from ``start`` to ``finish`` in rank order."""

    def score(count):
        return prob_fn(jnp.where((ranks < count)[..., None], finish, start)[None])[0, label]

    return _batched(score, jnp.arange(num_steps + 1) * step, chunk)


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


# ---- curves of other removal orders and substrates: pixel flipping, region perturbation, ROAD ----------------------

def region_order(saliency: jax.Array, patch: int, order: str = "morf", key=None) -> jax.Array:
    """The ``patch`` x ``patch`` regions of ``[H, W]`` saliency (the last row and column of regions may be smaller)
    ranked by their summed relevance, most first (``"morf"``), least first (``"lerf"``) or at random; returns
    ``[H, W]`` ranks of each pixel's region."""
    height, width = saliency.shape
    rows, cols = -(-height // patch), -(-width // patch)
    region = (jnp.arange(height)[:, None] // patch) * cols + jnp.arange(width)[None, :] // patch
    sums = jnp.zeros(rows * cols).at[region.reshape(-1)].add(saliency.reshape(-1))
    if order == "random":
        ranking = jax.random.permutation(key, rows * cols)
    else:
        ranking = jnp.argsort(-sums if order == "morf" else sums, stable=True)
    rank_of = jnp.zeros(rows * cols, jnp.int32).at[ranking].set(jnp.arange(rows * cols))
    return rank_of[region]


def perturbation_curve(prob_fn, image, saliency, label, fill, *, patch: int = 8, steps: int = 100,
                       per_step: int = 1, order: str = "morf", key=None, chunk: int = 32) -> jax.Array:
    """The class score after each of ``steps`` steps, each replacing ``per_step`` more regions of ``patch`` x
    ``patch`` pixels (ranked by :func:`region_order`) with ``fill`` (an image of the substrate): region
    perturbation (Samek et al., 2016; Quantus RegionPerturbation: patch 8, 100 regions, one per step) or, with
    ``patch=1``, pixel flipping (Bach et al., 2015; Quantus PixelFlipping with ``per_step`` pixels). ``[steps]``."""
    ranks = region_order(saliency, patch, order, key)

    def score(count):
        return prob_fn(jnp.where((ranks < count)[..., None], fill, image)[None])[0, label]

    return _batched(score, jnp.arange(1, steps + 1) * per_step, chunk)


ROAD_WEIGHTS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12), (0, -1, 1 / 6), (-1, -1, 1 / 12),
                (1, 0, 1 / 6), (-1, 0, 1 / 6))  # (dy, dx, weight): the 8-neighbourhood of ROAD's imputation


def _neighbour_sum(values: jax.Array) -> jax.Array:
    """``sum_j w_j values[i + offset_j]`` over the 8 neighbours inside the image (zero outside), ``[H, W, C]``."""
    height, width = values.shape[:2]
    padded = jnp.pad(values, ((1, 1), (1, 1), (0, 0)))
    return sum(w * padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width] for dy, dx, w in ROAD_WEIGHTS)


def linear_imputation(image: jax.Array, removed: jax.Array, *, iterations: int = 2000, tol: float = 1e-7) -> jax.Array:
    """``image`` ``[H, W, C]`` with the ``removed`` ``[H, W]`` pixels replaced by ROAD's linear imputation (Rong et
    al., 2022): each removed pixel is the weighted mean of its 8 neighbours (weights 1/6 beside, 1/12 diagonal),
    known or removed; the linear system is solved by conjugate gradients on the device (Quantus solves it with
    scipy's sparse solver)."""
    mask = removed[..., None].astype(image.dtype)
    known = image * (1.0 - mask)
    ones = jnp.ones_like(image[..., :1])
    degree = _neighbour_sum(ones)  # sum of the weights of the neighbours inside the image
    rhs = _neighbour_sum(known) * mask

    def operator(u):
        u = u * mask
        return (degree * u - _neighbour_sum(u) * mask) + (1.0 - mask) * u  # identity outside the removed pixels

    solution, _ = jax.scipy.sparse.linalg.cg(operator, rhs, tol=tol, maxiter=iterations)
    return known + solution * mask


def road_curve(prob_fn, image, saliency, label, key, *, percentages=tuple(range(1, 100, 2)), order: str = "morf",
               noise: float = 0.01, chunk: int = 32) -> tuple[jax.Array, jax.Array]:
    """ROAD (Rong et al., 2022): for each percentage, the ``p`` % most (``order="morf"``) or least (``"lerf"``)
    relevant pixels are imputed linearly from their neighbours plus Gaussian noise of standard deviation ``noise``
    (in [0, 1] pixel units); returns the class probability and whether the class is still the top-1, each
    ``[len(percentages)]``. Quantus ROAD scores the MoRF order by the top-1 alone."""
    height, width = saliency.shape
    ranks = pixel_ranks(saliency if order == "morf" else -saliency)

    def one(args):
        percentage, k = args
        removed = ranks < jnp.floor(height * width * percentage / 100).astype(jnp.int32)
        imputed = linear_imputation(image, removed)
        imputed = imputed + noise * jax.random.normal(k, image.shape) * removed[..., None]
        probabilities = prob_fn(imputed[None])[0]
        return probabilities[label], jnp.argmax(probabilities) == label

    percentages = jnp.asarray(percentages, jnp.float32)
    keys = jax.random.split(key, len(percentages))
    return _batched(one, (percentages, keys), chunk)


def faithfulness_correlation(score_fn, image, saliency, label, fill, key, *, runs: int = 100,
                             subset: int = 224, chunk: int = 32) -> jax.Array:
    """Faithfulness correlation (Bhatt et al., 2020; Quantus FaithfulnessCorrelation): over ``runs`` random subsets of
    ``subset`` pixels replaced by ``fill``, the Pearson correlation between the attribution summed over each subset
    and the drop of the class score it causes (``score_fn``: images -> scores ``[N, K]``; Quantus uses logits).
    Higher is better."""
    flat = saliency.reshape(-1)
    subsets = random_subsets(key, flat.size, subset, runs)
    clean = score_fn(image[None])[0, label]

    def drop(indices):
        removed = jnp.zeros(flat.size, bool).at[indices].set(True).reshape(saliency.shape)[..., None]
        return clean - score_fn(jnp.where(removed, fill, image)[None])[0, label]

    drops = _batched(drop, subsets, chunk)
    sums = flat[subsets].sum(-1)
    return pearson(sums, drops)


def random_subsets(key, size: int, subset: int, runs: int) -> jax.Array:
    """``runs`` uniform draws of ``subset`` distinct indices below ``size`` ``[runs, subset]``: the top ``subset``
    of i.i.d. uniforms (``jax.random.choice`` without replacement permutes all ``size``, about 30x slower on a
    CPU for 224 of 50,176)."""
    return jax.vmap(lambda k: jax.lax.top_k(jax.random.uniform(k, (size,)), subset)[1])(jax.random.split(key, runs))


def pearson(a: jax.Array, b: jax.Array) -> jax.Array:
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / jnp.sqrt((a ** 2).sum() * (b ** 2).sum())
