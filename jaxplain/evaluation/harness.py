"""The evaluation harness: every method, one protocol, any dataset, resumable.

For each batch of images it explains the predicted class with each method, scores the maps
(deletion and insertion AUC, mean intensity) and appends one JSON line per (method, image) to
``records.jsonl``, flushed to disk before the next batch. A rerun with the same settings skips what
is recorded, so an interrupted job loses at most the batch in flight and never duplicates a record.
At the end it writes ``summary.csv``, ``summary.md``, ``curves.png`` and ``index.html`` (overlays of
the first images, side by side per method).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import time
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from jaxplain import runner
from jaxplain.data import open_source
from jaxplain.data.loader import iterate_batches
from jaxplain.errors import UsageError
from jaxplain.explainers.base import ModelHandle
from jaxplain.metrics.faithfulness import PROTOCOLS, batch_deletion_insertion
from jaxplain.metrics.localisation import mean_intensity
from jaxplain.model import Model
from jaxplain.parallel import data_mesh, pad_rows, run_sharded
from jaxplain.viz import html_table, save_overlay, write_index

RECORDS = "records.jsonl"
CONFIG = "config.json"
SUMMARY_COLUMNS = ("method", "n", "deletion", "deletion_se", "insertion", "insertion_se", "intensity", "maps_per_s")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    methods: dict[str, dict]  # label (usually the method name) -> hyper-parameters
    data: str
    limit: int | None = None
    protocol: str = "fast"
    seed: int = 0
    batch_size: int = 16
    examples: int = 8  # images shown in index.html
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)  # label -> registered method

    def identity(self, model_name: str) -> dict:
        """The settings a resumed run must share with the run that wrote the records."""
        return {"model": model_name, "data": self.data, "protocol": self.protocol, "seed": self.seed,
                "methods": self.methods, "aliases": self.aliases}


def read_records(path: Path) -> list[dict]:
    """Complete records of a (possibly interrupted) ``records.jsonl``; a torn last line is cut off."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    if len(complete) != len(raw):
        with open(path, "r+b") as f:
            f.truncate(len(complete))
    return [json.loads(line) for line in complete.decode().splitlines() if line.strip()]


