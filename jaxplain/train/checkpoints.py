"""Checkpoints with orbax: resumable training runs and small shipped artefacts (params + config).

* :func:`run_manager` keeps the latest few full training states of a run (params, optimiser state,
  step) so that a killed job resumes from its last save.
* The small artefacts a training run ships (:func:`save_artefact`, :func:`load_artefact`) live in
  :mod:`jaxplain.artefacts`, which the zoo reads without importing the training toolkit.
"""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp

from jaxplain.artefacts import cast_floats, load_artefact, project_checkpoints, save_artefact

__all__ = ["cast_floats", "load_artefact", "project_checkpoints", "restore_latest", "run_manager", "save_artefact",
           "save_state"]


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
