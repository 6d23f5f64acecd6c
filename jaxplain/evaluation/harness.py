"""The evaluation harness: every method, one protocol, any dataset, resumable.

For each batch of images it explains a class with each method (the predicted class; on localisation
grids, the class of the row's cell), scores the maps with the chosen ``metrics`` (deletion and
insertion AUC; on grids also the grid pointing game, the localisation error and, when asked, the
IoU of the thresholded map with the cell; mean intensity always) and appends one JSON line per (method, image) to ``records.jsonl``, flushed to disk before
the next batch. A rerun with the same settings skips what
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
from jaxplain.files import check_output_folder, claim_output_folder
from jaxplain.explainers import EARLIER_DEFAULTS, EARLIER_RESOLVED, defaults_of, resolved_settings
from jaxplain.explainers.base import ModelHandle
from jaxplain.metrics.faithfulness import PROTOCOLS, batch_deletion_insertion
from jaxplain.metrics.localisation import (IOU_THRESHOLD, LOCALISATION_ALPHA, grid_cell_box, grid_cell_mask,
                                           grid_pointing_score, localisation_miss, mask_iou, mean_intensity)
from jaxplain.model import Model, computing_in
from jaxplain.parallel import data_mesh, pad_rows, run_sharded
from jaxplain.viz import html_table, save_overlay, write_index

RECORDS = "records.jsonl"
CONFIG = "config.json"
SUMMARY_COLUMNS = ("method", "n", "deletion", "deletion_se", "insertion", "insertion_se", "intensity", "maps_per_s")
GRID_SCORES = ("gridpg", "localisation_error", "iou")  # summary columns of the grid metrics
GRID_COLUMNS = tuple(column for score in GRID_SCORES for column in (score, f"{score}_se"))
METRICS = ("deletion_insertion", "gridpg", "localisation", "iou")
GRID_METRICS = ("gridpg", "localisation", "iou")
DEFAULT_GRID_METRICS = ("gridpg", "localisation")  # iou is asked for by name
TARGETS = ("auto", "predicted", "label")


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
    metrics: tuple[str, ...] | None = None  # None: deletion_insertion, plus the grid metrics on grids
    target: str = "auto"  # class explained: predicted, label (the dataset's), auto (label on grids)
    localisation_alpha: float = LOCALISATION_ALPHA
    dtype: str = "float32"  # the explainers' teacher computes in this dtype; the metrics' teacher in float32
    iou_threshold: float = IOU_THRESHOLD  # of the map's range, for the iou metric (DAX paper: 0.2)

    def identity(self, model_name: str, resolved: dict) -> dict:
        """The settings a resumed run must share with the run that wrote the records (``resolved``: what
        the methods' input-dependent defaults stand for, :func:`jaxplain.explainers.resolved_settings`)."""
        return {"model": model_name, "data": self.data, "protocol": self.protocol, "seed": self.seed,
                "methods": self.methods, "aliases": self.aliases, "metrics": list(self.metrics or ()),
                "target": self.target, "localisation_alpha": self.localisation_alpha, "dtype": self.dtype,
                "iou_threshold": self.iou_threshold, "defaults": defaults_of(self.methods, self.aliases),
                "resolved": resolved}

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


# settings added after the first tables were written, with the values those runs used
_IDENTITY_DEFAULTS = {"metrics": ["deletion_insertion"], "target": "predicted", "localisation_alpha": LOCALISATION_ALPHA,
                      "dtype": "float32", "iou_threshold": IOU_THRESHOLD}


def claim_evaluation_folder(out: Path, config: EvaluationConfig, model_name: str, resolved: dict) -> None:
    """Records a new run's identity in ``out/config.json``, or checks that a resumed one matches it (raises
    :class:`UsageError` naming what differs). ``config`` must be :meth:`EvaluationConfig.resolved`;
    ``resolved`` is :func:`jaxplain.explainers.resolved_settings` of its methods on the teacher's inputs."""
    identity = config.identity(model_name, resolved)
    # runs from before the methods' defaults (or what they resolve to) were recorded are taken at their word
    # (their configs pin the settings whose defaults changed since)
    claim_output_folder(out, identity, "an evaluation", name=CONFIG,
                        defaults=_IDENTITY_DEFAULTS | {"defaults": identity["defaults"], "resolved": resolved},
                        earlier_resolved=EARLIER_RESOLVED, earlier_defaults=EARLIER_DEFAULTS)


@functools.lru_cache(maxsize=8)
def _scores_fn(handle: ModelHandle, protocol: str):
    def scores(params, images, maps, labels):
        return batch_deletion_insertion(handle.apply_fn, params, images, maps, labels,
                                        jax.numpy.asarray(handle.zero_pixel), PROTOCOLS[protocol])

    return scores


def grid_scores(maps: np.ndarray, cells: np.ndarray, metrics=GRID_METRICS, alpha: float = LOCALISATION_ALPHA,
                iou_threshold: float = IOU_THRESHOLD) -> dict[str, np.ndarray]:
    """The grid ``metrics`` of maps ``[B, H, W]`` explaining the images in ``cells`` of 2x2 grids: GridPG,
    localisation misses (box of the largest region against the cell) and IoU of the thresholded map with the cell."""
    from jaxplain.data.grids import GRID

    height, width = maps.shape[1:]
    regions = np.stack([np.asarray(grid_cell_mask(int(c), GRID, height, width)) for c in cells])
    scores = {}
    if "gridpg" in metrics:
        scores["gridpg"] = np.asarray(jax.vmap(grid_pointing_score)(maps, regions))
    if "localisation" in metrics:
        misses = [localisation_miss(m, grid_cell_box(int(c), GRID, height, width), alpha) for m, c in zip(maps, cells)]
        scores["localisation_miss"] = np.asarray(misses, np.float32)
    if "iou" in metrics:
        scores["iou"] = np.asarray(jax.vmap(lambda m, r: mask_iou(m, r, iou_threshold))(maps, regions))
    return scores


def map_flags(maps: np.ndarray) -> list[str | None]:
    """``"non-finite"`` or ``"constant"`` for maps that rank nothing (they are scored in raster order, and
    the record and the summary say so), else None."""
    flat = maps.reshape(len(maps), -1)
    finite = np.isfinite(flat).all(axis=1)
    constant = np.where(finite, flat.max(axis=1) == flat.min(axis=1), False)
    return ["non-finite" if not f else "constant" if c else None for f, c in zip(finite, constant)]


def score_maps(model: Model, config: EvaluationConfig, images, maps, targets, cells, mesh) -> dict[str, np.ndarray]:
    """Every metric of ``config.metrics`` for a batch of maps, as ``{name: [B] or [B, steps]}``; non-finite
    values of a map count as zero."""
    maps = np.nan_to_num(np.asarray(maps, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    scores = {"intensity": np.asarray(mean_intensity(maps))}
    if "deletion_insertion" in config.metrics:
        padded = pad_rows((images, maps, targets), config.batch_size)
        fn = _scores_fn(ModelHandle.of(model), config.protocol)
        out = run_sharded(fn, (model.params,), padded, mesh, per_device=True)
        scores |= {k: np.asarray(v[: len(images)]) for k, v in out.items()}
    if any(m in GRID_METRICS for m in config.metrics):
        scores |= grid_scores(maps, cells, config.metrics, config.localisation_alpha, config.iou_threshold)
    return scores


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
    for name in ("deletion", "insertion", "intensity", "gridpg", "localisation_miss", "iou"):
        if name in scores:
            record[name] = float(scores[name][j])
    for name in ("deletion_curve", "insertion_curve"):
        if name in scores:
            record[name] = np.round(scores[name][j], 5).tolist()
    if diagnostics:
        record["details"] = diagnostics
    return record | {"seconds": seconds, "includes_compile": includes_compile}


def evaluate(model: Model, config: EvaluationConfig, out: str | Path, *, data_dir=None, raw_data=None, mesh=None) -> list[dict]:
    """Runs (or resumes) the evaluation and returns the summary rows."""
    out = Path(out)
    if config.protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {config.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    if config.limit is not None and config.limit < 1:
        raise UsageError(f"--limit must be at least 1; got {config.limit}")
    if config.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1; got {config.batch_size}")
    try:
        explaining = computing_in(model, config.dtype)  # what the explainers query; the metrics use `model`
    except (TypeError, ValueError) as e:
        raise UsageError(f"--dtype {config.dtype!r}: {e}") from e
    explainers = {label: runner.make_explainer(config.aliases.get(label, label), explaining, **hp)
                  for label, hp in config.methods.items()}
    source, _ = open_source(config.data, num_classes=model.num_classes, data_dir=data_dir, raw_data=raw_data)
    config = config.resolved(grid=bool(getattr(source, "has_cells", False)))
    n = len(source) if config.limit is None else min(config.limit, len(source))
    if n == 0:
        raise UsageError(f"--data {config.data} holds no images")
    states = runner.initial_states(explainers, explaining, config.seed)
    check_output_folder(out)
    claim_evaluation_folder(out, config, model.name, resolved_settings(explainers, states, model.input_shape))
    (out / "examples").mkdir(exist_ok=True)
    records_path = out / RECORDS
    done = {(r["method"], r["index"]) for r in read_records(records_path)}
    mesh = mesh or data_mesh()
    key = jax.random.key(config.seed)
    todo = np.asarray([i for i in range(n) if any((m, i) not in done for m in explainers)], np.int64)
    compiled: set[str] = set()
    batches = iterate_batches(source, config.batch_size, model.preprocessing, indices=todo)
    progress = tqdm(batches, total=math.ceil(len(todo) / config.batch_size), desc="evaluate", unit="batch")
    try:
        for batch in progress:
            probabilities = runner.predict(model, batch.images, mesh=mesh)
            labels = batch.labels if config.target == "label" else probabilities.argmax(-1).astype(np.int32)
            for method, explainer in explainers.items():
                rows = np.flatnonzero([(method, int(i)) not in done for i in batch.indices])
                if not len(rows):
                    continue
                images, targets, indices = batch.images[rows], labels[rows], batch.indices[rows]
                start = time.perf_counter()
                maps, diagnostics = runner.explain(explaining, explainer, images, targets, key=key, indices=indices,
                                                   state=states[method], batch_size=config.batch_size,
                                                   fixed_shape=True, mesh=mesh, with_details=True)
                seconds = (time.perf_counter() - start) / len(indices)
                scores = score_maps(model, config, images, maps, targets, batch.cells[rows], mesh)
                flags = map_flags(maps)
                if any(flags):
                    tqdm.write(f"warning: {method} gave {sum(map(bool, flags))} map(s) that rank nothing "
                               f"({', '.join(sorted(set(filter(None, flags))))}); recorded as map_flag")
                records = []
                for j, (row, index) in enumerate(zip(rows, indices)):
                    if index < config.examples:
                        np.save(out / "examples" / f"{method}_{index}.npy", maps[j].astype(np.float16))
                    records.append(make_record(method, int(index), batch.ids[row], int(targets[j]),
                                               float(probabilities[row, targets[j]]), int(batch.cells[row]),
                                               scores, j, seconds, method not in compiled, flags[j],
                                               {name: float(v[j]) for name, v in diagnostics.items()}))
                compiled.add(method)
                append_records(records_path, records)
                done.update((method, int(i)) for i in indices)
    except KeyboardInterrupt:
        progress.close()
        raise UsageError(f"interrupted; {len(done)} results are saved in {records_path}; rerun the same command to resume")
    return write_reports(model, config, out, source, n)


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
                             ("localisation_miss", "localisation_error"), ("iou", "iou")):
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
               ("localisation_error", "localisation error ↓", ".3f"), ("iou", "IoU ↑", ".3f")]
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


def write_reports(model: Model, config: EvaluationConfig, out: Path, source, n: int) -> list[dict]:
    """Summary (csv, md), curves and the overlay page from the records of the first ``n`` images."""
    from jaxplain.data.loader import load_items

    records = [r for r in read_records(out / RECORDS) if r["index"] < n]
    rows = summarise(records, config.methods)
    columns = SUMMARY_COLUMNS + (GRID_COLUMNS if any(_has(rows, c) for c in GRID_SCORES) else ())
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    header = (f"{model.name} on {config.data} ({config.protocol} protocol, seed {config.seed}, "
              f"explaining the {config.target} class; metrics: {', '.join(config.metrics)})\n\n")
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
                                 f"{method}: {model.class_names[record['label']]}\n{_score_caption(record)}")
                    cells[method] = rel
            page_rows.append({"caption": str(image_id), "cells": cells})
    formats = {c: ".4f" for c in ("deletion", "deletion_se", "insertion", "insertion_se")} | {
        c: ".3f" for c in ("intensity", *GRID_COLUMNS)} | {"maps_per_s": ".2f"}
    summary = html_table(rows, columns, formats)
    if (out / "curves.png").exists():
        summary += '<p><img src="curves.png" width="900"></p>'
    write_index(out / "index.html", f"jaxplain evaluation: {model.name} on {config.data}", page_rows,
                list(config.methods), notes=header.strip(), extra_html=summary)
    return rows
