"""Model-randomisation sanity check (Adebayo et al., 2018): maps must change when the weights do."""

from __future__ import annotations

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


def randomise_params(params, key: jax.Array, collection: str = "params"):
    """Re-initialises learned weights by shuffling each array's entries with its own permutation.

    Every weight keeps its distribution (so activations keep their scale and the network stays
    numerically sane) while all learned structure is destroyed. Only ``params[collection]`` changes;
    statistics such as batch-norm moments stay as they were.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params[collection])
    keys = jax.random.split(key, len(leaves))
    shuffled = [jax.random.permutation(k, leaf.reshape(-1)).reshape(leaf.shape) for k, leaf in zip(keys, leaves)]
    return {**params, collection: jax.tree_util.tree_unflatten(treedef, shuffled)}
