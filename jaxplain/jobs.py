"""Dataset jobs: explain every item of a data set, streamed batch by batch, resumable after any interruption.

``jaxplain explain --data D --out OUT --method M[,M2]`` writes into ``OUT``:

* ``run.json``: the job's identity (:mod:`jaxplain.runs.identity`): the teacher and its weights, the data, the
  dtype, seed and target, the process count, and every resolved setting of each method. The same command resumes;
  one that would change a map is refused, naming what changed.
* ``maps-<method>-p<process>.npy``: the maps of this process's share, float16 ``[rows, H, W]``, each divided by its
  largest absolute value (the scale is in the record), appended row by row (:mod:`jaxplain.runs.store`); any NumPy
  reads it, row by row: ``np.load(path, mmap_mode="r")[row]``.
* ``records-p<process>.jsonl``: one line per (method, item): dataset index, id, dataset label, the class explained,
  predicted class and probability, ``row`` in the maps file, ``scale``, and the method's diagnostics. A batch's maps
  reach the disk before the records that vouch for them, so a killed job loses at most the batch in flight and the
  rerun recomputes exactly the items without a record (maps depend only on the item, its index and the seed, so
  the result equals an uninterrupted run).
* ``overlays/``: pictures of the first ``--examples`` items.

:func:`read_maps` reads a method's maps back, every process's part together, in dataset order. Each process
explains a contiguous share of the items (``process_index`` of ``process_count``) on its own devices and holds
its own lock, so processes never wait for each other.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from jaxplain.data.loader import process_shard
from jaxplain.errors import UsageError
from jaxplain.model import Model, computing_in
from jaxplain.parallel import data_mesh
from jaxplain.runs.folder import RunFolder
from jaxplain.runs.identity import RUN, Request
from jaxplain.runs.journal import append_records, read_records
from jaxplain.runs.loop import check_positive, file_label, prepare_run, run_batches, todo_items
from jaxplain.runs.store import MapStore, append_scaled, valid_rows

TARGETS = ("predicted", "label")


@dataclasses.dataclass(frozen=True)
class JobConfig:
    methods: dict[str, dict]  # method (NAME or NAME:PRESET) -> settings given explicitly
    data: str
    limit: int | None = None
    seed: int = 0
    batch_size: int = 16
    examples: int = 4
    target: str = "predicted"  # the class explained: the teacher's top-1 or the dataset's label
    process_index: int = 0
    process_count: int = 1
    dtype: str = "float32"  # the teacher's compute dtype while explaining


def maps_path(out: Path, label: str, process: int) -> Path:
    return Path(out) / f"maps-{file_label(label)}-p{process}.npy"


def records_path(out: Path, process: int) -> Path:
    return Path(out) / f"records-p{process}.jsonl"


def run_job(model: Model, config: JobConfig, out: str | Path, *, data_dir=None, raw_data=None, report=print) -> dict:
    """Runs (or resumes) the job's share for this process; returns counts of items done and skipped."""
    from jaxplain.viz import save_overlay

    check_positive("--batch-size", config.batch_size)
    check_positive("--examples", config.examples + 1)
    if config.target not in TARGETS:
        raise UsageError(f"unknown target {config.target!r}; choose one of: {', '.join(TARGETS)}")
    explaining = computing_in(model, config.dtype)
    requests = [Request(label, label, overrides) for label, overrides in config.methods.items()]
    options = {"dtype": config.dtype, "target": config.target, "process_count": config.process_count}
    with RunFolder(out, config.process_index, kind="explain --data") as folder:
        run = prepare_run(model, explaining, folder.out, requests, options, data=config.data, limit=config.limit,
                          seed=config.seed, kind="a dataset job", data_dir=data_dir, raw_data=raw_data, report=report)
        mine = process_shard(np.arange(run.count), config.process_index, config.process_count)
        journal = records_path(folder.out, config.process_index)
        folder.own([journal.name, RUN] + [maps_path(folder.out, m, config.process_index).name for m in run.methods])
        records = read_records(journal)
        done = {(r["method"], r["index"]) for r in records}
        stores = {m: MapStore(maps_path(folder.out, m, config.process_index), model.input_shape[:2],
                              valid_rows(records, m)) for m in run.methods}
        todo = todo_items(mine, run.methods, done)
        mesh = data_mesh(jax.local_devices())  # this process's devices: its share never leaves them

        def consume(batch, label, rows, maps, details, probabilities, targets, seconds):
            written, scales = append_scaled(stores[label], maps)
            new = []
            for j, r in enumerate(rows):
                index = int(batch.indices[r])
                new.append({"method": label, "index": index, "id": batch.ids[r], "label": int(batch.labels[r]),
                            "explained": int(targets[r]), "predicted": int(probabilities[r].argmax()),
                            "probability": float(probabilities[r, targets[r]]), "row": written[j],
                            "scale": float(scales[j]), "details": {k: float(v[j]) for k, v in details.items()}})
                if index < config.examples:
                    name = f"overlays/{index:06d}_{file_label(label)}.png"
                    save_overlay(folder.path(name), batch.images[r], maps[j])
            append_records(journal, new)

        def saved() -> str:
            counts = collections.Counter(m for m, _ in done)
            return f"{sum(counts.values())} maps are saved in {folder.out}"

        run_batches(model, explaining, run, todo, done, batch_size=config.batch_size, target=config.target,
                    seed=config.seed, mesh=mesh, consume=consume, saved=saved, desc="explain")
    return {"images": int(len(mine)), "explained": int(len(todo)), "skipped": int(len(mine) - len(todo))}


def read_maps(out: str | Path, method: str) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """``(indices [N], maps [N, H, W] float32, records)`` of ``method`` (its label), every process's part, in
    dataset order; maps at their original scale. Only items with a record (finished work) are returned."""
    out = Path(out)
    job = json.loads((out / RUN).read_text())
    if method not in job["methods"]:
        raise UsageError(f"{out} has no maps of {method!r}; it has: {', '.join(job['methods'])}")
    indices, maps, kept = [], [], []
    for process in range(job["process_count"]):
        records = [r for r in read_records(records_path(out, process)) if r["method"] == method]
        if not records:
            continue
        stored = np.load(maps_path(out, method, process), mmap_mode="r")
        for record in records:
            indices.append(record["index"])
            maps.append(stored[record["row"]].astype(np.float32) * record["scale"])
            kept.append(record)
    order = np.argsort(indices, kind="stable")
    shape = maps[0].shape if maps else (0, 0)
    stacked = np.stack([maps[i] for i in order]) if maps else np.zeros((0, *shape), np.float32)
    return np.asarray(indices, np.int64)[order], stacked, [kept[i] for i in order]


def summary(out: str | Path) -> str:
    """The maps done per method, over every process's records (each file read once)."""
    out = Path(out)
    job = json.loads((out / RUN).read_text())
    counts = collections.Counter(r["method"] for p in range(job["process_count"])
                                 for r in read_records(records_path(out, p)))
    return "; ".join(f"{method}: {counts[method]} maps" for method in job["methods"])


__all__ = ["JobConfig", "read_maps", "run_job", "summary"]
