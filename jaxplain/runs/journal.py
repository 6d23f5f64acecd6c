"""The journal of a resumable job: one JSON line per finished (method, item), fsynced batch by batch.

A reader drops a torn last line (a job killed mid-write); a write that fails (a full disk) is cut back to the
last whole line, so the journal never holds half a record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jaxplain.files import write_failed


def read_records(path: str | Path) -> list[dict]:
    """Complete records of a (possibly interrupted) journal; a torn last line is cut off."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    if len(complete) != len(raw):
        with open(path, "r+b") as f:
            f.truncate(len(complete))
    return [json.loads(line) for line in complete.decode().splitlines() if line.strip()]


def append_records(path: str | Path, records: list[dict]) -> None:
    """Appends ``records`` and forces them to the disk; on failure the file is cut back to what it held."""
    path = Path(path)
    text = "".join(json.dumps(record) + "\n" for record in records)
    size = path.stat().st_size if path.exists() else 0
    try:
        with open(path, "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if path.exists():
            with open(path, "r+b") as f:
                f.truncate(size)
        raise write_failed(path, e, len(text)) from e