def append_records(path: Path, records: list[dict]) -> None:
    with open(path, "a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _check_resume(out: Path, identity: dict) -> None:
    path = out / CONFIG
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != identity:
            changed = sorted(k for k in identity if previous.get(k) != identity[k])
            raise UsageError(
                f"{out} holds an evaluation with other settings ({', '.join(changed)} differ); "
                "use a new --out folder or the original settings to resume"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(identity, indent=1))


@functools.lru_cache(maxsize=8)
def _scores_fn(handle: ModelHandle, protocol: str):
    def scores(params, images, maps, labels):
        result = batch_deletion_insertion(handle.apply_fn, params, images, maps, labels,
                                          jax.numpy.asarray(handle.zero_pixel), PROTOCOLS[protocol])
        result["intensity"] = mean_intensity(maps)
        return result

    return scores


def evaluate(model: Model, config: EvaluationConfig, out: str | Path, *, data_dir=None, raw_data=None, mesh=None) -> list[dict]:
    """Runs (or resumes) the evaluation and returns the summary rows."""
    out = Path(out)
    if config.protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {config.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    explainers = {label: runner.make_explainer(config.aliases.get(label, label), model, **hp)
                  for label, hp in config.methods.items()}
    source, _ = open_source(config.data, num_classes=model.num_classes, data_dir=data_dir, raw_data=raw_data)
    n = len(source) if config.limit is None else min(config.limit, len(source))
    _check_resume(out, config.identity(model.name))
    (out / "examples").mkdir(exist_ok=True)
    records_path = out / RECORDS
    done = {(r["method"], r["index"]) for r in read_records(records_path)}
    mesh = mesh or data_mesh()
    key = jax.random.key(config.seed)
    states = {m: e.init(jax.random.fold_in(key, -1 % 2**31), model, None) for m, e in explainers.items()}
    scores_fn = _scores_fn(ModelHandle.of(model), config.protocol)
    todo = np.asarray([i for i in range(n) if any((m, i) not in done for m in explainers)], np.int64)
    compiled: set[str] = set()
    batches = iterate_batches(source, config.batch_size, model.preprocessing, indices=todo)
    progress = tqdm(batches, total=math.ceil(len(todo) / config.batch_size), desc="evaluate", unit="batch")
    try:
        for batch in progress:
            probabilities = runner.predict(model, batch.images, mesh=mesh)
            labels = probabilities.argmax(-1).astype(np.int32)
            for method, explainer in explainers.items():
                rows = np.asarray([(method, int(i)) not in done for i in batch.indices])
                if not rows.any():
                    continue
                images, targets, indices = batch.images[rows], labels[rows], batch.indices[rows]
                start = time.perf_counter()
                maps = runner.explain(model, explainer, images, targets, key=key, indices=indices,
                                      state=states[method], batch_size=config.batch_size, fixed_shape=True, mesh=mesh)
                seconds = time.perf_counter() - start
                scored = pad_rows((images, maps, targets), config.batch_size)
                scores = jax.tree_util.tree_map(lambda a: np.asarray(a[: len(indices)]),
                                                run_sharded(scores_fn, (model.params,), scored, mesh, per_device=True))
                records = []
                for j, index in enumerate(indices):
                    if index < config.examples:
                        np.save(out / "examples" / f"{method}_{index}.npy", maps[j].astype(np.float16))
                    records.append({
                        "method": method, "index": int(index), "id": batch.ids[int(np.flatnonzero(rows)[j])],
                        "label": int(targets[j]), "probability": float(probabilities[rows][j, targets[j]]),
                        "deletion": float(scores["deletion"][j]), "insertion": float(scores["insertion"][j]),
                        "intensity": float(scores["intensity"][j]),
                        "deletion_curve": np.round(scores["deletion_curve"][j], 5).tolist(),
                        "insertion_curve": np.round(scores["insertion_curve"][j], 5).tolist(),
                        "seconds": seconds / len(indices), "includes_compile": method not in compiled,
                    })
                compiled.add(method)
                append_records(records_path, records)
                done.update((method, int(i)) for i in indices)
    except KeyboardInterrupt:
        progress.close()
        raise UsageError(f"interrupted; {len(done)} results are saved in {records_path}; rerun the same command to resume")
    return write_reports(model, config, out, source)


def summarise(records: list[dict], methods) -> list[dict]:
    """One row per method: means, standard errors, mean intensity and maps/s (compilation excluded)."""
    rows = []
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        if not mine:
            continue
        deletion = np.asarray([r["deletion"] for r in mine])
        insertion = np.asarray([r["insertion"] for r in mine])
        timed = [r for r in mine if not r["includes_compile"]] or mine
        se = lambda x: float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
        rows.append({
            "method": method, "n": len(mine),
            "deletion": float(deletion.mean()), "deletion_se": se(deletion),
            "insertion": float(insertion.mean()), "insertion_se": se(insertion),
            "intensity": float(np.mean([r["intensity"] for r in mine])),
            "maps_per_s": len(timed) / sum(r["seconds"] for r in timed),
        })
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = ["| method | n | deletion (lower is better) | insertion (higher is better) | intensity | maps/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['n']} | {r['deletion']:.4f} ± {r['deletion_se']:.4f} | "
                     f"{r['insertion']:.4f} ± {r['insertion_se']:.4f} | {r['intensity']:.3f} | {r['maps_per_s']:.2f} |")
    return "\n".join(lines) + "\n"


def plot_curves(records: list[dict], rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    from jaxplain.viz import atomic_savefig

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for row in rows:
        mine = [r for r in records if r["method"] == row["method"]]
        for ax, kind in zip(axes, ("deletion", "insertion")):
            curve = np.mean([r[f"{kind}_curve"] for r in mine], axis=0)
            ax.plot(np.linspace(0, 1, len(curve)), curve, label=f"{row['method']} ({row[kind]:.3f})")
    for ax, kind in zip(axes, ("deletion", "insertion")):
        ax.set(title=f"{kind} (AUC in legend)", xlabel="fraction of pixels moved", ylabel="class probability")
        ax.legend(fontsize=7)
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def write_reports(model: Model, config: EvaluationConfig, out: Path, source) -> list[dict]:
    from jaxplain.data.loader import load_items

    records = read_records(out / RECORDS)
    rows = summarise(records, config.methods)
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    header = f"{model.name} on {config.data} ({config.protocol} protocol, seed {config.seed})\n\n"
    (out / "summary.md").write_text(header + markdown_table(rows))
    plot_curves(records, rows, out / "curves.png")
    shown = sorted({r["index"] for r in records if r["index"] < config.examples})
    (out / "overlays").mkdir(exist_ok=True)
    page_rows = []
    if shown:
        batch = load_items(source, shown, model.preprocessing)
        for image, index, image_id in zip(batch.images, shown, batch.ids):
            cells = {}
            for method in config.methods:
                path = out / "examples" / f"{method}_{index}.npy"
                if path.exists():
                    record = next(r for r in records if r["method"] == method and r["index"] == index)
                    rel = f"overlays/{index:05d}_{method}.png"
                    save_overlay(out / rel, image, np.load(path).astype(np.float32),
                                 f"{method}: {model.class_names[record['label']]}\n"
                                 f"del {record['deletion']:.3f} ins {record['insertion']:.3f}")
                    cells[method] = rel
            page_rows.append({"caption": str(image_id), "cells": cells})
    formats = {c: ".4f" for c in ("deletion", "deletion_se", "insertion", "insertion_se")} | {"intensity": ".3f", "maps_per_s": ".2f"}
    summary = html_table(rows, SUMMARY_COLUMNS, formats) + '<p><img src="curves.png" width="900"></p>'
    write_index(out / "index.html", f"jaxplain evaluation: {model.name} on {config.data}", page_rows,
                list(config.methods), notes=header.strip(), extra_html=summary)
    return rows
