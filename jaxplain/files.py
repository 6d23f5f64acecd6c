"""Writing outputs safely: atomic replacement of files, one clear line for a write that fails, and output
folders checked before any work."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from jaxplain.errors import OutputError, UsageError


def check_output_folder(out: str | Path) -> Path:
    """Checks, without creating anything, that ``out`` is (or can be created as) a writable folder;
    raises a :class:`UsageError` naming the fix otherwise. Run it before the work starts."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (it is created if needed)")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is a file, so the folder cannot be created")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out} cannot be written ({existing} is read-only); choose a writable folder")
    return out


def write_failed(path: Path, error: OSError, needed: int | None = None) -> OutputError:
    """One line for a write that failed: the path, the reason, and for a full disk the space needed."""
    if error.errno == errno.ENOSPC:
        need = f" (about {needed / 2 ** 20:.1f} MiB needed)" if needed else ""
        return OutputError(f"no space left on the device writing {path}{need}; free space and rerun the same command "
                           "(finished work is kept)")
    return OutputError(f"cannot write {path}: {error.strerror or error}")


@contextlib.contextmanager
def atomic_path(path: str | Path, needed: int | None = None):
    """Yields a temporary path beside ``path``; on success it replaces ``path`` in one step, so readers and
    interrupted jobs never see a half-written file. The temporary name keeps ``path``'s suffix. A failed write
    leaves nothing behind and raises :class:`OutputError`."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise write_failed(path, e, needed) from e
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path, len(text)) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path, len(data)) as tmp:
        tmp.write_bytes(data)
