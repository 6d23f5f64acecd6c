"""The attentive surrogate explainer (seed 004): trained once per teacher, then one forward pass per map.

``init`` loads the surrogate trained for the teacher (``checkpoints/surrogate_<teacher>``, made by
``jaxplain train surrogate --teacher <teacher>``; see :mod:`jaxplain.train.surrogate_trainer`);
``explain`` runs the student and the explanation network on the batch and returns the map ``H`` in
[0, 1]. The map explains the teacher's prediction as the surrogate learned it: it does not depend on
the label asked for (the paper's networks are class-agnostic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax.numpy as jnp
from flax import struct

from jaxplain.errors import UsageError
from jaxplain.explainers.base import Explainer, ModelHandle, State
from jaxplain.nets.surrogate import Surrogate


@struct.dataclass
class SurrogateHandle:
    """The surrogate network (static) and its variables (a pytree), as carried in the explainer state."""

    module: Surrogate = struct.field(pytree_node=False)
    variables: Any


def load_surrogate(model_name: str, checkpoint: str | Path | None = None) -> SurrogateHandle:
    """The surrogate of teacher ``model_name`` (from ``checkpoint``, a folder, or the shipped one)."""
    from jaxplain.train.checkpoints import cast_floats, load_artefact, project_checkpoints

    directory = Path(checkpoint) if checkpoint else project_checkpoints() / f"surrogate_{model_name}"
    if not (directory / "config.json").is_file():
        raise UsageError(f"no surrogate trained for model {model_name!r} (looked in {directory}); train one with "
                         f"`jaxplain train surrogate --teacher {model_name}` or give --set surrogate.checkpoint=DIR")
    variables, config = load_artefact(directory)
    if config.get("teacher") not in (None, model_name) and checkpoint is None:
        raise UsageError(f"{directory} holds the surrogate of {config['teacher']!r}, not of {model_name!r}")
    module = Surrogate(config["num_classes"], config["width"], tuple(config["blocks"]), config["stem_stride"])
    return SurrogateHandle(module, cast_floats(variables, "float32"))


def surrogate(checkpoint: str | None = None) -> Explainer:
    """Attentive surrogate maps from the network trained for the teacher (or the one in ``checkpoint``)."""

    def init(key, model, sample=None) -> State:
        del key, sample
        return State(ModelHandle.of(model), load_surrogate(model.name, checkpoint))

    def explain(state, params, images, labels, *, key=None):
        del params, labels, key
        handle = state.learned
        _, maps = handle.module.apply(handle.variables, images)
        return maps.astype(jnp.float32)

    return Explainer("surrogate", init, explain)
