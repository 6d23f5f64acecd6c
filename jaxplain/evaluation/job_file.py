"""Job files: one TOML file per large evaluation (big_vision style) instead of a long command line.

::

    # experiments/configs/imagenet_heldout.toml
    model = "efficientnet_lite0"
    data = "runs/imagenet-dev-heldout.tsv"
    out = "results/imagenet_dev_heldout"
    limit = 250

    [methods.relabel]                  # a method at its defaults
    [methods.rise]
    num_masks = 4000                   # a setting
    [methods."relabel:paper"]          # a preset
    [methods.relabel_input]            # a variant under its own label
    method = "relabel"
    attribution = "input"

``jaxplain evaluate --config FILE`` runs it; options given on the command line win over the file's. Every value
is checked here, so a wrong type is one line naming the option and the file.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

from jaxplain.errors import UsageError
from jaxplain.evaluation.harness import EvaluationConfig

# each option a job file may name, with the type it must have: `jaxplain evaluate`'s options
OPTION_TYPES = {"model": str, "out": str, "data": str, "limit": int, "protocol": str, "seed": int,
                "batch_size": int, "examples": int, "target": str, "localisation_alpha": float, "dtype": str,
                "iou_threshold": float, "metrics": (str, list)}
# the options that are fields of EvaluationConfig (the others, model and out, say what runs and where)
CONFIG_FIELDS = ("data", "limit", "protocol", "seed", "batch_size", "examples", "target", "localisation_alpha", "dtype",
                 "iou_threshold")
JOB_OPTIONS = frozenset(OPTION_TYPES)


def check_option(source: str, name: str, value) -> None:
    """A :class:`UsageError` naming ``source`` and ``name`` when ``value`` has the wrong type or is not finite."""
    kind = OPTION_TYPES[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = any(isinstance(value, k) and not isinstance(value, bool) for k in kinds)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        ok = False
    if not ok:
        names = " or ".join("a list of names" if k is list else {str: "a string", int: "a whole number",
                                                                  float: "a finite number"}[k] for k in kinds)
        raise UsageError(f"{source}: {name} must be {names}; got {value!r}")


def read_job_file(path: str | Path, known: set[str]) -> dict:
    """``{"options": {...}, "methods": [labels], "aliases": {label: method}, "settings": {label: {...}}}``."""
    path = Path(path)
    try:
        job = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise UsageError(f"--config {path}: no such file") from e
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--config {path}: not valid TOML ({e})") from e
    table = job.pop("methods", {})
    unknown = sorted(set(job) - known)
    if unknown:
        raise UsageError(f"--config {path}: unknown option {unknown[0]!r}; options are: {', '.join(sorted(known))}")
    for name, value in job.items():
        check_option(f"--config {path}", name, value)
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise UsageError(f"--config {path}: give each method as a table, [methods.NAME]")
    if any(not label.strip() for label in table):
        raise UsageError(f"--config {path}: a method's label is empty")
    if any(not isinstance(entry.get("method", ""), str) or ("method" in entry and not entry["method"].strip())
           for entry in table.values()):
        raise UsageError(f"--config {path}: a method's 'method' must be a name such as \"relabel:paper\"")
    aliases = {label: entry["method"] for label, entry in table.items() if "method" in entry}
    settings = {label: {k: v for k, v in entry.items() if k != "method"} for label, entry in table.items()}
    return {"options": job, "methods": list(table), "aliases": aliases, "settings": settings}


def evaluation_config(options: dict, settings: dict[str, dict], aliases: dict[str, str]) -> EvaluationConfig:
    """The evaluation a job's ``options`` (a job file's or the command line's, ``metrics`` a comma-separated
    string or a list) and its methods' ``settings`` by label describe; options left out take the defaults."""
    metrics = options.get("metrics")
    chosen = tuple(m.strip() for m in metrics.split(",") if m.strip()) if isinstance(metrics, str) else (
        tuple(metrics) if metrics else None)
    return EvaluationConfig(methods=settings, aliases=aliases, metrics=chosen,
                            **{name: options[name] for name in CONFIG_FIELDS if name in options})
