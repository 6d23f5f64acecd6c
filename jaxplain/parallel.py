"""Data parallelism over a 1-D ``("data",)`` device mesh: batches sharded, params replicated.

A batch is padded to a multiple of the device count (by repeating its last example, so padded rows
hold valid inputs) and split along the ``data`` axis; padded rows are dropped from the result. Two
equivalent ways of running a function over it, chosen by ``per_device``:

* ``per_device=True`` (explainers): ``jax.shard_map``. Each device runs the per-image program on its
  own shard, with no cross-device communication: what ``jax.pmap`` does (JAX now builds ``pmap`` on
  ``shard_map``), but under ``jit`` and on a named mesh. Inside, explainers walk their shard image by
  image (``lax.map``), which is what bounds their memory to one image's ``chunk`` of samples; a
  sequential loop over a *globally* sharded axis would instead make XLA gather the whole batch.
* ``per_device=False`` (predictions, metrics): ``jax.jit`` with ``NamedSharding`` in/out shardings,
  leaving the partitioning of a batched program to XLA.

Multi-host jobs call :func:`initialise_distributed` first; a dataset job (:mod:`jaxplain.jobs`) then
gives each process its own share of the data and a mesh of its local devices: explanations need no
communication between images, so no process waits for another.
"""

from __future__ import annotations

import functools
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


# Environment variables by which JAX's own cluster detection recognises a multi-process job.
CLUSTER_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS",
                     "OMPI_COMM_WORLD_SIZE")


def _detected_cluster() -> bool:
    if any(os.environ.get(v) for v in CLUSTER_VARIABLES):
        return True
    return int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ


def initialise_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> tuple[int, int]:
    """Starts JAX's multi-controller runtime; returns ``(process index, process count)``.

    With ``coordinator``, ``num_processes`` and ``process_id`` given, they are used as they are. Without
    them, JAX detects the cluster itself (TPU pods, SLURM, Open MPI, ``JAX_COORDINATOR_ADDRESS``) when
    its environment is present, and a plain machine runs as one process. A cluster that is present but
    misconfigured raises a :class:`UsageError`: it never falls back to one process silently.
    """
    from jaxplain.errors import UsageError

    explicit = (coordinator, num_processes, process_id)
    if any(v is not None for v in explicit) and any(v is None for v in explicit):
        raise UsageError("give all of --coordinator, --num-processes and --process-id, or none (automatic)")
    if coordinator is None and not _detected_cluster():
        return 0, 1
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise UsageError(f"--process-id must be in [0, {num_processes}); got {process_id}")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except (ValueError, RuntimeError) as e:
        raise UsageError(f"could not join the multi-process job ({e}); check the coordinator address and the "
                         "process count and id") from e
    return jax.process_index(), jax.process_count()


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
def _compiled(fn: Callable, mesh: Mesh, num_replicated: int, num_batched: int, per_device: bool):
    if per_device:
        specs = (P(),) * num_replicated + (P(DATA_AXIS),) * num_batched
        # check_vma=False: explainers may call host code (jax.pure_callback), which has no
        # replication rule; every output is per-device by construction (out_specs shards it).
        return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=P(DATA_AXIS), check_vma=False))
    replicated = NamedSharding(mesh, P())
    batched = NamedSharding(mesh, P(DATA_AXIS))
    return jax.jit(
        fn,
        in_shardings=(replicated,) * num_replicated + (batched,) * num_batched,
        out_shardings=batched,
    )


def run_sharded(fn: Callable, replicated: tuple, batched: tuple, mesh: Mesh | None = None, *,
                per_device: bool = False):
    """``fn(*replicated, *batched)`` with batch arguments split along the data axis of ``mesh``.

    ``fn`` must return arrays (or a pytree of arrays) with the batch as leading axis. The batch may
    have any size: it is padded to the device count and the padding is removed from the outputs.
    ``per_device`` runs ``fn`` on each device's shard with ``shard_map`` (see the module docstring).
    """
    mesh = mesh if mesh is not None else data_mesh()
    n = jax.tree_util.tree_leaves(batched)[0].shape[0]
    padded = pad_rows(batched, mesh.size)
    out = _compiled(fn, mesh, len(replicated), len(batched), per_device)(*replicated, *padded)
    return jax.tree_util.tree_map(lambda a: a[:n], out)
