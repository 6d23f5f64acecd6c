"""The attentive surrogate explainer (seed 004): trained once per teacher, then one forward pass per map.

``init`` loads the surrogate trained for the teacher (``checkpoints/surrogate_<teacher>``, made by
``jaxplain train surrogate --teacher <teacher>``; see :mod:`jaxplain.train.surrogate_trainer`);
``explain`` runs the student and the explanation network on the batch (a surrogate that reads the
teacher's own features runs the teacher first) and returns the map ``H`` in [0, 1]. The map explains
the teacher's prediction as the surrogate learned it: it does not depend on the label asked for (the
paper's networks are class-agnostic).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxplain.explainers.base import Explainer, ModelHandle, State
from jaxplain.zoo import load_surrogate


def surrogate(checkpoint: str | None = None) -> Explainer:
    """Attentive surrogate maps from the network trained for the teacher (or the one in ``checkpoint``)."""

    def init(key, model, sample=None) -> State:
        del key, sample
        return State(ModelHandle.of(model), load_surrogate(model.name, checkpoint))

    def explain(state, params, images, labels, *, key=None):
        del labels, key
        _, maps = state.learned(state.model.apply_fn, params, images)
        return maps.astype(jnp.float32)

    return Explainer("surrogate", init, explain)
