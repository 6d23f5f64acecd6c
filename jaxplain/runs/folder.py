"""An output folder a job owns while it runs: a lock, a manifest of its own files, and safe writes.

* **Lock** (:meth:`RunFolder.__enter__`): an advisory ``fcntl`` lock on ``.jaxplain-lock-pP``, released by the
  operating system on any exit (``kill -9`` included), so a second job into the same folder stops at once
  with a message naming the process that holds it, and a lock is never stale.
* **Manifest** (``.jaxplain-manifest``): the files this tool wrote there. The tool replaces or deletes only
  files in it; a file of the user's that a run would have to overwrite stops the run before any work.
* **Writes** go to a temporary name beside the target and replace it in one step (:mod:`jaxplain.files`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Iterable

from jaxplain.errors import UsageError
from jaxplain.files import check_output_folder, write_bytes, write_failed, write_text

MANIFEST = ".jaxplain-manifest"


def read_manifest(out: Path) -> set[str]:
    path = Path(out) / MANIFEST
    return set(json.loads(path.read_text())) if path.is_file() else set()


class RunFolder:
    """The output folder of one process of a job (``process``), held for the duration of a ``with`` block."""

    def __init__(self, out: str | Path, process: int = 0, *, kind: str = "job"):
        self.out = check_output_folder(out)
        self.process = process
        self.kind = kind
        self._lock = None

    def __enter__(self) -> "RunFolder":
        self._created = not self.out.exists()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            lock = open(self.out / f".jaxplain-lock-p{self.process}", "a+")
        except OSError as e:
            raise write_failed(self.out, e) from e
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise UsageError(f"{self.out} is in use by {holder}; wait for it to finish, or give another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"process {os.getpid()} ({self.kind})")
        lock.flush()
        self._lock = lock
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._lock is not None:
            if exc_type is not None and self._created and not self._holds_work():
                self._remove_own()  # a run that failed before saving anything leaves nothing behind
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None
            if exc_type is not None and self._created:
                (self.out / f".jaxplain-lock-p{self.process}").unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self.out.rmdir()  # only if nothing else is there

    def _holds_work(self) -> bool:
        """Whether a journal in the folder records finished work (then a failed run keeps what it saved)."""
        return any(path.stat().st_size > 0 for path in self.out.glob("records*.jsonl"))

    def _remove_own(self) -> None:
        for name in self.owned():
            path = self.out / name
            if path.is_file():
                path.unlink()
        (self.out / MANIFEST).unlink(missing_ok=True)
        for folder in sorted({p.parent for p in self.out.rglob("*")}, key=lambda p: -len(p.parts)):
            if folder != self.out:
                with contextlib.suppress(OSError):
                    folder.rmdir()

    # ---- files the tool owns
    def owned(self) -> set[str]:
        return read_manifest(self.out)

    def claim_files(self, relative: Iterable[str]) -> None:
        """Refuses (before any work) when a file the run will write exists and is not the tool's own."""
        owned = self.owned()
        for name in relative:
            path = self.out / name
            if path.exists() and name not in owned:
                kind = "folder" if path.is_dir() else "file"
                raise UsageError(f"{path} is a {kind} jaxplain did not write; it is left alone: give another --out, "
                                 "or move it away")

    def own(self, relative: Iterable[str]) -> None:
        """Adds files to the manifest (before they are written, so an interrupted write is still the tool's)."""
        owned = self.owned()
        new = owned | set(relative)
        if new != owned:
            write_text(self.out / MANIFEST, json.dumps(sorted(new), indent=0))

    def remove_stale(self, keep: Iterable[str], under: str) -> None:
        """Deletes the tool's own files under the sub-folder ``under`` that this run did not write again."""
        keep = set(keep)
        owned = self.owned()
        stale = {name for name in owned if name.startswith(under.rstrip("/") + "/") and name not in keep}
        for name in stale:
            path = self.out / name
            if path.is_file():
                path.unlink()
        if stale:
            write_text(self.out / MANIFEST, json.dumps(sorted(owned - stale), indent=0))

    def write_text(self, relative: str, text: str) -> Path:
        self.own([relative])
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
        return path

    def write_bytes(self, relative: str, data: bytes) -> Path:
        self.own([relative])
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, data)
        return path

    def path(self, relative: str) -> Path:
        """The path of a file the tool is about to write (recorded as its own)."""
        self.own([relative])
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
