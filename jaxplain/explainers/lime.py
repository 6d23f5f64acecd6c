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
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain.explainers.base import Explainer, each_image, stateless
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting
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


@dataclasses.dataclass(frozen=True)
class LimeSettings(Settings):
    method = "lime"
    num_samples: int = setting(1000, "perturbations (teacher queries per map)", count=True)
    segmentation: str = setting("slic", "superpixels: slic, or lime_image's quickshift (15x slower on a CPU core)",
                                choices=("slic", "quickshift"))
    max_segments: int = setting(256, "superpixels kept (surplus ones are pooled into the last)", at_least=2)
    n_segments: int = setting(50, "SLIC's target number of superpixels", count=True)
    hide: str = setting("mean", "what a switched-off superpixel shows: its mean colour, or the model's zero colour",
                        choices=("mean", "zero"))
    chunk: int = setting(50, "perturbations per teacher call (sets peak memory)", count=True)

    def check(self):
        if self.num_samples % self.chunk:
            raise ValueError(f"num_samples ({self.num_samples}) must be a multiple of chunk ({self.chunk})")


def build(settings: LimeSettings) -> Explainer:
    """LIME with ``num_samples`` perturbations over ``segmentation`` superpixels."""
    num_samples, segmentation, max_segments = settings.num_samples, settings.segmentation, settings.max_segments
    n_segments, hide, chunk = settings.n_segments, settings.hide, settings.chunk

    def explain_one(state, params, image, label, key, segments):
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
        if segments is None:
            segments = superpixels(images, segmentation, max_segments, n_segments)
        return each_image(lambda *example: explain_one(state, params, *example), images, labels, key, segments)

    return stateless(settings, explain, prepare=prepare)


METHOD = Method("lime", build, {
    "default": Preset(LimeSettings(), "lime_image (Ribeiro et al. 2016) with SLIC superpixels"),
    "reference": Preset(LimeSettings(segmentation="quickshift"),
                        "lime_image.LimeImageExplainer defaults: quickshift(kernel 4, max_dist 200, ratio 0.2), "
                        "1000 samples, each superpixel's mean colour, kernel width 0.25, Ridge(alpha=1)"),
}, "LIME: a weighted ridge model over superpixels switched on and off (black-box)")
