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


def check_address(address: str) -> None:
    """``HOST:PORT`` with a port in 1..65535, or a :class:`UsageError` naming the fix (before anything starts)."""
    from jaxplain.errors import UsageError

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--coordinator {address!r}: give HOST:PORT of process 0, e.g. host0:12345")


def initialise_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, *, timeout: float = 300.0,
                           report=print) -> tuple[int, int]:
    """Starts JAX's multi-controller runtime; returns ``(process index, process count)``.

    With ``coordinator``, ``num_processes`` and ``process_id`` given, they are used as they are. Without
    them, JAX detects the cluster itself (TPU pods, SLURM, Open MPI, ``JAX_COORDINATOR_ADDRESS``) when
    its environment is present, and a plain machine runs as one process. Every process waits at most
    ``timeout`` seconds for the others to join; a cluster that is present but misconfigured or does not
    form in time raises a :class:`UsageError`: it never falls back to one process silently.
    """
    from jaxplain.errors import UsageError

    explicit = (coordinator, num_processes, process_id)
    if any(v is not None for v in explicit) and any(v is None for v in explicit):
        raise UsageError("give all of --coordinator, --num-processes and --process-id, or none (automatic)")
    if not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
        raise UsageError(f"--coordinator-timeout must be a positive number of seconds; got {timeout!r}")
    if coordinator is None and not _detected_cluster():
        return 0, 1
    if coordinator is not None:
        check_address(coordinator)
        if num_processes < 1:
            raise UsageError(f"--num-processes must be at least 1; got {num_processes}")
        if not 0 <= process_id < num_processes:
            raise UsageError(f"--process-id must be in [0, {num_processes}); got {process_id}")
    if coordinator is not None and num_processes > 1:
        rendezvous(coordinator, num_processes, process_id, timeout, report)
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=max(1, int(timeout)))
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UsageError(f"could not join the multi-process job within {timeout:g} s ({first}); check the "
                         "coordinator address, that every process was started, and the process count and id") from e
    return jax.process_index(), jax.process_count()


def rendezvous(coordinator: str, count: int, index: int, timeout: float, report=print) -> None:
    """Waits until all ``count`` processes are up, over a plain TCP socket on the coordinator's port, before JAX's
    runtime starts (which ends the whole process, without a word that says why, when a process never joins).
    Process 0 listens and answers once everyone has called; the others call until answered. A process that is
    missing after ``timeout`` seconds is one :class:`UsageError` line on every process that is up."""
    import socket
    import time

    from jaxplain.errors import UsageError

    host, _, port = coordinator.rpartition(":")
    deadline = time.monotonic() + timeout
    if index == 0:
        report(f"waiting up to {timeout:g} s for {count - 1} more process(es) to call {coordinator}")
        try:
            server = socket.create_server(("", int(port)))
        except OSError as e:
            raise UsageError(f"--coordinator {coordinator}: process 0 cannot listen on port {port} ({e.strerror}); "
                             "choose a free port") from e
        joined = {}
        with server:
            while len(joined) < count - 1:
                server.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    connection, _ = server.accept()
                    connection.settimeout(5)
                    caller = int(connection.recv(32).decode().strip() or -1)
                except (socket.timeout, TimeoutError):
                    missing = sorted(set(range(1, count)) - set(joined))
                    raise UsageError(f"process(es) {', '.join(map(str, missing))} of {count} did not call {coordinator} "
                                     f"within {timeout:g} s; start them with the same --coordinator and "
                                     "--num-processes") from None
                except (OSError, ValueError):
                    continue
                joined[caller] = connection
            for connection in joined.values():
                connection.sendall(b"go\n")
                connection.close()
        return
    report(f"waiting up to {timeout:g} s for process 0 at {coordinator}")
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=max(0.01, min(5, deadline - time.monotonic()))) as c:
                c.sendall(f"{index}\n".encode())
                c.settimeout(max(0.01, deadline - time.monotonic()))
                if c.recv(8).startswith(b"go"):
                    return
        except (OSError, socket.timeout):
            pass
        if time.monotonic() >= deadline:
            raise UsageError(f"process 0 did not answer at {coordinator} within {timeout:g} s; check the address and "
                             "that process 0 runs with the same --num-processes")
        time.sleep(0.5)


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
def compiled_program(fn: Callable, mesh: Mesh, num_replicated: int, num_batched: int, per_device: bool):
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
    out = compiled_program(fn, mesh, len(replicated), len(batched), per_device)(*replicated, *padded)
    return jax.tree_util.tree_map(lambda a: a[:n], out)
