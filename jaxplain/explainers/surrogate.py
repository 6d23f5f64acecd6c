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

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxplain.explainers.base import Explainer, ModelHandle, State, minimise
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting
from jaxplain.nets.surrogate_objective import deletion_loss, explanation_loss, sparsity_loss
from jaxplain.zoo import load_surrogate

CLIP = 1e-4  # maps are clipped to [CLIP, 1 - CLIP] before their logit is taken
ARTEFACTS = {"features": "surrogate_{teacher}", "scratch": "surrogate_{teacher}_scratch",
             "distilled": "surrogate_{teacher}_distilled"}


@dataclasses.dataclass(frozen=True)
class SurrogateSettings(Settings):
    method = "surrogate"
    student: str = setting("features", "the shipped surrogate: attention modules on the frozen teacher's features, "
                                       "the paper's residual student trained from scratch, or the features one "
                                       "fine-tuned on refined maps", choices=tuple(ARTEFACTS))
    checkpoint: str | None = setting(None, "an artefact folder or shipped name (None: the shipped one of student)")
    refine_steps: int = setting(0, "Adam steps refining each map on the surrogate's objective (not the paper's)",
                                at_least=0)
    stride: int | None = setting(None, "cell size in px of the refinement's offset (None: a 16 x 16 grid)", count=True)
    learning_rate: float = setting(1.0, "the refinement's Adam step size", above=0.0)
    deletion_weight: float = setting(1.0, "weight of the refinement's deletion term", at_least=0.0)
    l1: float = setting(1e-5, "lambda of the refinement's L1 term per 224 x 224 px (the paper's 1e-5)", at_least=0.0)

    def resolve(self, context):
        return self.replace(checkpoint=self.checkpoint or ARTEFACTS[self.student].format(teacher=context.model))


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

    offset, _ = minimise(objective, jnp.zeros(grid, jnp.float32), optax.adam(learning_rate), steps)
    return refined(offset)


def build(settings: SurrogateSettings) -> Explainer:
    """Attentive surrogate maps from the trained network (``student``, or ``checkpoint``); with ``refine_steps`` > 0,
    refined per image by :func:`refine_maps`."""
    s = settings

    def init(key, model, sample=None) -> State:
        del key, sample
        checkpoint = s.checkpoint or ARTEFACTS[s.student].format(teacher=model.name)
        return State(ModelHandle.of(model), load_surrogate(model.name, checkpoint))

    def explain(state, params, images, labels, *, key=None):
        del key
        _, maps = state.learned(state.model.apply_fn, params, images)
        maps = maps.astype(jnp.float32)
        if not s.refine_steps:
            return maps
        return refine_maps(state.model, params, images, maps, labels, steps=s.refine_steps, stride=s.stride,
                           learning_rate=s.learning_rate, deletion_weight=s.deletion_weight, l1=s.l1)

    return Explainer("surrogate", init, explain, settings=settings)


METHOD = Method("surrogate", build, {
    "default": Preset(SurrogateSettings(), "jaxplain's tuned default; differences from the paper: "
                                           "docs/methods/surrogate.md"),
    "paper": Preset(SurrogateSettings(student="scratch"),
                    "Jo & Lee (seed 004): a residual student with channel and spatial attention in its last three "
                    "stages, distilled with alpha 0.5, T 1, an explanation network on the attention differences, "
                    "lambda 1e-5, Nesterov SGD 0.9; one forward pass per map",
                    differs=("the student is a narrow residual network (width 32, one block per stage) trained from "
                             "scratch on the data at hand (CIFAR-10 train; 254 imagenet-dev photos), not ResNet-50 on "
                             "ImageNet: its schedule is the paper's shape shortened to the CPU (see the artefact's "
                             "config.json)",)),
}, "attentive surrogate network: one forward pass of a network trained to explain the teacher (amortized)")
