"""How concentrated a map is, from the map alone: sparseness (Gini index; Chalasani et al., 2020) and complexity
(entropy; Bhatt et al., 2020). Both read the absolute attribution, as Quantus does by default."""

from __future__ import annotations

import jax
import jax.numpy as jnp

EPSILON = 1e-7  # added to every max-normalised attribution before the Gini index, as Quantus does


def sparseness(maps: jax.Array) -> jax.Array:
    """Gini index of ``|map|`` per map ``[B, H, W] -> [B]``: 0 for a uniform map, towards 1 when one pixel holds
    everything (higher is sparser)."""
    a = jnp.abs(maps).reshape(maps.shape[0], -1).astype(jnp.float32)
    a = a / jnp.maximum(a.max(-1, keepdims=True), 1e-30)  # Quantus normalises by the largest value first
    # non-negative floats sort as their bit patterns do; XLA's CPU sort is about 4x faster on int32 keys
    bits = jax.lax.bitcast_convert_type(a + EPSILON, jnp.int32)
    a = jax.lax.bitcast_convert_type(jnp.sort(bits, axis=-1, stable=False), a.dtype)
    n = a.shape[-1]
    rank = jnp.arange(1, n + 1, dtype=a.dtype)
    return ((2 * rank - n - 1) * a).sum(-1) / (n * a.sum(-1))


def complexity(maps: jax.Array) -> jax.Array:
    """Entropy of ``|map| / sum |map|`` per map ``[B, H, W] -> [B]`` (natural log): ``log(HW)`` for a uniform map,
    0 when one pixel holds everything (lower is simpler)."""
    a = jnp.abs(maps).reshape(maps.shape[0], -1)
    p = a / jnp.maximum(a.sum(-1, keepdims=True), 1e-30)
    return -(p * jnp.log(p + 1e-12)).sum(-1)
