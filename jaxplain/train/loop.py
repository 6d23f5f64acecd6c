"""The training toolkit shared by every trainable network (teachers, VAEs, students, surrogates).

* :class:`TrainState` is one pytree: step, params, mutable model state (e.g. batch statistics) and
  optimiser state.
* :func:`make_train_step` turns a loss into a jitted, data-parallel step: the batch is sharded over the
  ``("data",)`` mesh, the state replicated; XLA inserts the gradient all-reduce.
* :func:`shuffled_batches` cuts arrays into the batches of an epoch in an order that is a pure function of
  ``(seed, epoch)``, which is what lets :func:`fit` resume mid-epoch.
* :func:`fit` runs epochs with a progress bar, logs metrics to ``metrics.jsonl``, saves orbax
  checkpoints and resumes from the newest one, skipping the batches of the current epoch that were
  already done (the epoch order is a pure function of ``(seed, epoch)``), with one PRNG key per step
  (``fold_in(key, step)``), so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm import tqdm

from jaxplain.parallel import DATA_AXIS, data_mesh
from jaxplain.train.checkpoints import restore_latest, run_manager, save_state


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    model_state: Any  # non-trainable collections (batch_stats), {} if none
    opt_state: Any


def create_state(params, model_state, optimizer: optax.GradientTransformation) -> TrainState:
    return TrainState(jnp.asarray(0, jnp.int32), params, model_state, optimizer.init(params))


def make_train_step(loss_fn: Callable, optimizer: optax.GradientTransformation, mesh=None, constants=None):
    """``step(state, batch, key) -> (state, metrics)`` for ``loss_fn(params, model_state, batch, key)``.

    ``loss_fn`` returns ``(loss, (new_model_state, metrics))``; metrics are scalars averaged over the
    batch. Batch leaves are sharded along their leading axis over ``mesh``. ``constants`` (e.g. a frozen
    teacher's params) are passed to ``loss_fn`` as a fifth argument, replicated: an argument of the
    compiled step, never a constant baked into it.
    """
    mesh = mesh or data_mesh()
    replicated = NamedSharding(mesh, P())
    sharded = NamedSharding(mesh, P(DATA_AXIS))

    def step(state: TrainState, batch, key, constants):
        extra = () if constants is None else (constants,)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (model_state, metrics)), grads = grad_fn(state.params, state.model_state, batch, key, *extra)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, **metrics, "grad_norm": optax.global_norm(grads)}
        return TrainState(state.step + 1, params, model_state, opt_state), metrics

    compiled = jax.jit(step, in_shardings=(replicated, sharded, replicated, replicated),
                       out_shardings=(replicated, replicated), donate_argnums=0)
    return lambda state, batch, key: compiled(state, batch, key, constants)


class MetricsLog:
    """Appends one JSON line per logged step to ``metrics.jsonl`` (flushed immediately)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **values) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({k: float(v) if hasattr(v, "__float__") else v for k, v in values.items()}) + "\n")


def training_seconds(workdir: str | Path) -> float:
    """The training time of the run in ``workdir`` as its last finished :func:`fit` logged it (every
    process that resumed it counted)."""
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return next(json.loads(line)["seconds"] for line in reversed(lines) if '"finished"' in line)


def shuffled_batches(arrays: dict[str, np.ndarray], batch_size: int, steps_per_epoch: int, seed: int
                     ) -> Callable[[int, int], Iterator[dict[str, np.ndarray]]]:
    """``batches(epoch, skip)`` for :func:`fit`: the epoch's batches of ``arrays`` (same first dimension) after the
    first ``skip``, in an order drawn from ``(seed, epoch)``. When an epoch asks for more rows than the arrays hold
    (a data set smaller than one batch), the order repeats from its start."""
    count = len(next(iter(arrays.values())))

    def batches(epoch: int, skip: int):
        order = np.random.default_rng([seed, epoch]).permutation(count)
        order = np.resize(order, steps_per_epoch * batch_size)
        for b in range(skip, steps_per_epoch):
            rows = order[b * batch_size:(b + 1) * batch_size]
            yield {name: array[rows] for name, array in arrays.items()}

    return batches


def fit(
    state: TrainState,
    train_step,
    batches: Callable[[int, int], Iterator],
    *,
    epochs: int,
    steps_per_epoch: int,
    workdir: str | Path,
    key: jax.Array,
    evaluate: Callable[[TrainState], dict] | None = None,
    log_every: int = 50,
    checkpoint_every: int = 500,
    description: str = "train",
) -> TrainState:
    """Trains for ``epochs``; ``batches(epoch, skip)`` yields the epoch's batches after the first ``skip``.

    Resumes from the newest checkpoint in ``workdir/checkpoints`` if there is one. The ``seconds`` of the
    metrics log (and of each checkpoint) count training time over every process of the run, up to the newest
    checkpoint for the ones that were interrupted; :func:`training_seconds` reads the finished run's total.
    """
    workdir = Path(workdir)
    manager = run_manager(workdir / "checkpoints")
    log = MetricsLog(workdir / "metrics.jsonl")
    restored, meta = restore_latest(manager, state)
    if restored is not None:
        state = restored
        tqdm.write(f"resuming {description} from step {int(state.step)} ({workdir / 'checkpoints'})")
    carried = float((meta or {}).get("seconds", 0.0))  # training time of earlier processes, up to the checkpoint
    start = int(state.step)
    total = epochs * steps_per_epoch
    progress = tqdm(total=total, initial=start, desc=description, unit="step")
    started = time.perf_counter()
    seconds = lambda: carried + time.perf_counter() - started
    try:
        for epoch in range(start // steps_per_epoch, epochs):
            skip = start - epoch * steps_per_epoch if epoch == start // steps_per_epoch else 0
            for batch in batches(epoch, skip):
                step = int(state.step)
                state, metrics = train_step(state, batch, jax.random.fold_in(key, step))
                progress.update(1)
                if (step + 1) % log_every == 0:
                    values = jax.device_get(metrics)
                    progress.set_postfix(loss=f"{values['loss']:.4f}")
                    log.write(step=step + 1, epoch=epoch, seconds=seconds(), **values)
                if (step + 1) % checkpoint_every == 0:
                    save_state(manager, step + 1, state, {"epoch": epoch, "seconds": seconds()})
            if evaluate is not None:
                results = evaluate(state)
                log.write(step=int(state.step), epoch=epoch, seconds=seconds(), **results)
                tqdm.write(f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
        if manager.latest_step() != int(state.step):
            save_state(manager, int(state.step), state, {"epoch": epochs, "seconds": seconds()})
        log.write(step=int(state.step), epoch=epochs, seconds=seconds(), finished=True)
    finally:
        manager.wait_until_finished()  # an interrupted run still completes the checkpoint in flight
    progress.close()
    return state
