"""Dataset jobs: explain every image of a data set, streamed batch by batch, resumable after any interruption.

``jaxplain explain --data D --out OUT --method M[,M2]`` writes into ``OUT``:

* ``job.json``: the job's identity (model, data, limit, methods and settings, seed, target, process
  count). A re-run with the same command resumes; one with other values is refused.
* ``maps-<method>-p<process>.npy``: the maps of this process's share of the images, float16
  ``[rows, H, W]``, each map divided by its largest absolute value (the scale is in the record). A
  ``.npy`` written in place through a memory map, so memory stays one batch whatever the data set's
  size, and a reader maps it without loading it: ``np.load(path, mmap_mode="r")[row]``.
* ``records-p<process>.jsonl``: one line per (method, image): dataset index, id, dataset label, the
  class explained, predicted class and probability, ``row`` in the maps file, ``scale``, and the
  method's diagnostics. A batch's maps are flushed to disk before its records are appended (and
  fsynced), so a record always has its map; a killed job loses at most the batch in flight, and the
  re-run recomputes exactly the images without a record (maps depend only on the image, its index
  and the seed, so the result equals an uninterrupted run).
* ``overlays/``: pictures of the first ``--examples`` images.

:func:`read_maps` reads a method's maps back, every process's part together, in dataset order.
Each process explains a contiguous share of the images (``process_index`` of ``process_count``) on its
own devices: explanations need no communication between images, so processes never wait for each other.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from jaxplain import runner
from jaxplain.data import open_source
from jaxplain.data.loader import iterate_batches, process_shard
from jaxplain.errors import UsageError
from jaxplain.evaluation.harness import append_records, read_records
from jaxplain.explainers import EARLIER_DEFAULTS, EARLIER_RESOLVED, defaults_of, resolved_settings
from jaxplain.files import check_output_folder, claim_output_folder
from jaxplain.model import Model
from jaxplain.parallel import data_mesh

JOB = "job.json"
TARGETS = ("predicted", "label")


@dataclasses.dataclass(frozen=True)
class JobConfig:
    methods: dict[str, dict]  # method -> settings
    data: str
    limit: int | None = None
    seed: int = 0
    batch_size: int = 16
    examples: int = 4
    target: str = "predicted"  # the class explained: the teacher's top-1 or the dataset's label
    process_index: int = 0
    process_count: int = 1

    def identity(self, model_name: str, resolved: dict) -> dict:
        """What a resumed job must share with the job that wrote ``OUT`` (the batch size may change);
        ``resolved`` as :func:`jaxplain.explainers.resolved_settings`."""
        return {"model": model_name, "data": self.data, "limit": self.limit, "methods": self.methods,
                "seed": self.seed, "target": self.target, "process_count": self.process_count,
                "defaults": defaults_of(self.methods), "resolved": resolved}


def maps_path(out: Path, method: str, process: int) -> Path:
    return Path(out) / f"maps-{method}-p{process}.npy"


def records_path(out: Path, process: int) -> Path:
    return Path(out) / f"records-p{process}.jsonl"


def _open_maps(path: Path, rows: int, shape: tuple[int, int]) -> np.memmap:
    if path.exists():
        maps = np.load(path, mmap_mode="r+")
        if maps.shape != (rows, *shape):
            raise UsageError(f"{path} has shape {maps.shape}, not {(rows, *shape)}; use a new --out folder")
        return maps
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(rows, *shape))


def run_job(model: Model, config: JobConfig, out: str | Path, *, data_dir=None, raw_data=None) -> dict:
    """Runs (or resumes) the job's share for this process; returns counts of images done and skipped."""
    from jaxplain.viz import save_overlay

    out = check_output_folder(out)
    if config.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1; got {config.batch_size}")
    if config.limit is not None and config.limit < 1:
        raise UsageError(f"--limit must be at least 1; got {config.limit}")
    if config.target not in TARGETS:
        raise UsageError(f"unknown target {config.target!r}; choose one of: {', '.join(TARGETS)}")
    explainers = {m: runner.make_explainer(m, model, **s) for m, s in config.methods.items()}
    source, _ = open_source(config.data, num_classes=model.num_classes, data_dir=data_dir, raw_data=raw_data)
    total = len(source) if config.limit is None else min(config.limit, len(source))
    if total == 0:
        raise UsageError(f"{config.data} has no images")
    key = jax.random.key(config.seed)
    states = runner.initial_states(explainers, model, config.seed)
    identity = config.identity(model.name, resolved_settings(explainers, states, model.input_shape))
    claim_output_folder(out, identity, "a job", name=JOB,
                        defaults={"defaults": identity["defaults"], "resolved": identity["resolved"]},
                        earlier_resolved=EARLIER_RESOLVED, earlier_defaults=EARLIER_DEFAULTS)
    mine = process_shard(np.arange(total), config.process_index, config.process_count)
    row_of = {int(index): row for row, index in enumerate(mine)}
    records_file = records_path(out, config.process_index)
    done = {(r["method"], r["index"]) for r in read_records(records_file)}
    maps_files = {m: _open_maps(maps_path(out, m, config.process_index), len(mine), model.input_shape[:2])
                  for m in explainers}
    todo = np.asarray([i for i in mine if any((m, int(i)) not in done for m in explainers)], np.int64)
    mesh = data_mesh(jax.local_devices())  # this process's devices: its share never leaves them
    (out / "overlays").mkdir(exist_ok=True)
    progress = tqdm(total=len(todo), desc="explain", unit="img", initial=0)
    started, explained = time.perf_counter(), 0
    for batch in iterate_batches(source, config.batch_size, model.preprocessing, indices=todo):
        probabilities = runner.predict(model, batch.images, mesh=mesh)
        predicted = probabilities.argmax(-1)
        targets = predicted if config.target == "predicted" else batch.labels
        for method, explainer in explainers.items():
            rows = np.flatnonzero([(method, int(i)) not in done for i in batch.indices])
            if not len(rows):  # this method finished these images before an interruption
                continue
            maps, details = runner.explain(model, explainer, batch.images[rows], targets[rows], key=key,
                                           indices=batch.indices[rows], state=states[method],
                                           batch_size=config.batch_size, fixed_shape=True, mesh=mesh,
                                           with_details=True)
            scales = np.abs(np.nan_to_num(maps)).reshape(len(maps), -1).max(axis=1)
            safe = np.where(scales > 0, scales, 1.0)
            records = []
            for j, r in enumerate(rows):
                index = int(batch.indices[r])
                maps_files[method][row_of[index]] = (maps[j] / safe[j]).astype(np.float16)
                records.append({"method": method, "index": index, "id": batch.ids[r], "label": int(batch.labels[r]),
                                "explained": int(targets[r]), "predicted": int(predicted[r]),
                                "probability": float(probabilities[r, targets[r]]), "row": row_of[index],
                                "scale": float(scales[j]), "details": {k: float(v[j]) for k, v in details.items()}})
                if index < config.examples:
                    save_overlay(out / "overlays" / f"{index:06d}_{method}.png", batch.images[r], maps[j],
                                 f"{method}: {model.class_names[int(targets[r])]}")
            maps_files[method].flush()  # the maps reach the disk before the records that vouch for them
            append_records(records_file, records)
            done.update((method, rec["index"]) for rec in records)
        explained += len(batch.indices)
        progress.update(len(batch.indices))
        progress.set_postfix(maps_per_s=f"{explained * len(explainers) / (time.perf_counter() - started):.2f}")
    progress.close()
    return {"images": int(len(mine)), "explained": int(len(todo)), "skipped": int(len(mine) - len(todo))}


def read_maps(out: str | Path, method: str) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """``(indices [N], maps [N, H, W] float32, records)`` of ``method``, every process's part, in dataset
    order; maps at their original scale. Only images with a record (finished work) are returned."""
    out = Path(out)
    job = json.loads((out / JOB).read_text())
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
    job = json.loads((out / JOB).read_text())
    counts = collections.Counter(r["method"] for p in range(job["process_count"])
                                 for r in read_records(records_path(out, p)))
    return "; ".join(f"{method}: {counts[method]} maps" for method in job["methods"])


__all__ = ["JobConfig", "read_maps", "run_job", "summary"]
