"""What a resumable run's answers depend on, and the rule for resuming one.

A run folder's ``run.json`` records its identity: the teacher and a fingerprint of its weights, a fingerprint of
the data (each item's name, label and size, in order), the run's options, and for every method its preset and
**every resolved setting** (input-dependent defaults made concrete), with a fingerprint of what it learned
(a VAE, a surrogate). A rerun into the folder resumes only when all of it is the same:

* a method's settings start from the values the folder recorded, not from today's defaults, so a default
  changed since never changes what the folder means and never stops its resume (the command says which
  recorded values differ from today's defaults);
* a value given explicitly (``--set``, a job file) that differs from the recorded one is refused, naming it;
* anything else that differs (the weights, the data, the seed, the backend: JAX version, device and processor,
  ...) is refused, naming what changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from jaxplain.errors import UsageError
from jaxplain.explainers import Context, Method, Settings, configure
from jaxplain.files import write_text

RUN = "run.json"
FORMAT = 2  # run.json's layout; folders from earlier versions are migrated by experiments/migrate_run_folders.py


def tree_fingerprint(tree) -> str | None:
    """A short digest of every array leaf of ``tree`` (paths, dtypes, shapes and bytes); None for no arrays."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    arrays = [(jax.tree_util.keystr(p), np.asarray(v)) for p, v in leaves if hasattr(v, "shape")]
    if not arrays:
        return None
    digest = hashlib.sha256()
    for path, array in arrays:
        digest.update(f"{path}:{array.dtype}:{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def backend() -> dict:
    """What computes the maps: the JAX version, platform, device kind and count, and on a CPU the processor. Each
    compiles to other kernels, and a method that trains per input (DAX, re-label distillation) can turn their
    float-level differences into other maps: the same DAX run on two CPUs differs by up to 0.16 in a CIFAR-10
    image's deletion AUC (its untrained network by 1e-7)."""
    device = jax.devices()[0]
    out = {"jax": jax.__version__, "platform": device.platform, "device": device.device_kind,
           "devices": jax.device_count()}
    if device.platform == "cpu":
        out["processor"] = _processor()
    return out


def _processor() -> str:
    """The CPU's model name and the vector instruction sets XLA compiles for (``avx2``, ``avx512f``, ...)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith(("flags", "Features"))), [])
    vector = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4", "f16c", "asimd", "sve")))
    return " ".join([names[0] if names else platform.processor() or platform.machine(), *vector])


def source_fingerprint(source, count: int) -> str:
    """A digest of the first ``count`` items of a data source, in order: each item's name, label, cell and file size
    for a labelled folder; the dataset's info and split for a TFDS source."""
    digest = hashlib.sha256()
    rows = getattr(source, "rows", None)
    if rows is not None:  # a labelled folder
        folder = Path(source.folder)
        for name, label, cell in rows[:count]:
            size = (folder / name).stat().st_size if (folder / name).is_file() else -1
            digest.update(f"{name}\t{label}\t{cell}\t{size}\n".encode())
    else:
        info = getattr(source, "dataset_info", None)
        described = info.as_json if info is not None and hasattr(info, "as_json") else repr(info)
        digest.update(f"{described}|{getattr(source, 'split', '')}|{len(source)}|{count}".encode())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Request:
    """A method asked for under ``label``: ``spec`` (``NAME`` or ``NAME:PRESET``) and the settings given explicitly."""

    label: str
    spec: str
    overrides: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Settled:
    """A method as the run will use it: its registry entry, preset and checked settings."""

    label: str
    method: Method
    preset: str
    settings: Settings

    def identity(self, context: Context, learned: str | None) -> dict:
        return {"method": self.method.name, "preset": self.preset,
                "settings": json.loads(json.dumps(self.settings.resolve(context).to_json())), "learned": learned}


def settle(requests: list[Request], recorded: dict | None, context: Context, report: Callable[[str], None] = print
           ) -> dict[str, Settled]:
    """The settings each requested method runs with: its preset's with the overrides (a new folder), or the
    folder's ``recorded`` ones with the overrides (a resume; see the module docstring). Raises
    :class:`UsageError` for a resume that would change a map."""
    settled, kept = {}, []
    if recorded is not None and sorted(recorded) != sorted(r.label for r in requests):
        raise UsageError(f"the folder holds the methods {', '.join(sorted(recorded))}, not "
                         f"{', '.join(r.label for r in requests)}; use a new --out folder, or the same methods")
    for request in requests:
        method, preset, settings = configure(request.spec, **request.overrides)
        if recorded is not None:
            entry = recorded[request.label]
            if (entry["method"], entry["preset"]) != (method.name, preset):
                raise UsageError(f"the folder ran {request.label} as {entry['method']}:{entry['preset']}, not "
                                 f"{method.name}:{preset}; use a new --out folder")
            known = {f.name for f in dataclasses.fields(settings)}
            gone = sorted(set(entry["settings"]) - known)
            if gone:
                raise UsageError(f"the folder's {request.label} has the setting {gone[0]!r}, which {method.name} no "
                                 "longer has; it cannot be resumed with this version of jaxplain")
            base = method.preset(preset).settings.replace(**entry["settings"])
            settings = base.replace(**request.overrides)
            now = json.loads(json.dumps(settings.resolve(context).to_json()))
            changed = [k for k in entry["settings"] if now.get(k) != entry["settings"][k]]
            if changed:
                k = changed[0]
                raise UsageError(f"{request.label}.{k} is {now.get(k)!r} but the folder's maps were made with "
                                 f"{entry['settings'][k]!r}; resuming would mix two kinds of map: use a new --out "
                                 "folder, or leave the setting as it was")
            today = json.loads(json.dumps(method.configure(preset, **request.overrides).resolve(context).to_json()))
            kept += [f"{request.label}.{k}={v!r} (now {today.get(k)!r})" for k, v in entry["settings"].items()
                     if today.get(k) != v]
        settled[request.label] = Settled(request.label, method, preset, settings)
    if kept:
        report(f"resuming with the folder's settings where today's defaults differ: {', '.join(kept)}")
    return settled


def read_identity(out: Path) -> dict | None:
    """The identity recorded in ``out/run.json``; None for a new folder. A folder of an older run format is refused."""
    out = Path(out)
    path = out / RUN
    if not path.exists():
        older = [name for name in ("config.json", "job.json") if (out / name).exists()]
        if older:
            raise UsageError(f"{out} holds a run of an earlier jaxplain ({older[0]}); migrate it with "
                             "experiments/migrate_run_folders.py, or use a new --out folder")
        return None
    identity = json.loads(path.read_text())
    if identity.get("resumable") is False:
        raise UsageError(f"{out} holds the record of an earlier run ({identity.get('migrated_from', 'migrated')}), "
                         "which cannot be resumed; use a new --out folder")
    if identity.get("format") != FORMAT:
        raise UsageError(f"{path} is of run format {identity.get('format')}, not {FORMAT}; use a new --out folder")
    return identity


def differences(previous: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted names of the keys whose values differ between two identities."""
    changed = []
    for key in sorted(set(previous) | set(current)):
        old, new = previous.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            changed.append(f"{prefix}{key}")
    return changed


def claim(out: Path, identity: dict, kind: str) -> None:
    """Writes ``identity`` to a new folder's ``run.json``, or checks a resumed folder's is the same (raising a
    :class:`UsageError` naming what differs)."""
    identity = json.loads(json.dumps({"format": FORMAT, "kind": kind} | identity))
    previous = read_identity(out)
    if previous is None:
        write_text(Path(out) / RUN, json.dumps(identity, indent=1))
        return
    changed = differences(previous, identity)
    if changed:
        raise UsageError(f"{out} holds {previous.get('kind', 'a run')} made differently ({', '.join(changed[:4])}"
                         f"{' ...' if len(changed) > 4 else ''} differ); use a new --out folder, or the original "
                         "settings to resume")
