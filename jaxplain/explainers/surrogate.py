"""The attentive surrogate explainer (seed 004): trained once per teacher, then one forward pass per map.

``init`` loads the surrogate trained for the teacher (``checkpoints/surrogate_<teacher>``, made by
``jaxplain train surrogate --teacher <teacher>``; see :mod:`jaxplain.train.surrogate_trainer`);
``explain`` runs the student and the explanation network on the batch (a surrogate that reads the
teacher's own features runs the teacher first) and returns the map ``H`` in [0, 1]. The map explains
the teacher's prediction as the surrogate learned it: it does not depend on the label asked for (the
paper's networks are class-agnostic).

``refine_steps`` > 0 (not the paper's; 0 by default) trades speed for faithfulness: the amortized map is the
start of a short per-image optimisation (:func:`refine_maps`), which then explains the label asked for.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxplain.explainers.base import Explainer, ModelHandle, State
from jaxplain.nets.surrogate_objective import deletion_loss, explanation_loss, sparsity_loss
from jaxplain.zoo import load_surrogate

CLIP = 1e-4  # maps are clipped to [CLIP, 1 - CLIP] before their logit is taken


def refine_maps(model: ModelHandle, params, images, maps, labels, *, steps: int, stride: int | None = None,
                learning_rate: float = 1.0, deletion_weight: float = 1.0, l1: float = 1e-5):
    """``steps`` Adam steps from the surrogate's ``maps`` ``[B, H, W]`` on its explanation objective.

    The map becomes ``sigmoid(logit(maps) + upsample(offset))`` with ``offset`` a coarse grid of cells of
    ``stride`` pixels (default: a 16 x 16 grid), started at zero, so that the first map is the surrogate's and a
    coarse offset cannot draw pixel-sized adversarial patterns. The objective is the paper's, per image: the
    teacher keeps its prediction on what the map keeps, plus ``l1`` times the map's L1 norm per 224 x 224
    pixels, plus ``deletion_weight`` times the probability of ``labels`` on what the map removes (the deletion
    term, which the amortized network cannot fit per image). Each image's steps depend on that image alone.
    Cost: ``steps`` forward and backward passes of the teacher on twice the batch.
    """
    height, width = maps.shape[1:3]
    cell = stride or max(1, height // 16)
    grid = (maps.shape[0], -(-height // cell), -(-width // cell))
    clipped = jnp.clip(maps, CLIP, 1.0 - CLIP)
    start = jnp.log(clipped) - jnp.log1p(-clipped)
    teacher_logits = jax.lax.stop_gradient(model.logits(params, images)).astype(jnp.float32)
    fill = jnp.asarray(model.zero_pixel, images.dtype)

    def refined(offset):
        return jax.nn.sigmoid(start + jax.image.resize(offset, maps.shape, "bilinear"))

    def objective(offset):
        h = refined(offset)
        loss = explanation_loss(model.apply_fn, params, images, h, teacher_logits, fill) + sparsity_loss(h, l1)
        if deletion_weight:
            loss = loss + deletion_weight * deletion_loss(model.apply_fn, params, images, h, labels, fill)
        return loss.sum()  # per-image terms: each offset's gradient is its own image's

    optimiser = optax.adam(learning_rate)

    def step(carry, _):
        offset, opt_state = carry
        updates, opt_state = optimiser.update(jax.grad(objective)(offset), opt_state)
        return (optax.apply_updates(offset, updates), opt_state), None

    offset = jnp.zeros(grid, jnp.float32)
    (offset, _), _ = jax.lax.scan(step, (offset, optimiser.init(offset)), None, length=steps)
    return refined(offset)


def surrogate(checkpoint: str | None = None, refine_steps: int = 0, stride: int | None = None,
              learning_rate: float = 1.0, deletion_weight: float = 1.0, l1: float = 1e-5) -> Explainer:
    """Attentive surrogate maps from the network trained for the teacher (or the one in ``checkpoint``);
    with ``refine_steps`` > 0, refined per image by :func:`refine_maps` with the other settings."""

    def init(key, model, sample=None) -> State:
        del key, sample
        return State(ModelHandle.of(model), load_surrogate(model.name, checkpoint))

    def explain(state, params, images, labels, *, key=None):
        del key
        _, maps = state.learned(state.model.apply_fn, params, images)
        maps = maps.astype(jnp.float32)
        if not refine_steps:
            return maps
        return refine_maps(state.model, params, images, maps, labels, steps=refine_steps, stride=stride,
                           learning_rate=learning_rate, deletion_weight=deletion_weight, l1=l1)

    return Explainer("surrogate", init, explain)
