"""The evaluation harness: every method, one protocol, any dataset, resumable.

For each batch of images it explains a class with each method (the predicted class; on localisation
grids, the class of the row's cell), scores the maps with the chosen ``metrics`` (deletion and
insertion AUC; on grids also the grid pointing game, the localisation error and, when asked, the
IoU of the thresholded map with the cell; mean intensity always) and appends one JSON line per (method, image) to ``records.jsonl``, flushed to disk before
the next batch. A rerun with the same settings skips what
is recorded, so an interrupted job loses at most the batch in flight and never duplicates a record. The run
folder, its identity and the loop are :mod:`jaxplain.runs`'s, shared with ``jaxplain explain --data``.
At the end it writes ``summary.csv``, ``summary.md``, ``curves.png`` and ``index.html`` (overlays of
the first images, side by side per method).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jaxplain.errors import UsageError
from jaxplain.evaluation.scoring import (EXPLAINING_METRICS, GRID_METRICS, METRIC_SETTINGS, METRICS, SCORE_FIELDS,
                                         map_flags, score_maps)
from jaxplain.metrics.faithfulness import PROTOCOLS
from jaxplain.metrics.localisation import IOU_THRESHOLD, LOCALISATION_ALPHA
from jaxplain.model import Model, computing_in
from jaxplain.parallel import data_mesh
from jaxplain.runs.folder import RunFolder
from jaxplain.runs.identity import RUN, Request
from jaxplain.runs.journal import append_records, read_records
from jaxplain.runs.loop import check_positive, file_label, prepare_run, run_batches, todo_items
from jaxplain.runs.store import MapStore, append_scaled, valid_rows
from jaxplain.viz import html_table, save_input, save_overlay, write_index

RECORDS = "records.jsonl"


def maps_file(label: str) -> str:
    """The store of a method's maps in an evaluation folder (float16, each divided by the record's ``scale``)."""
    return f"maps-{file_label(label)}.npy"
CONFIG = "config.json"
SUMMARY_COLUMNS = ("method", "n", "deletion", "deletion_se", "insertion", "insertion_se", "intensity", "maps_per_s")
GRID_SCORES = ("gridpg", "localisation_error", "iou")  # summary columns of the grid metrics
GRID_COLUMNS = tuple(column for score in GRID_SCORES for column in (score, f"{score}_se"))
DEFAULT_GRID_METRICS = ("gridpg", "localisation")  # iou is asked for by name
TARGETS = ("auto", "predicted", "label")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    methods: dict[str, dict]  # label (usually the method, NAME or NAME:PRESET) -> settings given explicitly
    data: str
    limit: int | None = None
    protocol: str = "rise_fast"
    seed: int = 0
    batch_size: int = 16
    examples: int = 8  # images shown in index.html
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)  # label -> method (NAME or NAME:PRESET)
    metrics: tuple[str, ...] | None = None  # None: deletion_insertion, plus the grid metrics on grids
    target: str = "auto"  # class explained: predicted, label (the dataset's), auto (label on grids)
    localisation_alpha: float = LOCALISATION_ALPHA
    dtype: str = "float32"  # the explainers' teacher computes in this dtype; the metrics' teacher in float32
    iou_threshold: float = IOU_THRESHOLD  # of the map's range, for the iou metric (DAX paper: 0.2)

    def options(self) -> dict:
        """The run's settings besides its data, seed and methods that change an answer (its identity's)."""
        return {"protocol": self.protocol, "metrics": list(self.metrics or ()), "target": self.target,
                "localisation_alpha": self.localisation_alpha, "dtype": self.dtype, "iou_threshold": self.iou_threshold,
                "metric_settings": {m: METRIC_SETTINGS[m] for m in self.metrics or () if m in METRIC_SETTINGS}}

    def resolved(self, grid: bool) -> "EvaluationConfig":
        """Concrete metrics and target for a dataset that is (or is not) made of localisation grids."""
        metrics = self.metrics or (("deletion_insertion", *DEFAULT_GRID_METRICS) if grid else ("deletion_insertion",))
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise UsageError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}")
        if not grid and any(m in GRID_METRICS for m in metrics):
            raise UsageError("the grid metrics need localisation grids; build them with `jaxplain data grids`")
        if self.target not in TARGETS:
            raise UsageError(f"unknown target {self.target!r}; choose one of: {', '.join(TARGETS)}")
        target = self.target if self.target != "auto" else ("label" if grid else "predicted")
        return dataclasses.replace(self, metrics=tuple(metrics), target=target)


def _reexplain(model: Model, explainer, state, batch_size: int, mesh, seed: int, indices, params, images, labels,
               keys=None):
    """Maps of ``images`` for ``labels`` under ``params``, with the keys the evaluation's own maps had (so only
    the input, the weights or the class changes): what the explaining metrics run."""
    from jaxplain import runner

    del keys
    return runner.explain(model, explainer, np.clip(np.asarray(images), 0, 1), np.asarray(labels), key=seed,
                          indices=indices, params=params, state=state, batch_size=batch_size, fixed_shape=True,
                          mesh=mesh)


def make_record(method: str, index: int, item_id: str, label: int, probability: float, cell: int,
                scores: dict, j: int, seconds: float, includes_compile: bool, flag: str | None = None,
                diagnostics: dict | None = None) -> dict:
    """One line of ``records.jsonl``: the image, the class explained, every score of its map and the
    method's own diagnostics (under ``"details"``; e.g. re-label distillation's student fidelity)."""
    record = {"method": method, "index": index, "id": item_id, "label": label, "probability": probability}
    if cell >= 0:
        record["cell"] = cell
    if flag:
        record["map_flag"] = flag
    for name in ("deletion", "insertion", "intensity", "gridpg", "localisation_miss", "iou", *SCORE_FIELDS):
        if name in scores:
            record[name] = float(scores[name][j])
    for name in ("deletion_curve", "insertion_curve"):
        if name in scores:
            record[name] = np.round(scores[name][j], 5).tolist()
    if diagnostics:
        record["details"] = diagnostics
    return record | {"seconds": seconds, "includes_compile": includes_compile}


def evaluate(model: Model, config: EvaluationConfig, out: str | Path, *, data_dir=None, raw_data=None, mesh=None,
             report=print) -> list[dict]:
    """Runs (or resumes) the evaluation and returns the summary rows."""
    if config.protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {config.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    check_positive("--batch-size", config.batch_size)
    check_positive("--examples", config.examples + 1)
    for name in ("localisation_alpha", "iou_threshold"):
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be a finite number of at least 0; got {value!r}")
    explaining = computing_in(model, config.dtype)  # what the explainers query; the metrics use `model`
    requests = [Request(label, config.aliases.get(label, label), overrides) for label, overrides in config.methods.items()]
    from jaxplain.data import open_source

    grid = bool(getattr(open_source(config.data, num_classes=model.num_classes, data_dir=data_dir,
                                    raw_data=raw_data)[0], "has_cells", False))
    config = config.resolved(grid=grid)
    with RunFolder(out, kind="evaluate") as folder:
        run = prepare_run(model, explaining, folder.out, requests, config.options(), data=config.data,
                          limit=config.limit, seed=config.seed, kind="an evaluation", data_dir=data_dir,
                          raw_data=raw_data, report=report, limit_fixed=False)
        folder.own([RECORDS, RUN] + [maps_file(label) for label in run.methods])
        records_path = folder.out / RECORDS
        journal = read_records(records_path)
        done = {(r["method"], r["index"]) for r in journal}
        stores = {label: MapStore(folder.out / maps_file(label), model.input_shape[:2], valid_rows(journal, label))
                  for label in run.methods}
        compiled: set[str] = set()
        mesh = mesh or data_mesh()

        def consume(batch, label, rows, maps, details, probabilities, targets, seconds):
            images, chosen = batch.images[rows], targets[rows]
            reexplain = None
            if any(m in EXPLAINING_METRICS for m in config.metrics):
                reexplain = functools.partial(_reexplain, explaining, run.explainers[label], run.states[label],
                                              config.batch_size, mesh, config.seed, batch.indices[rows])
            scores = score_maps(model, config.metrics, config.protocol, images, maps, chosen, batch.cells[rows],
                                batch.indices[rows], mesh, batch_size=config.batch_size, alpha=config.localisation_alpha,
                                iou_threshold=config.iou_threshold, seed=config.seed, reexplain=reexplain,
                                num_classes=model.num_classes)
            written, scales = append_scaled(stores[label], maps)
            flags = map_flags(maps)
            if any(flags):
                tqdm.write(f"warning: {label} gave {sum(map(bool, flags))} map(s) that rank nothing "
                           f"({', '.join(sorted(set(filter(None, flags))))}); recorded as map_flag")
            new = []
            for j, row in enumerate(rows):
                index = int(batch.indices[row])
                new.append(make_record(label, index, batch.ids[row], int(chosen[j]),
                                       float(probabilities[row, chosen[j]]), int(batch.cells[row]), scores, j, seconds,
                                       label not in compiled, flags[j],
                                       {name: float(v[j]) for name, v in details.items()})
                           | {"row": written[j], "scale": float(scales[j])})
            compiled.add(label)
            append_records(records_path, new)

        todo = todo_items(range(run.count), run.methods, done)
        saved = lambda: f"{len(done)} results are saved in {records_path}"
        run_batches(model, explaining, run, todo, done, batch_size=config.batch_size, target=config.target,
                    seed=config.seed, mesh=mesh, consume=consume, saved=saved, desc="evaluate")
        return write_reports(model, config, folder, run.source, run.count)


def _mean_se(values) -> tuple[float, float]:
    x = np.asarray(values, np.float64)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


def summarise(records: list[dict], methods) -> list[dict]:
    """One row per method: means and standard errors of each recorded metric, mean intensity and maps/s
    (compilation excluded: NaN when every batch of the method compiled, e.g. a run of one batch). Metrics a
    run did not compute are NaN; the localisation error is a fraction."""
    rows = []
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        if not mine:
            continue
        timed = [r for r in mine if not r["includes_compile"]]
        row = {"method": method, "n": len(mine)}
        for name, column in (("deletion", "deletion"), ("insertion", "insertion"), ("gridpg", "gridpg"),
                             ("localisation_miss", "localisation_error"), ("iou", "iou"),
                             *((field, field) for field in SCORE_FIELDS)):
            values = [r[name] for r in mine if name in r]
            row[column], row[f"{column}_se"] = _mean_se(values) if values else (float("nan"), float("nan"))
        row["intensity"] = float(np.mean([r["intensity"] for r in mine]))
        row["degenerate_maps"] = sum("map_flag" in r for r in mine)
        row["degenerate_neighbourhoods"] = sum(r.get("details", {}).get("degenerate", 0.0) > 0 for r in mine)
        row["maps_per_s"] = len(timed) / sum(r["seconds"] for r in timed) if timed else float("nan")
        rows.append(row)
    return rows


def _has(rows: list[dict], column: str) -> bool:
    return any(not math.isnan(r[column]) for r in rows)


def markdown_table(rows: list[dict]) -> str:
    """The summary as a markdown table, with the columns of the metrics that were computed."""
    columns = [("deletion", "deletion ↓", ".4f"), ("insertion", "insertion ↑", ".4f"), ("gridpg", "GridPG ↑", ".3f"),
               ("localisation_error", "localisation error ↓", ".3f"), ("iou", "IoU ↑", ".3f")] + [
        (field, f"{field.replace('_', ' ')} {'↑' if higher else '↓'}", ".3f") for field, higher in SCORE_FIELDS.items()]
    columns = [c for c in columns if _has(rows, c[0])]
    header = "| method | n | " + " | ".join(c[1] for c in columns) + " | intensity | maps/s |"
    lines = [header, "| --- | ---: |" + " ---: |" * (len(columns) + 2)]
    for r in rows:
        cells = " | ".join(f"{r[c]:{f}} ± {r[c + '_se']:{f}}" for c, _, f in columns)
        speed = "—" if math.isnan(r["maps_per_s"]) else f"{r['maps_per_s']:.2f}"
        lines.append(f"| {r['method']} | {r['n']} | {cells} | {r['intensity']:.3f} | {speed} |")
    lines.append("\nmaps/s: maps per second of `runner.explain` after compilation (batches that compiled are left out; "
                 "— when every batch did).")
    flagged = [f"{r['method']} {r['degenerate_maps']} of {r['n']}" for r in rows if r.get("degenerate_maps")]
    if flagged:
        lines.append(f"\nMaps that rank nothing (constant or non-finite; scored in raster order): {', '.join(flagged)}.")
    degenerate = [f"{r['method']} {r['degenerate_neighbourhoods']} of {r['n']}" for r in rows
                  if r.get("degenerate_neighbourhoods")]
    if degenerate:
        lines.append(f"\nDegenerate neighbourhoods (nearly every sample relabelled alike; see `details` in "
                     f"records.jsonl): {', '.join(degenerate)}.")
    return "\n".join(lines) + "\n"


def plot_curves(records: list[dict], rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    from jaxplain.viz import atomic_savefig

    if not any("deletion_curve" in r for r in records):
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for row in rows:
        mine = [r for r in records if r["method"] == row["method"] and "deletion_curve" in r]
        for ax, kind in zip(axes, ("deletion", "insertion")):
            curve = np.mean([r[f"{kind}_curve"] for r in mine], axis=0)
            ax.plot(np.linspace(0, 1, len(curve)), curve, label=f"{row['method']} ({row[kind]:.3f})")
    for ax, kind in zip(axes, ("deletion", "insertion")):
        ax.set(title=f"{kind} (AUC in legend)", xlabel="fraction of pixels moved", ylabel="class probability")
        ax.legend(fontsize=7)
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def _score_caption(record: dict) -> str:
    names = (("deletion", "del"), ("insertion", "ins"), ("gridpg", "GridPG"))
    return " ".join(f"{short} {record[name]:.3f}" for name, short in names if name in record)


def write_reports(model: Model, config: EvaluationConfig, folder: RunFolder, source, n: int) -> list[dict]:
    """Summary (csv, md), curves and the overlay page from the records of the first ``n`` images."""
    from jaxplain.data.loader import load_items

    out = folder.out
    records = [r for r in read_records(out / RECORDS) if r["index"] < n]
    rows = summarise(records, config.methods)
    columns = SUMMARY_COLUMNS + (GRID_COLUMNS if any(_has(rows, c) for c in GRID_SCORES) else ()) + tuple(
        column for field in SCORE_FIELDS if _has(rows, field) for column in (field, f"{field}_se"))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    folder.write_text("summary.csv", table.getvalue())
    header = (f"{model.name} on {config.data} ({config.protocol} protocol, seed {config.seed}, "
              f"explaining the {config.target} class; metrics: {', '.join(config.metrics)})\n\n")
    folder.write_text("summary.md", header + markdown_table(rows))
    plot_curves(records, rows, folder.path("curves.png"))
    shown = sorted({r["index"] for r in records if r["index"] < config.examples})
    page_rows = []
    if shown:
        batch = load_items(source, shown, model.preprocessing)
        for image, index, image_id in zip(batch.images, shown, batch.ids):
            picture = f"overlays/inputs/{index:05d}.png"
            save_input(folder.path(picture), image)
            cells, notes, caption = {}, {}, str(image_id)
            for method in config.methods:
                record = next((r for r in records if r["method"] == method and r["index"] == index), None)
                if record is not None and "row" in record:
                    saliency = np.load(out / maps_file(method), mmap_mode="r")[record["row"]].astype(np.float32)
                    rel = f"overlays/{index:05d}_{file_label(method)}.png"
                    save_overlay(folder.path(rel), image, saliency * record["scale"])
                    cells[method], notes[method] = rel, _score_caption(record)
                    caption = f"{image_id}: {model.class_names[record['label']]}"
            page_rows.append({"caption": caption, "input": picture, "cells": cells, "notes": notes})
    formats = {c: ".4f" for c in ("deletion", "deletion_se", "insertion", "insertion_se")} | {
        c: ".3f" for c in ("intensity", *GRID_COLUMNS)} | {"maps_per_s": ".2f"}
    summary = html_table(rows, columns, formats)
    if (out / "curves.png").exists():
        summary += '<p><img src="curves.png" width="900"></p>'
    write_index(folder.path("index.html"), f"jaxplain evaluation: {model.name} on {config.data}", page_rows,
                list(config.methods), notes=header.strip(), extra_html=summary)
    return rows
