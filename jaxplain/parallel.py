"""Data parallelism over a 1-D ``("data",)`` device mesh: batches sharded, params replicated.

A batch is padded to a multiple of the device count (by repeating its last example, so padded rows
hold valid inputs), placed with ``NamedSharding(mesh, P("data"))`` and processed by one ``jax.jit``
program that XLA partitions across devices; padded rows are dropped from the result. Multi-host jobs
call :func:`initialise_distributed` first and give each process its own shard of the data.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def initialise_distributed() -> None:
    """Starts multi-host JAX when a cluster environment is detected; a no-op for one process."""
    try:
        jax.distributed.initialize()
    except (ValueError, RuntimeError):
        pass


def pad_rows(tree, multiple: int):
    """Pads every leaf's leading axis to a multiple of ``multiple`` by repeating its last row."""

    def pad(leaf):
        extra = -leaf.shape[0] % multiple
        if not extra:
            return leaf
        return jnp.concatenate([leaf, jnp.repeat(leaf[-1:], extra, axis=0)])

    return jax.tree_util.tree_map(pad, tree)


def valid_mask(n: int, multiple: int) -> np.ndarray:
    """``True`` for the ``n`` real rows of a batch padded to a multiple of ``multiple``."""
    return np.arange(n + (-n % multiple)) < n


@functools.lru_cache(maxsize=64)
def _compiled(fn: Callable, mesh: Mesh, num_replicated: int, num_batched: int):
    replicated = NamedSharding(mesh, P())
    batched = NamedSharding(mesh, P(DATA_AXIS))
    return jax.jit(
        fn,
        in_shardings=(replicated,) * num_replicated + (batched,) * num_batched,
        out_shardings=batched,
    )


def run_sharded(fn: Callable, replicated: tuple, batched: tuple, mesh: Mesh | None = None):
    """``fn(*replicated, *batched)`` with batch arguments sharded along the data axis of ``mesh``.

    ``fn`` must return arrays (or a pytree of arrays) with the batch as leading axis. The batch may
    have any size: it is padded to the device count and the padding is removed from the outputs.
    """
    mesh = mesh if mesh is not None else data_mesh()
    n = jax.tree_util.tree_leaves(batched)[0].shape[0]
    padded = pad_rows(batched, mesh.size)
    out = _compiled(fn, mesh, len(replicated), len(batched))(*replicated, *padded)
    return jax.tree_util.tree_map(lambda a: a[:n], out)
