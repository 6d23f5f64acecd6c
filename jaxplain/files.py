"""Writing outputs safely: atomic replacement of files, and output folders checked before any work."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from jaxplain.errors import UsageError


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path beside ``path``; on success it replaces ``path`` in one step, so readers and
    interrupted jobs never see a half-written file. The temporary name keeps ``path``'s suffix."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


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


def with_added_settings(recorded: dict, current: dict, earlier: dict | None = None) -> dict:
    """Recorded ``{method: {setting: default}}`` with the settings added to a method since the run began
    taken at ``earlier``'s value where it names one (the value every run before the setting used, when its
    default has changed since), else at their current default: a new setting's default keeps the method's
    old behaviour (the rule for adding one), so it does not stop a resume; a default that changed still does."""
    earlier = earlier or {}
    return {label: current.get(label, {}) | {k: v for k, v in earlier.items() if k in current.get(label, {})}
            | settings for label, settings in recorded.items()}


def with_added_resolved(recorded: dict, current: dict, earlier: dict) -> dict:
    """Recorded ``{label: {setting: value}}`` of what input-dependent defaults stood for, with the settings
    recorded only since the run began (those ``current`` has) taken at ``earlier``: the value every run
    before them used. A run made then resumes; one whose setting now resolves otherwise is still refused."""
    return {label: {k: v for k, v in earlier.items() if k in current.get(label, {})} | entry
            for label, entry in recorded.items()}


def effective_settings(identity: dict) -> dict:
    """A run's identity with each method's settings as they act: its recorded defaults overlaid by the
    settings given. A setting written out at the value that was the default when the run began is then
    the same run: that is how a config pins a default changed since."""
    if "defaults" not in identity or "methods" not in identity:
        return identity
    rest = {k: v for k, v in identity.items() if k not in ("defaults", "methods")}
    return rest | {"methods": {label: identity["defaults"].get(label, {}) | settings
                               for label, settings in identity["methods"].items()}}


def differences(previous: dict, current: dict) -> list[str]:
    """Names of the keys (``methods.LABEL.SETTING`` inside the methods, ``resolved.LABEL.SETTING`` inside
    what their input-dependent defaults stood for) whose values differ."""
    changed = []
    for key in sorted(set(previous) | set(current)):
        if key in ("methods", "resolved") and isinstance(previous.get(key), dict) and isinstance(current.get(key), dict):
            for label in sorted(set(previous[key]) | set(current[key])):
                old, new = previous[key].get(label), current[key].get(label)
                if old is None or new is None:
                    changed.append(f"{key}.{label}")
                else:
                    changed += [f"{key}.{label}.{s}" for s in sorted(set(old) | set(new)) if old.get(s) != new.get(s)]
        elif previous.get(key) != current.get(key):
            changed.append(key)
    return changed


def claim_output_folder(out: Path, identity: dict, kind: str, *, defaults: dict | None = None,
                        name: str = "config.json", earlier_resolved: dict | None = None,
                        earlier_defaults: dict | None = None) -> None:
    """Records ``identity`` (the settings that decide a resumable job's results) in ``out/name``, or, when
    ``out`` already holds one, checks it is the same (``defaults`` fill keys older runs did not record;
    ``earlier_resolved`` the resolved settings they did not, :func:`with_added_resolved`; ``earlier_defaults``
    the value of a setting added since whose default is not what those runs used, :func:`with_added_settings`):
    resuming with other settings would mix two jobs' results, so it is refused naming what differs.
    Methods are compared by their :func:`effective_settings`."""
    path = Path(out) / name
    if path.exists():
        previous = (defaults or {}) | json.loads(path.read_text())
        if "defaults" in previous and "defaults" in identity:
            previous["defaults"] = with_added_settings(previous["defaults"], identity["defaults"], earlier_defaults)
        if earlier_resolved and "resolved" in previous and "resolved" in identity:
            previous["resolved"] = with_added_resolved(previous["resolved"], identity["resolved"], earlier_resolved)
        changed = differences(effective_settings(previous), effective_settings(identity))
        if changed:
            raise UsageError(f"{out} holds {kind} with other settings ({', '.join(changed)} differ); "
                             "use a new --out folder, or the original settings to resume")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(identity, indent=1))
