"""Guided feature inversion (Du, Liu, Song & Hu; seed 002).

The saliency map is a mask built from the teacher's own intermediate features:
``m = normalise(up(r(sum_k w_k A_k)))`` with ``A = f^l(x)`` the feature ``layer`` of the image (fixed),
one weight ``w_k`` per channel, bilinear upsampling to the input, and ``normalise`` the reference code's
``(m - min) / max`` (``mask_normalisation="over_max"``; ``"min_max"`` divides by ``max - min``). A masked input
keeps the image where ``m`` is high and shows a background ``p`` elsewhere: ``x * m + p * (1 - m)``, with
``p`` a Gaussian blur of the image (``background="blur"``, sigma ``blur_sigma`` = 11 px at 224 px,
the reference's radius) or uniform noise (``"noise"``, the paper's wording).

The weights are fitted per image with Adam in two stages, as in the reference code:

1. **Inversion** (the first ``inversion_steps`` steps): the masked input must keep the feature, a
   relative perceptual loss ``||f^l(x m + p (1-m)) - f^l(x)||^2 / ||f^l(x)||^2 + inversion_penalty
   ||w||^2``, so the mask first covers everything the layer encodes.
2. **Class discrimination** (the rest): ``-s_c(x m + p (1-m)) + suppress_weight s_c(x (1-m) + p m)
   + target_penalty ||w||^2``: keep the class on the kept region, lose it on the removed one. The class
   score ``s_c`` is the softmax probability in the reference (``class_score="probability"``). When the
   teacher gives the class little probability on the whole image (in a 2 x 2 grid of four objects, under
   0.01 for most cells), that term's gradient is thousands of times smaller than the penalty's: the stage
   only shrinks the weights, and the map stays the inversion stage's (which marks every object the layer
   encodes) or collapses to a constant. The default, ``class_score="log_probability"``, scores ``log p_c``,
   whose gradient does not shrink with ``p_c``; it was chosen on development grids (results/README.md).

Weights start at ``initial_weight``. The reference clamps them at zero after each step and uses the sum as it is
(``channel_weights="non_negative"``, ``r`` the identity). Such a mask cannot drop a region that fires a channel the
class also needs elsewhere: a look-alike in another object, or counter-evidence. ``"signed"`` leaves the weights
free, but then a subtracted channel makes a deep minimum in a few places and the normalisation lifts everything
else (worse on the development grids). The default, ``"rectified"``, leaves them free and passes the sum through a
leaky ReLU ``r`` (slope 0.01), as Grad-CAM rectifies its signed sum: a subtracted channel cuts the mask to a floor
of zero where it wins, and the small slope keeps a gradient when the sum is negative everywhere (a plain ReLU then
returns a dead, constant mask). Chosen on the development grids (grid pointing game +0.14 over the non-negative
weights, n = 64; results/README.md). The reference's normalisation over the maximum keeps a positive floor visible
to the optimiser as a lower peak; it was level with min-max normalisation there, so the reference's stays. The
learning rate is halved every ``decay_every`` steps. Both penalties are squared L2 norms as in the reference code
(``penalty_norm=2``); the paper writes L1 norms (``penalty_norm=1``), which drive the weights of channels the
class does not need to exactly zero instead of merely shrinking them (worse on the development grids). Every other
default is the reference's; ``channel_weights="non_negative", class_score="probability"`` is the reference's method.
One image is written and ``vmap``ped over the batch (each step is one or two teacher forward+backward passes per
image, so memory is set by the batch size), and the steps run in two ``lax.scan`` loops.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxplain.explainers.base import Explainer, per_example_keys, require_choice, require_feature, stateless
from jaxplain.imageops import blend, gaussian_blur, minmax

BACKGROUNDS = ("blur", "noise")
CLASS_SCORES = ("probability", "log_probability")
CHANNEL_WEIGHTS = ("non_negative", "signed", "rectified")
PENALTY_NORMS = (1, 2)
MASK_NORMALISATIONS = ("over_max", "min_max")


def normalise_mask(mask: jax.Array, normalisation: str = "over_max") -> jax.Array:
    """A mask in [0, 1]: ``(m - min) / max`` (``"over_max"``, the reference code's) or ``(m - min) / (max - min)``.

    Over the maximum, a map that is positive everywhere keeps its floor as a lower peak: a sum of channels that
    all fire somewhat everywhere shows the image at only ``1 - min/max`` of its strength where it is largest,
    so the class stage gains by choosing channels that are silent somewhere. Min-max normalisation is blind to
    the floor. A signed sum (``min < 0``) is divided by ``max - min``, the larger, so both stay in [0, 1].
    """
    if normalisation == "min_max":
        return minmax(mask)
    low, high = mask.min(), mask.max()
    scale = jnp.maximum(high, high - low)
    return jnp.where(scale > 0, (mask - low) / jnp.where(scale > 0, scale, 1.0), 0.0)


def channel_mask(weights: jax.Array, activation: jax.Array, size: tuple[int, int],
                 normalisation: str = "over_max", rectify: bool = False) -> jax.Array:
    """``normalise(up(sum_k w_k A_k))``: a ``[H, W]`` mask in [0, 1] from a feature ``[h, w, K]`` and weights ``[K]``."""
    low_res = jnp.einsum("hwk,k->hw", activation, weights)
    if rectify:
        low_res = jax.nn.leaky_relu(low_res)
    return normalise_mask(jax.image.resize(low_res, size, method="bilinear"), normalisation)


def relative_feature_loss(feature: jax.Array, reference: jax.Array) -> jax.Array:
    """``||feature - reference||^2 / ||reference||^2``: the perceptual loss of feature inversion."""
    return jnp.sum((feature - reference) ** 2) / jnp.maximum(jnp.sum(reference ** 2), 1e-12)


def gfi(
    layer: str = "head",
    steps: int = 80,
    inversion_steps: int = 11,
    learning_rate: float = 1e-2,
    decay_every: int = 10,
    initial_weight: float = 0.1,
    inversion_penalty: float = 5.0,
    target_penalty: float = 2.0,
    suppress_weight: float = 1.0,
    background: str = "blur",
    blur_sigma: float | None = None,
    class_score: str = "log_probability",
    channel_weights: str = "rectified",
    penalty_norm: int = 2,
    mask_normalisation: str = "over_max",
) -> Explainer:
    """Guided feature inversion on feature ``layer``: ``steps`` Adam steps, the first ``inversion_steps`` inverting."""
    require_choice("background", background, BACKGROUNDS)
    require_choice("channel_weights", channel_weights, CHANNEL_WEIGHTS)
    require_choice("class_score", class_score, CLASS_SCORES)
    require_choice("penalty_norm", penalty_norm, PENALTY_NORMS)
    require_choice("mask_normalisation", mask_normalisation, MASK_NORMALISATIONS)
    signed = channel_weights != "non_negative"
    rectify = channel_weights == "rectified"
    if not 0 <= inversion_steps <= steps:
        raise ValueError(f"inversion_steps must lie in 0..steps ({steps}); got {inversion_steps}")
    schedule = optax.exponential_decay(learning_rate, transition_steps=decay_every, decay_rate=0.5, staircase=True)
    optimiser = optax.adam(schedule)
    norm = (lambda w: jnp.sum(jnp.abs(w))) if penalty_norm == 1 else (lambda w: jnp.sum(w ** 2))

    def explain_one(state, params, image, label, activation, key):
        height, width = image.shape[:2]
        activation = jax.lax.stop_gradient(activation)
        if background == "blur":
            sigma = blur_sigma or 11.0 * height / 224
            substrate = gaussian_blur(image, 2 * int(3 * sigma) + 1, sigma, fill=state.model.zero_pixel)
        else:
            substrate = jax.random.uniform(key, image.shape)

        def features_of(masked):
            return state.model.apply_fn(params, masked[None])[1][layer][0]

        def inversion_loss(weights):
            mask = channel_mask(weights, activation, (height, width), mask_normalisation, rectify)
            kept = blend(image, substrate, mask)
            return relative_feature_loss(features_of(kept), activation) + inversion_penalty * norm(weights)

        def target_loss(weights):
            mask = channel_mask(weights, activation, (height, width), mask_normalisation, rectify)
            pair = jnp.stack([blend(image, substrate, mask), blend(substrate, image, mask)])  # kept, removed
            if class_score == "probability":
                scores = state.model.probabilities(params, pair)[:, label]
            else:
                scores = state.model.log_probabilities(params, pair)[:, label]
            return -scores[0] + suppress_weight * scores[1] + target_penalty * norm(weights)

        def run(loss, carry, count):
            def step(carry, _):
                weights, opt_state = carry
                updates, opt_state = optimiser.update(jax.grad(loss)(weights), opt_state)
                weights = optax.apply_updates(weights, updates)
                return (weights if signed else jnp.maximum(weights, 0.0), opt_state), None

            return jax.lax.scan(step, carry, None, length=count)[0]

        weights = jnp.full((activation.shape[-1],), initial_weight, jnp.float32)
        carry = run(inversion_loss, (weights, optimiser.init(weights)), inversion_steps)
        weights, _ = run(target_loss, carry, steps - inversion_steps)
        return channel_mask(weights, activation, (height, width), mask_normalisation, rectify)

    def explain(state, params, images, labels, *, key):
        features = state.model.apply_fn(params, images)[1]
        activations = require_feature(features, layer)
        keys = per_example_keys(key, images.shape[0])
        one = lambda *example: explain_one(state, params, *example)
        return jax.vmap(one)(images, labels, activations, keys)

    return stateless("gfi", explain)
