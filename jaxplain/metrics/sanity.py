"""Randomisation checks: maps must change when the weights or the class do.

* **Model parameter randomisation** (Adebayo et al., 2018; Quantus MPRT): the teacher's layers are randomised one
  after another from the output down (``"cascading"``, each step keeping the earlier randomisations) or each on
  its own (``"independent"``), and each step's map is compared with the trained model's by rank correlation of
  the absolute maps. A method that passes loses the correlation as the layers go (lower is better).
* **Random logit** (Sixt et al., 2020; Quantus RandomLogit): the map of the explained class against the map of a
  randomly drawn other class, by SSIM (higher similarity = less class-sensitive; lower is better).

A layer is a top-level entry of the teacher's ``params`` collection (a Flax module's parameters), in definition
order; it is randomised by shuffling each of its arrays, which keeps their scale (:func:`randomise_params`).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def rank_correlation(a: jax.Array, b: jax.Array) -> jax.Array:
    """Spearman rank correlation between maps ``[B, H, W]`` (per image, ties by position) -> ``[B]``."""

    def ranks(x):
        flat = x.reshape(x.shape[0], -1)
        order = jnp.argsort(flat, axis=-1, stable=True)
        positions = jnp.broadcast_to(jnp.arange(flat.shape[-1], dtype=jnp.float32), flat.shape)
        return jnp.zeros_like(positions).at[jnp.arange(flat.shape[0])[:, None], order].set(positions)

    ra, rb = ranks(a), ranks(b)
    ra = ra - ra.mean(-1, keepdims=True)
    rb = rb - rb.mean(-1, keepdims=True)
    return (ra * rb).sum(-1) / jnp.sqrt((ra ** 2).sum(-1) * (rb ** 2).sum(-1))


def randomise_params(params, key: jax.Array, collection: str = "params", layers=None):
    """``params`` with the learned arrays of ``layers`` (top-level names of ``params[collection]``; all when None)
    shuffled, each array by its own permutation: every weight keeps its distribution (activations keep their
    scale) while the learned structure is gone. Other collections (batch-norm statistics) stay."""
    chosen = params[collection] if layers is None else {name: params[collection][name] for name in layers}
    leaves, treedef = jax.tree_util.tree_flatten(chosen)
    keys = jax.random.split(key, max(len(leaves), 1))
    shuffled = [jax.random.permutation(k, leaf.reshape(-1)).reshape(leaf.shape) for k, leaf in zip(keys, leaves)]
    return {**params, collection: {**params[collection], **jax.tree_util.tree_unflatten(treedef, shuffled)}}


def layer_names(params, collection: str = "params") -> list[str]:
    """The teacher's layers, from the input to the output (definition order)."""
    return list(params[collection])


def parameter_randomisation(explain: Callable, params, images, labels, key, *, mode: str = "cascading",
                            collection: str = "params", layers=None, last_only: bool = False
                            ) -> tuple[list[str], jax.Array]:
    """``(layers, correlations [steps, B])``: the rank correlation of ``|map|`` under each randomisation step with
    the trained model's; ``explain(params, images, labels, key) -> maps``. Steps go from the output layer down.
    ``last_only`` computes the last cascading step alone (every layer randomised; the same value, one explanation
    instead of one per layer) and returns ``[1, B]``."""
    names = list(reversed(layers or layer_names(params, collection)))
    explain_key, shuffle_key = jax.random.split(key)
    original = jnp.abs(explain(params, images, labels, explain_key))
    if last_only:
        if mode != "cascading":
            raise ValueError("last_only is the last step of the cascading mode")
        changed = randomise_params(params, jax.random.fold_in(shuffle_key, len(names) - 1), collection, names)
        return names[-1:], rank_correlation(original, jnp.abs(explain(changed, images, labels, explain_key)))[None]
    correlations, randomised = [], []
    for step, name in enumerate(names):
        randomised = randomised + [name] if mode == "cascading" else [name]
        changed = randomise_params(params, jax.random.fold_in(shuffle_key, step), collection, randomised)
        correlations.append(rank_correlation(original, jnp.abs(explain(changed, images, labels, explain_key))))
    return names, jnp.stack(correlations)


def ssim(a: jax.Array, b: jax.Array, window: int = 7) -> jax.Array:
    """Mean structural similarity of maps ``[B, H, W]`` as ``skimage.metrics.structural_similarity`` computes it
    (a uniform window of ``window`` px, reflected borders, sample covariances, K1 0.01 and K2 0.03, the border of
    half a window left out), with the data range of each pair (Quantus's ``ssim``)."""

    def one(x, y):
        data_range = jnp.maximum(jnp.maximum(x.max(), y.max()) - jnp.minimum(x.min(), y.min()), 1e-12)
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        pad = window // 2
        mean = lambda z: jax.lax.reduce_window(jnp.pad(z, pad, mode="symmetric"), 0.0, jax.lax.add,
                                               (window, window), (1, 1), "VALID") / window ** 2
        norm = window ** 2 / (window ** 2 - 1)
        ux, uy = mean(x), mean(y)
        vx, vy, vxy = norm * (mean(x * x) - ux * ux), norm * (mean(y * y) - uy * uy), norm * (mean(x * y) - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
        return s[pad:-pad, pad:-pad].mean()

    return jax.vmap(one)(a.astype(jnp.float32), b.astype(jnp.float32))


def random_logit(explain: Callable, images, labels, maps, num_classes: int, key) -> jax.Array:
    """SSIM ``[B]`` between each map and the map of a random other class; ``explain(images, labels, key) -> maps``."""
    class_key, explain_key = jax.random.split(key)
    offsets = jax.random.randint(class_key, labels.shape, 1, num_classes)
    others = (labels + offsets) % num_classes
    return ssim(maps, explain(images, others, explain_key))
