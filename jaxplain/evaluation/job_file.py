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
    [methods.relabel_input]            # a variant under its own label
    method = "relabel"
    attribution = "input"

``jaxplain evaluate --config FILE`` runs it; options given on the command line win over the file's.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import typer

from jaxplain.errors import UsageError
from jaxplain.evaluation.harness import EvaluationConfig

# the job's options that are fields of EvaluationConfig (the others, model and out, say what runs and where)
CONFIG_FIELDS = ("data", "limit", "protocol", "seed", "batch_size", "examples", "target", "localisation_alpha", "dtype",
                 "iou_threshold")
# every option a job file may name: `jaxplain evaluate`'s options that a run's identity depends on
JOB_OPTIONS = frozenset({"model", "out", "metrics", *CONFIG_FIELDS})


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
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise UsageError(f"--config {path}: give each method as a table, [methods.NAME]")
    aliases = {label: entry["method"] for label, entry in table.items() if "method" in entry}
    settings = {label: {k: v for k, v in entry.items() if k != "method"} for label, entry in table.items()}
    return {"options": job, "methods": list(table), "aliases": aliases, "settings": settings}


def from_command_line(ctx: typer.Context) -> set[str]:
    """Names of the options the user typed (as opposed to defaults)."""
    sources = {name: ctx.get_parameter_source(name) for name in ctx.params}
    return {name for name, source in sources.items() if source is not None and source.name == "COMMANDLINE"}


def evaluation_config(options: dict, settings: dict[str, dict], aliases: dict[str, str]) -> EvaluationConfig:
    """The evaluation a job's ``options`` (a job file's or the command line's, ``metrics`` a comma-separated
    string or a list) and its methods' ``settings`` by label describe; options left out take the defaults."""
    metrics = options.get("metrics")
    chosen = tuple(m.strip() for m in metrics.split(",") if m.strip()) if isinstance(metrics, str) else (
        tuple(metrics) if metrics else None)
    return EvaluationConfig(methods=settings, aliases=aliases, metrics=chosen,
                            **{name: options[name] for name in CONFIG_FIELDS if name in options})
