"""The one run loop of every long job (``jaxplain evaluate``, ``jaxplain explain --data``).

:func:`prepare_run` opens the data, settles each method's settings against the folder (:mod:`.identity`),
builds the explainers and their states, and claims the folder with the run's full identity; :func:`run_batches`
then streams the items that have no record yet, batch by batch, explains each batch with every method that
still lacks it, and hands the maps to the job's own ``consume`` (which scores them or stores them and appends
their records). SIGINT and SIGTERM end the loop with :class:`~jaxplain.errors.Interrupted`, whose message says
what is saved and how to resume.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np
from tqdm import tqdm

from jaxplain import runner
from jaxplain.data import open_source
from jaxplain.data.loader import Batch, iterate_batches
from jaxplain.errors import Interrupted, UsageError
from jaxplain.interrupts import interruptible
from jaxplain.explainers import Context, Explainer, State
from jaxplain.model import Model
from jaxplain.runs.identity import (Request, Settled, backend, claim, read_identity, settle, source_fingerprint,
                                   tree_fingerprint)


@dataclasses.dataclass
class Run:
    """A prepared run: the data, the settled methods with their explainers and states, and the items in scope."""

    source: object
    count: int
    methods: dict[str, Settled]
    explainers: dict[str, Explainer]
    states: dict[str, State]
    identity: dict


def check_positive(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a whole number of at least 1; got {value!r}")


def prepare_run(model: Model, explaining: Model, out: Path, requests: list[Request], options: dict, *, data: str,
                limit: int | None, seed: int, kind: str, data_dir=None, raw_data=None, report=print,
                limit_fixed: bool = True) -> Run:
    """Everything a run needs before its first batch (see the module docstring). ``model`` scores and predicts,
    ``explaining`` is the teacher the explainers query (another dtype); ``options`` are the run's other settings
    that change an answer (they join its identity). With ``limit_fixed=False`` a rerun may take more or fewer
    items (an evaluation's records are per item; a dataset job's process shares depend on the limit)."""
    check_positive("--limit", limit, allow_none=True)
    source, _ = open_source(data, num_classes=model.num_classes, data_dir=data_dir, raw_data=raw_data)
    count = len(source) if limit is None else min(limit, len(source))
    if count == 0:
        raise UsageError(f"--data {data} holds no items")
    recorded = read_identity(out)
    context = Context(model.name, tuple(model.input_shape), model.num_classes)
    methods = settle(requests, recorded and recorded.get("methods"), context, report)
    explainers = {label: runner.make_explainer(s.method.build(s.settings), explaining) for label, s in methods.items()}
    states = runner.initial_states(explainers, explaining, seed)
    identity = {
        "model": {"name": model.name, "weights": tree_fingerprint(model.params)},
        "data": {"items": len(source), "fingerprint": source_fingerprint(source, len(source))},
        "seed": seed, **({"limit": limit} if limit_fixed else {}), **options, "backend": backend(),
        "methods": {label: s.identity(context, tree_fingerprint(states[label].learned)) for label, s in methods.items()},
    }
    claim(out, identity, kind)
    return Run(source, count, methods, explainers, states, identity)


def run_batches(model: Model, explaining: Model, run: Run, todo: np.ndarray, done: set, *, batch_size: int,
                target: str, seed: int, mesh, consume: Callable, saved: Callable[[], str], desc: str) -> int:
    """Explains the items ``todo`` with every method that has not done them (``done``: ``{(label, index)}``), batch
    by batch, calling ``consume(batch, label, rows, maps, details, probabilities, targets, seconds per map)`` for
    each; returns the
    number of maps made. ``target`` is ``"predicted"`` or ``"label"`` (the data's)."""
    key = jax.random.key(seed)
    batches = iterate_batches(run.source, batch_size, model.preprocessing, indices=todo)
    progress = tqdm(total=len(todo), desc=desc, unit="item")
    made, started = 0, time.perf_counter()
    resume = lambda: f"{saved()}; rerun the same command to resume"
    try:
        with interruptible(resume):
            for batch in batches:
                made += _explain_batch(model, explaining, run, batch, done, batch_size, target, key, mesh, consume)
                progress.update(len(batch.indices))
                progress.set_postfix(maps_per_s=f"{made / (time.perf_counter() - started):.2f}")
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {resume()}") from None
    finally:
        progress.close()
        batches.close()
    return made


def _explain_batch(model, explaining, run: Run, batch: Batch, done: set, batch_size: int, target: str, key, mesh,
                   consume) -> int:
    probabilities = runner.predict(model, batch.images, mesh=mesh)
    targets = batch.labels if target == "label" else probabilities.argmax(-1).astype(np.int32)
    made = 0
    for label, explainer in run.explainers.items():
        rows = np.flatnonzero([(label, int(i)) not in done for i in batch.indices])
        if not len(rows):  # this method finished these items before an interruption
            continue
        start = time.perf_counter()
        maps, details = runner.explain(explaining, explainer, batch.images[rows], targets[rows], key=key,
                                       indices=batch.indices[rows], state=run.states[label], batch_size=batch_size,
                                       fixed_shape=True, mesh=mesh, with_details=True)
        seconds = (time.perf_counter() - start) / len(rows)
        consume(batch, label, rows, maps, details, probabilities, targets, seconds)
        done.update((label, int(batch.indices[r])) for r in rows)
        made += len(rows)
    return made


def todo_items(indices, labels, done: set) -> np.ndarray:
    """The items of ``indices`` that some method of ``labels`` has not done."""
    return np.asarray([i for i in indices if any((label, int(i)) not in done for label in labels)], np.int64)


def file_label(label: str) -> str:
    """A method label as it appears in file names (``relabel:paper`` -> ``relabel@paper``)."""
    return label.replace(":", "@").replace("/", "_")


__all__ = ["Request", "Run", "check_positive", "file_label", "prepare_run", "run_batches", "todo_items"]

