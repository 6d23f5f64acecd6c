"""Shipped artefacts: where trained networks live and how one is written and read.

An artefact is a folder with ``variables/`` (orbax) and ``config.json`` (how to rebuild the network,
the recipe and the command that reproduces it). The zoo loads teachers, VAEs and surrogates through
this module; explainers receive what the zoo loaded and never read files themselves.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from jaxplain.errors import InputFileError

CONFIG = "config.json"
VARIABLES = "variables"


def project_checkpoints() -> Path:
    """The shipped artefacts: ``$JAXPLAIN_CHECKPOINTS`` if set, else the package's ``checkpoints`` folder
    (in a checkout a link to the top-level ``checkpoints/``; in an installed wheel a copy of it)."""
    return Path(os.environ.get("JAXPLAIN_CHECKPOINTS", Path(__file__).resolve().parent / "checkpoints"))


def artefact_dir(name_or_path: str | Path) -> Path:
    """A folder given as a path, or the shipped artefact called ``name_or_path``."""
    path = Path(name_or_path)
    return path if path.is_dir() else project_checkpoints() / str(name_or_path)


def save_artefact(directory: str | Path, variables, config: dict) -> Path:
    """Writes ``directory/variables`` (orbax) and ``directory/config.json``, replacing an older artefact."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / VARIABLES
    if target.exists():
        shutil.rmtree(target)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(target, jax.device_get(variables))
    checkpointer.wait_until_finished()
    (directory / CONFIG).write_text(json.dumps(config, indent=1) + "\n")
    return directory


def load_artefact(directory: str | Path) -> tuple[dict, dict]:
    """``(variables, config)`` of an artefact written by :func:`save_artefact`."""
    directory = Path(directory).resolve()
    if not (directory / CONFIG).is_file() or not (directory / VARIABLES).is_dir():
        raise InputFileError(f"{directory}: no trained artefact here; see README 'Checkpoints' for the command that makes it")
    variables = ocp.StandardCheckpointer().restore(directory / VARIABLES)
    return variables, artefact_config(directory)


def artefact_config(directory: str | Path) -> dict:
    """The recipe and shape settings an artefact was saved with (its weights are not read)."""
    return json.loads((Path(directory) / CONFIG).read_text())


def cast_floats(tree, dtype: str):
    """Casts the floating-point leaves of ``tree`` to ``dtype``: artefacts may be stored in bfloat16
    (half the size) and are used in float32."""
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)
