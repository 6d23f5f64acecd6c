"""A labelled image folder: image files plus ``labels.tsv`` with ``file`` and ``class_index`` columns.

A ``.tsv`` file may be given instead of a folder: its ``file`` entries are then resolved relative to
the file's own folder (or used as they are when absolute), which selects a subset of a dataset
without copying it. An optional ``cell`` column marks a localisation grid (``jaxplain data grids``):
the row asks for the class of the image in that cell of a 2x2 grid, and the same file may appear on
several rows, one per cell.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from jaxplain.errors import InputFileError, UsageError
from jaxplain.images import load_image

LABELS_FILE = "labels.tsv"


def read_labels(folder: Path) -> list[tuple[str, int, int]]:
    """Rows ``(file name, class index, cell)`` of ``folder/labels.tsv`` (or of ``folder`` if it is a .tsv), in
    file order; ``cell`` is -1 when the file has no ``cell`` column."""
    path = folder if folder.suffix == ".tsv" else folder / LABELS_FILE
    if not path.is_file():
        raise InputFileError(
            f"{folder}: no {LABELS_FILE}; a labelled folder needs a tab-separated {LABELS_FILE} "
            "with columns 'file' and 'class_index'"
        )
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = {"file", "class_index"} - set(reader.fieldnames or ())
        if missing:
            raise InputFileError(f"{path}: missing column(s) {sorted(missing)}; expected 'file' and 'class_index'")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append((row["file"], int(row["class_index"]), int(row.get("cell") or -1)))
            except (TypeError, ValueError) as e:
                raise InputFileError(f"{path}:{line}: class_index {row['class_index']!r} or cell "
                                     f"{row.get('cell')!r} is not an integer") from e
    return rows


class FolderSource:
    """Random-access records ``{"image": uint8[H, W, 3], "label": int, "id": str}`` of a labelled folder."""

    def __init__(self, folder: str | Path, num_classes: int | None = None):
        path = Path(folder)
        if not path.is_dir() and not (path.suffix == ".tsv" and path.is_file()):
            raise InputFileError(f"{path}: not a folder; give a folder of images with {LABELS_FILE} (or a .tsv file)")
        self.rows = read_labels(path)
        self.folder = path.parent if path.suffix == ".tsv" else path
        if not self.rows:
            raise InputFileError(f"{path}: no images listed; add rows to {LABELS_FILE} (columns 'file' and 'class_index')")
        missing = [f for f, _, _ in self.rows if not (self.folder / f).is_file()]
        if missing:
            raise InputFileError(f"{path}: {len(missing)} listed file(s) do not exist, e.g. {self.folder / missing[0]}; "
                                 f"fix {LABELS_FILE} or add the files")
        if num_classes is not None:
            bad = [(f, c) for f, c, _ in self.rows if not 0 <= c < num_classes]
            if bad:
                raise UsageError(
                    f"{path}: class_index {bad[0][1]} of {bad[0][0]} is outside 0..{num_classes - 1} "
                    f"({len(bad)} rows); the model has {num_classes} classes"
                )

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def has_cells(self) -> bool:
        return any(cell >= 0 for _, _, cell in self.rows)

    def __getitem__(self, index: int) -> dict:
        file, label, cell = self.rows[index]
        record = {"image": load_image(self.folder / file), "label": np.int64(label), "id": file}
        if cell >= 0:
            record |= {"cell": np.int64(cell), "id": f"{file}@{cell}"}
        return record
