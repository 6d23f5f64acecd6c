"""Localisation grids: 2x2 mosaics of four images of different classes, for localisation without boxes.

Used by the grid pointing game (Böhle et al., 2021; Rao et al., 2022) and by the GFI paper's
localisation error with the cell as the ground-truth box. From any labelled ``--data``:

1. every image is classified on its own at the model's input size (streamed in batches); it is *eligible* when the
   teacher predicts its label with probability at least ``min_confidence``;
2. grids are filled from a seeded permutation of the eligible images, each grid taking the next
   images whose classes differ from those already in it (a new permutation starts when one runs
   out, so images are used evenly; with fewer than ``4 x count`` eligible images some appear in
   several grids, at independent positions);
3. each image is resized into its cell (shorter side, then a centre crop, with the model's own
   crop ratio) and the grid is saved as a lossless PNG at the model's input size.

The output is a labelled folder (``labels.tsv`` with ``file``, ``class_index``, ``cell`` and
``source`` columns, one row per cell) that every command reads with ``--data DIR``; ``grids.json``
records the settings and the images used.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from jaxplain.data.loader import iterate_batches, read_item
from jaxplain.errors import UsageError
from jaxplain.images import resize_and_crop, save_png
from jaxplain.model import Model, Preprocessing, probabilities_of

GRID = 2


@dataclasses.dataclass(frozen=True)
class GridSpec:
    count: int = 64
    seed: int = 0
    min_confidence: float = 0.5


def cell_preprocessing(model: Model, grid: int = GRID) -> Preprocessing:
    """The model's resize/crop rule scaled to one cell."""
    cell = model.preprocessing.crop // grid
    return Preprocessing(resize=round(cell * model.preprocessing.resize / model.preprocessing.crop), crop=cell)


def classify(model: Model, source, batch_size: int = 64):
    """``(labels, predicted, probability of the label, ids)`` of every image, streamed in batches."""
    import jax
    from tqdm import tqdm

    predict = jax.jit(lambda params, images: probabilities_of(model.apply_fn, params, images))
    labels, predicted, confidence, ids = [], [], [], []
    for batch in tqdm(iterate_batches(source, batch_size, model.preprocessing), desc="classifying",
                      total=-(-len(source) // batch_size), unit="batch", leave=False):
        probabilities = np.asarray(predict(model.params, batch.images))
        labels.append(batch.labels)
        predicted.append(probabilities.argmax(-1))
        confidence.append(probabilities[np.arange(len(batch.labels)), batch.labels])
        ids += batch.ids
    return np.concatenate(labels), np.concatenate(predicted), np.concatenate(confidence), ids


def assign_grids(labels: np.ndarray, eligible: np.ndarray, count: int, seed: int, grid: int = GRID) -> np.ndarray:
    """``[count, grid**2]`` source indices: each grid holds images of distinct classes (see module docstring)."""
    cells = grid * grid
    if len(np.unique(labels[eligible])) < cells:
        raise UsageError(f"only {len(np.unique(labels[eligible]))} classes have a confidently classified image; "
                         f"a grid needs {cells}: give more data or lower --min-confidence")
    rng = np.random.default_rng(seed)
    queue: list[int] = []
    grids = []
    for _ in range(count):
        chosen: list[int] = []
        while len(chosen) < cells:
            if not queue:
                queue = list(rng.permutation(eligible))
            taken = {int(labels[i]) for i in chosen}
            position = next((p for p, i in enumerate(queue) if int(labels[i]) not in taken), None)
            if position is None:  # the rest of this permutation repeats classes already in the grid
                queue += list(rng.permutation(eligible))
                continue
            chosen.append(int(queue.pop(position)))
        grids.append(chosen)
    return np.asarray(grids, np.int64)


def compose(cells: list[np.ndarray], grid: int = GRID) -> np.ndarray:
    """Tiles ``grid**2`` uint8 cell images row-major into one image."""
    rows = [np.concatenate(cells[r * grid:(r + 1) * grid], axis=1) for r in range(grid)]
    return np.concatenate(rows, axis=0)


def build_grids(model: Model, source, out: str | Path, spec: GridSpec, *, command: str = "") -> Path:
    """Writes ``out/grid_NNNNN.png``, ``out/labels.tsv`` and ``out/grids.json``; returns ``out``."""
    out = Path(out)
    if spec.count < 1:
        raise UsageError(f"--count must be at least 1; got {spec.count}")
    if len(source) == 0:
        raise UsageError("the data set is empty; give a labelled folder or dataset with images")
    labels, predicted, confidence, ids = classify(model, source)
    eligible = np.flatnonzero((predicted == labels) & (confidence >= spec.min_confidence))
    assignment = assign_grids(labels, eligible, spec.count, spec.seed)
    out.mkdir(parents=True, exist_ok=True)
    per_cell = cell_preprocessing(model)
    rows = []
    for g, members in enumerate(assignment):
        cells = [resize_and_crop(read_item(source, i, None)[0], per_cell) for i in members]
        name = f"grid_{g:05d}.png"
        save_png(out / name, compose(cells))
        rows += [(name, int(labels[i]), c, ids[i]) for c, i in enumerate(members)]
    with open(out / "labels.tsv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(("file", "class_index", "cell", "source"))
        writer.writerows(rows)
    summary = {"model": model.name, **dataclasses.asdict(spec), "grid": GRID, "images": int(len(source)),
               "eligible": int(len(eligible)), "distinct_images_used": int(len(np.unique(assignment))),
               "command": command}
    (out / "grids.json").write_text(json.dumps(summary, indent=1) + "\n")
    return out
