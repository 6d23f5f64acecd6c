"""LIME for images (Ribeiro et al., 2016): a weighted ridge model over superpixels switched on and off.

Follows ``lime_image``: SLIC superpixels (about ``n_segments``; default) or lime_image's quickshift
(kernel 4, max distance 200, ratio 0.2; 15x slower on a CPU core per image); a
switched-off superpixel takes its own mean colour (or a fixed colour); the first sample is the intact image; samples are
weighted by ``sqrt(exp(-d^2 / 0.25^2))`` of their cosine distance to it; ridge (alpha 1, intercept)
fits the class probability. Superpixels are computed on the host by scikit-image (the explainer's
``prepare`` step, or ``jax.pure_callback`` when ``explain`` is called without them); everything else
runs on the accelerator, chunked over samples.
"""

from __future__ import annotations

import concurrent.futures
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain.explainers.base import Explainer, map_images, per_example_keys, stateless
from jaxplain.imageops import blend

KERNEL_WIDTH = 0.25


def segment(image: np.ndarray, method: str, max_segments: int, n_segments: int) -> np.ndarray:
    """Superpixel labels ``[H, W]`` (int32, < ``max_segments``) of one [0, 1] RGB image, computed on the host."""
    from skimage.segmentation import quickshift, slic

    image = np.asarray(image, np.float64)
    if method == "quickshift":
        labels = quickshift(image, kernel_size=4, max_dist=200, ratio=0.2, rng=0)
    elif method == "slic":
        labels = slic(image, n_segments=n_segments, compactness=10, start_label=0)
    else:
        raise ValueError(f"unknown segmentation {method!r}; use 'quickshift' or 'slic'")
    # Extremely busy images can exceed the budget: the surplus segments are pooled into the last one.
    return np.minimum(labels, max_segments - 1).astype(np.int32)


def host_superpixels(images: np.ndarray, method: str = "slic", max_segments: int = 256, n_segments: int = 50) -> np.ndarray:
    """Superpixels of a batch ``[B, H, W, 3]`` as ``[B, H, W]`` int32, on a host thread pool (scikit-image
    releases the GIL in its compiled loops)."""
    batch = np.asarray(images)
    with concurrent.futures.ThreadPoolExecutor(min(len(batch), os.cpu_count() or 1) or 1) as pool:
        return np.stack(list(pool.map(lambda x: segment(x, method, max_segments, n_segments), batch)))


def superpixels(images: jax.Array, method: str = "slic", max_segments: int = 256, n_segments: int = 50) -> jax.Array:
    """:func:`host_superpixels` callable under ``jit`` (a ``jax.pure_callback``)."""
    host = lambda batch: host_superpixels(batch, method, max_segments, n_segments)
    shape = jax.ShapeDtypeStruct(images.shape[:3], jnp.int32)
    return jax.pure_callback(host, shape, images, vmap_method="broadcast_all")


def weighted_ridge(features: jax.Array, targets: jax.Array, weights: jax.Array, alpha: float = 1.0) -> jax.Array:
    """Coefficients of ridge regression with intercept and sample weights (as scikit-learn's ``Ridge``)."""
    normalised = weights / weights.sum()
    xc = features - normalised @ features
    yc = targets - normalised @ targets
    gram = xc.T @ (weights[:, None] * xc)
    return jnp.linalg.solve(gram + alpha * jnp.eye(features.shape[1]), xc.T @ (weights * yc))


def lime(num_samples: int = 1000, segmentation: str = "slic", max_segments: int = 256,
         n_segments: int = 50, hide: str = "mean", chunk: int = 50) -> Explainer:
    """LIME with ``num_samples`` perturbations over ``segmentation`` superpixels (slic or quickshift).

    ``hide`` is what a switched-off superpixel shows: ``mean`` (its own mean colour, lime_image's
    default) or ``zero`` (the colour the model normalises to zero, lime_image's ``hide_color``).
    """
    if hide not in ("mean", "zero"):
        raise ValueError(f"hide must be 'mean' or 'zero', not {hide!r}")
    if num_samples % chunk:
        raise ValueError(f"num_samples ({num_samples}) must be a multiple of chunk ({chunk})")

    def explain_one(state, params, image, label, segments, key):
        one_hot = jax.nn.one_hot(segments, max_segments)  # [H, W, S]
        sizes = one_hot.sum((0, 1))
        present = sizes > 0
        means = jnp.einsum("hws,hwc->sc", one_hot, image) / jnp.maximum(sizes, 1.0)[:, None]
        mean_image = means[segments] if hide == "mean" else jnp.broadcast_to(jnp.asarray(state.model.zero_pixel), image.shape)
        switches = jax.random.bernoulli(key, 0.5, (num_samples, max_segments))
        switches = (switches | ~present).at[0].set(True).astype(jnp.float32)

        def probabilities(chunk_switches):
            masks = chunk_switches[:, segments]  # [chunk, H, W]
            return state.model.probabilities(params, blend(image[None], mean_image[None], masks))[:, label]

        probs = jax.lax.map(probabilities, switches.reshape(-1, chunk, max_segments)).reshape(-1)
        features = switches * present
        cosine = features.sum(-1) / jnp.sqrt(jnp.maximum(features.sum(-1), 1e-12) * present.sum())
        weights = jnp.sqrt(jnp.exp(-((1.0 - cosine) ** 2) / KERNEL_WIDTH ** 2))
        coef = weighted_ridge(features, probs, weights)
        return jnp.where(present, coef, 0.0)[segments]

    def prepare(images):
        return {"segments": host_superpixels(images, segmentation, max_segments, n_segments)}

    def explain(state, params, images, labels, *, key, segments=None):
        keys = per_example_keys(key, images.shape[0])
        if segments is None:
            segments = superpixels(images, segmentation, max_segments, n_segments)
        return map_images(lambda *example: explain_one(state, params, *example), images, labels, segments, keys)

    return stateless("lime", explain, prepare=prepare)
