"""Checkpoints with orbax: resumable training runs and small shipped artefacts (params + config).

* :func:`run_manager` keeps the latest few full training states of a run (params, optimiser state,
  step) so that a killed job resumes from its last save.
* :func:`save_artefact` / :func:`load_artefact` write and read what a project ships in
  ``checkpoints/``: the variables needed for inference and a ``config.json`` that records how to
  rebuild the network and the command that reproduces the artefact.
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


def run_manager(directory: str | Path, *, max_to_keep: int = 2) -> ocp.CheckpointManager:
    """A manager of full training states under ``directory`` (created if needed)."""
    return ocp.CheckpointManager(
        Path(directory).resolve(),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
    )


def save_state(manager: ocp.CheckpointManager, step: int, state, meta: dict) -> None:
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))


def restore_latest(manager: ocp.CheckpointManager, like):
    """``(state, meta)`` of the newest checkpoint, shaped like ``like``; ``(None, None)`` when there is none."""
    step = manager.latest_step()
    if step is None:
        return None, None
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    return restored.state, restored.meta


def project_checkpoints() -> Path:
    """The ``checkpoints/`` folder of the jaxplain checkout (or ``$JAXPLAIN_CHECKPOINTS``)."""
    return Path(os.environ.get("JAXPLAIN_CHECKPOINTS", Path(__file__).resolve().parents[2] / "checkpoints"))


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
    config = json.loads((directory / CONFIG).read_text())
    variables = ocp.StandardCheckpointer().restore(directory / VARIABLES)
    return variables, config


def cast_floats(tree, dtype: str):
    """Casts the floating-point leaves of ``tree`` to ``dtype``: artefacts may be stored in bfloat16
    (half the size) and are used in float32."""
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)
