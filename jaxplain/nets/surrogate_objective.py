"""The terms of seed 004's explanation objective on a map ``H``, shared by the surrogate's training and by its
test-time refinement (:func:`jaxplain.explainers.surrogate.refine_maps`).

* :func:`explanation_loss`: the teacher keeps its prediction on what the map keeps (the paper's).
* :func:`sparsity_loss`: ``lam * sum |H|``, priced per 224 x 224 map (the paper's, rescaled).
* :func:`deletion_loss`: the teacher loses the class on what the map removes (not the paper's; the deletion
  game's term, as in extremal perturbation and DAX).

Every term is per example, so a batch's gradient with respect to its maps is the examples' gradients side by
side.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxplain.imageops import blend

PAPER_PIXELS = 224 * 224  # the map size the paper's lam was set for


def sparsity_loss(maps, lam: float):
    """``lam * sum |H|`` per example, the sum rescaled to a 224 x 224 map.

    The paper's ``lam`` weighs the L1 norm of a 224 x 224 map, and the norm grows with the number of pixels:
    unscaled, a 32 x 32 map pays 49 times less for keeping everything.
    """
    return lam * jnp.sum(jnp.abs(maps), axis=(1, 2)) * (PAPER_PIXELS / (maps.shape[1] * maps.shape[2]))


def explanation_loss(teacher_apply, teacher_params, images, maps, teacher_logits, fill):
    """``KL(softmax(z_T(x)) || softmax(z_T(x H + fill (1 - H))))`` per example: the teacher keeps its
    prediction on what the map keeps."""
    kept_logits = teacher_apply(teacher_params, blend(images, fill, maps))[0].astype(jnp.float32)
    return optax.kl_divergence(jax.nn.log_softmax(kept_logits), jax.nn.softmax(teacher_logits))


def deletion_loss(teacher_apply, teacher_params, images, maps, classes, fill):
    """The teacher's probability of ``classes`` on what the map removes, ``p_c(x (1 - H) + fill H)``, per example.

    Not in the paper, whose objective only asks the kept region to preserve the prediction; a map can meet that
    while spreading over everything. This term also asks the removed region to lose the class.
    """
    removed_logits = teacher_apply(teacher_params, blend(images, fill, 1.0 - maps))[0].astype(jnp.float32)
    return jnp.take_along_axis(jax.nn.softmax(removed_logits), classes[:, None], -1)[:, 0]
