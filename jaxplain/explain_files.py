"""Explain image files with one or more methods and write overlays, a results file and an index page.

Everything is read and computed before anything is written, and every file is written through a
temporary name, so a bad input or an interrupted run leaves no partial output behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from jaxplain import runner
from jaxplain.errors import UsageError
from jaxplain.images import load_for_model
from jaxplain.model import Model
from jaxplain.validation import check_labels
from jaxplain.viz import save_overlay, write_index

TOP_K = 5


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_savez(path: Path, **arrays) -> None:
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def explain_files(
    model: Model,
    methods: Sequence[str],
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    labels: Sequence[int] | None = None,
    seed: int = 0,
    hyperparameters: dict[str, dict] | None = None,
    batch_size: int = 8,
    title: str = "jaxplain explanations",
) -> list[dict]:
    """Writes ``out/overlays/*.png``, ``out/results.npz``, ``out/results.json`` and ``out/index.html``.

    ``labels`` gives the class to explain per image (one value for all, or one per image); by
    default each image's predicted class. Returns the per-image records written to ``results.json``.
    """
    if not paths:
        raise UsageError("no images given; pass one or more image files")
    hyperparameters = hyperparameters or {}
    explainers = {m: runner.make_explainer(m, model, **hyperparameters.get(m, {})) for m in methods}
    images = np.stack([load_for_model(p, model.preprocessing) for p in paths])
    probabilities = runner.predict(model, images)
    if labels is None:
        targets = probabilities.argmax(-1)
    else:
        labels = list(labels)
        if len(labels) not in (1, len(paths)):
            raise UsageError(f"give one --label for all images or one per image; got {len(labels)} for {len(paths)} images")
        targets = check_labels(np.resize(np.asarray(labels), len(paths)), model.num_classes, len(paths))
    maps = {}
    for method in tqdm(methods, desc="methods", unit="method", disable=len(methods) < 2):
        maps[method] = runner.explain(model, explainers[method], images, targets, key=seed, batch_size=batch_size)

    out = Path(out)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    records, rows = [], []
    for i, path in enumerate(paths):
        stem = f"{i:03d}_{Path(path).stem}"
        target = int(targets[i])
        top = np.argsort(-probabilities[i])[:TOP_K]
        record = {
            "file": str(path),
            "class_index": target,
            "class_name": model.class_names[target],
            "probability": float(probabilities[i, target]),
            "top5": [{"class_index": int(c), "class_name": model.class_names[c], "probability": float(probabilities[i, c])} for c in top],
            "overlays": {},
        }
        for method in methods:
            rel = f"overlays/{stem}_{method}.png"
            save_overlay(out / rel, images[i], maps[method][i],
                         f"{method}: {record['class_name']} ({record['probability']:.1%})")
            record["overlays"][method] = rel
        records.append(record)
        rows.append({"caption": f"{Path(path).name}: {record['class_name']} ({record['probability']:.1%})",
                     "cells": record["overlays"]})
    _atomic_savez(
        out / "results.npz",
        files=np.asarray([str(p) for p in paths]),
        class_index=np.asarray(targets, np.int32),
        probabilities=probabilities.astype(np.float32),
        **{f"maps_{m}": maps[m] for m in methods},
    )
    _atomic_write_text(out / "results.json", json.dumps({"model": model.name, "methods": list(methods), "images": records}, indent=1))
    write_index(out / "index.html", title, rows, list(methods), notes=f"model {model.name}; seed {seed}")
    return records
