"""An append-only store of maps: a ``.npy`` file any NumPy reads (``np.load(path, mmap_mode="r")``), grown row by row.

Rows are appended in the order they are computed (the journal's ``row`` says which row holds which item), then
forced to the disk, and only then is the row count in the fixed-size header raised: a reader never sees a row
that is not whole, nothing is preallocated (no sparse file that can fault when the disk fills), and a resumed
job cuts the file back to the rows its journal vouches for.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np

from jaxplain.errors import UsageError
from jaxplain.files import write_failed

HEADER = 128  # bytes: magic, version, header length, the header dict padded with spaces, newline
DTYPE = np.dtype("<f2")


def header(rows: int, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header of exactly :data:`HEADER` bytes for ``rows`` maps of ``shape``."""
    text = repr({"descr": DTYPE.str, "fortran_order": False, "shape": (rows, *shape)})
    body = text.ljust(HEADER - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


class MapStore:
    """Float16 maps of one shape, appended to ``path``; ``valid_rows`` rows are kept from an earlier run."""

    def __init__(self, path: str | Path, shape: tuple[int, ...], valid_rows: int = 0):
        self.path, self.shape = Path(path), tuple(shape)
        self.row_bytes = int(np.prod(shape)) * DTYPE.itemsize
        try:
            if self.path.exists():
                self._check()
                with open(self.path, "r+b") as f:
                    f.truncate(HEADER + valid_rows * self.row_bytes)
                    f.seek(0)
                    f.write(header(valid_rows, self.shape))
            else:
                with open(self.path, "wb") as f:
                    f.write(header(0, self.shape))
        except OSError as e:
            raise write_failed(self.path, e) from e
        self.rows = valid_rows if self.path.exists() else 0

    def _check(self) -> None:
        with open(self.path, "rb") as f:
            raw = f.read(HEADER)
        try:
            meta = ast.literal_eval(raw[10:].decode("latin1").strip())
            ok = meta["descr"] == DTYPE.str and tuple(meta["shape"][1:]) == self.shape
        except (ValueError, SyntaxError, KeyError, TypeError):
            ok = False
        if not ok or len(raw) < HEADER:
            raise UsageError(f"{self.path} is not a map store of {self.shape} float16 maps; give another --out")

    def append(self, maps: np.ndarray) -> list[int]:
        """Writes ``maps`` ``[k, *shape]`` as new rows; returns their row numbers."""
        data = np.ascontiguousarray(maps, DTYPE).tobytes()
        start = self.rows
        try:
            with open(self.path, "r+b") as f:
                f.seek(HEADER + start * self.row_bytes)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                f.seek(0)
                f.write(header(start + len(maps), self.shape))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            try:
                with open(self.path, "r+b") as f:
                    f.truncate(HEADER + start * self.row_bytes)
            except OSError:
                pass
            raise write_failed(self.path, e, len(data)) from e
        self.rows = start + len(maps)
        return list(range(start, self.rows))


def append_scaled(store: MapStore, maps: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Appends ``maps`` each divided by its largest absolute value (float16 keeps its relative precision at any
    scale); returns their rows and the scales to multiply back (a map of zeros keeps scale 0)."""
    scales = np.abs(np.nan_to_num(np.asarray(maps, np.float32))).reshape(len(maps), -1).max(axis=1)
    safe = np.where(scales > 0, scales, 1.0)
    return store.append((maps / safe[:, None, None]).astype(np.float16)), scales


def valid_rows(records: list[dict], label: str) -> int:
    """How many rows of ``label``'s store the journal vouches for (rows past them are a half-written batch)."""
    return max((r["row"] + 1 for r in records if r["method"] == label and "row" in r), default=0)
