"""Guided feature inversion (Du, Liu, Song & Hu; seed 002).

The saliency map is a mask built from the teacher's own intermediate features:
``m = normalise(up(r(sum_k w_k A_k)))`` with ``A = f^l1(x)`` the feature ``layer`` of the image (fixed), one
weight ``w_k`` per channel, upsampling to the input (bilinear; the reference code's ``UpsamplingBilinear2d``
aligns corners) and ``normalise`` the reference code's ``(m - min) / max`` (or min-max). A masked input keeps
the image where ``m`` is high and shows a background ``p`` elsewhere, ``x * m + p * (1 - m)``: a Gaussian blur of
the image (the reference code) or uniform noise (the paper's wording).

The weights are fitted per image with Adam in two stages:

1. **Inversion** (the first ``inversion_steps`` steps): the masked input must keep the feature
   ``inversion_layer`` (``f^l``), ``||f^l(x m + p (1-m)) - f^l(x)||^2`` (divided by ``||f^l(x)||^2`` in the
   reference code) plus ``inversion_penalty`` times a norm of ``w``, so the mask first covers everything the
   layer encodes.
2. **Class discrimination** (the rest): ``-s_c(x m + p (1-m)) + suppress_weight s_c(x (1-m) + p m)
   + target_penalty`` times the norm of ``w``: keep the class on the kept region, lose it on the removed one.

``r`` is the identity with the reference's weights clamped at zero after each step; the tuned default frees
their sign and rectifies the sum (``channel_weights``). What each setting does and how each default differs
from the paper, with its measured effect, is in ``docs/methods/gfi.md``. One image is written and ``vmap``ped
over the batch (each step is one or two teacher forward and backward passes per image, so memory follows the
batch size); the steps run in two ``lax.scan`` loops.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxplain.explainers.base import Explainer, each_image, minimise, require_feature, stateless
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting
from jaxplain.imageops import blend, gaussian_blur, minmax, resize_align_corners


@dataclasses.dataclass(frozen=True)
class GfiSettings(Settings):
    method = "gfi"
    layer: str = setting("head", "l1: the feature whose channels the mask sums")
    inversion_layer: str | None = setting(None, "l: the feature the inversion stage keeps (None: layer)")
    steps: int = setting(80, "Adam steps in all", count=True)
    inversion_steps: int = setting(11, "of which the first ones invert the feature", at_least=0)
    learning_rate: float = setting(1e-2, "Adam's step size, halved every decay_every steps", above=0.0)
    decay_every: int = setting(10, "steps between halvings of the learning rate", count=True)
    initial_weight: float = setting(0.1, "every channel weight's start", above=0.0)
    inversion_penalty: float = setting(5.0, "gamma: weight of the norm of w in the inversion stage", at_least=0.0)
    target_penalty: float = setting(2.0, "delta: weight of the norm of w in the class stage", at_least=0.0)
    suppress_weight: float = setting(1.0, "lambda: weight of the class score on the removed region", at_least=0.0)
    background: str = setting("blur", "what the mask removes shows: a Gaussian blur or uniform noise",
                              choices=("blur", "noise"))
    blur_sigma: float | None = setting(None, "blur sigma in px (None: the reference's 11 px at 224 px)", above=0.0)
    class_score: str = setting("log_probability", "s_c: the class score the second stage moves",
                               choices=("probability", "log_probability", "logit"))
    channel_weights: str = setting("rectified", "non_negative (clamped at 0), signed, or rectified (signed, the sum "
                                                "through a leaky ReLU)", choices=("non_negative", "signed", "rectified"))
    penalty_norm: int = setting(2, "the norm of w in both penalties: 1 (L1) or 2 (squared L2)", choices=(1, 2))
    inversion_loss: str = setting("relative", "squared feature distance, divided by the feature's own (relative) "
                                              "or not (squared)", choices=("relative", "squared"))
    mask_normalisation: str = setting("over_max", "(m - min) / max, or (m - min) / (max - min)",
                                      choices=("over_max", "min_max"))
    mask_upsampling: str = setting("half_pixel", "bilinear upsampling of the mask: half-pixel centres or aligned "
                                                 "corners", choices=("half_pixel", "align_corners"))

    def check(self):
        if self.inversion_steps > self.steps:
            raise ValueError(f"inversion_steps ({self.inversion_steps}) must not exceed steps ({self.steps})")

    def resolve(self, context):
        side = context.input_shape[0]
        return self.replace(inversion_layer=self.inversion_layer or self.layer,
                            blur_sigma=self.blur_sigma or 11.0 * side / 224)


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
                 normalisation: str = "over_max", rectify: bool = False, upsampling: str = "half_pixel") -> jax.Array:
    """``normalise(up(sum_k w_k A_k))``: a ``[H, W]`` mask in [0, 1] from a feature ``[h, w, K]`` and weights ``[K]``."""
    low_res = jnp.einsum("hwk,k->hw", activation, weights)
    if rectify:
        low_res = jax.nn.leaky_relu(low_res)
    if upsampling == "align_corners":
        upsampled = resize_align_corners(low_res, size)
    else:
        upsampled = jax.image.resize(low_res, size, method="bilinear")
    return normalise_mask(upsampled, normalisation)


def relative_feature_loss(feature: jax.Array, reference: jax.Array) -> jax.Array:
    """``||feature - reference||^2 / ||reference||^2``: the perceptual loss of feature inversion."""
    return jnp.sum((feature - reference) ** 2) / jnp.maximum(jnp.sum(reference ** 2), 1e-12)


def build(settings: GfiSettings) -> Explainer:
    """Guided feature inversion with ``settings``."""
    s = settings
    signed = s.channel_weights != "non_negative"
    rectify = s.channel_weights == "rectified"
    schedule = optax.exponential_decay(s.learning_rate, transition_steps=s.decay_every, decay_rate=0.5, staircase=True)
    optimiser = optax.adam(schedule)
    norm = (lambda w: jnp.sum(jnp.abs(w))) if s.penalty_norm == 1 else (lambda w: jnp.sum(w ** 2))
    inversion_layer = s.inversion_layer or s.layer
    scores_of = {"probability": lambda m, p, x: m.probabilities(p, x), "logit": lambda m, p, x: m.logits(p, x),
                 "log_probability": lambda m, p, x: m.log_probabilities(p, x)}[s.class_score]

    def explain_one(state, params, image, label, key, activation, target_feature):
        height, width = image.shape[:2]
        activation = jax.lax.stop_gradient(activation)
        if s.background == "blur":
            sigma = s.blur_sigma or 11.0 * height / 224
            substrate = gaussian_blur(image, 2 * int(3 * sigma) + 1, sigma, fill=state.model.zero_pixel)
        else:
            substrate = jax.random.uniform(key, image.shape)
        mask_of = lambda w: channel_mask(w, activation, (height, width), s.mask_normalisation, rectify,
                                         s.mask_upsampling)

        def inversion_loss(weights):
            kept = blend(image, substrate, mask_of(weights))
            feature = state.model.apply_fn(params, kept[None])[1][inversion_layer][0]
            distance = jnp.sum((feature - target_feature) ** 2)
            if s.inversion_loss == "relative":
                distance = relative_feature_loss(feature, target_feature)
            return distance + s.inversion_penalty * norm(weights)

        def target_loss(weights):
            mask = mask_of(weights)
            pair = jnp.stack([blend(image, substrate, mask), blend(substrate, image, mask)])  # kept, removed
            scores = scores_of(state.model, params, pair)[:, label]
            return -scores[0] + s.suppress_weight * scores[1] + s.target_penalty * norm(weights)

        project = None if signed else (lambda w: jnp.maximum(w, 0.0))
        weights = jnp.full((activation.shape[-1],), s.initial_weight, jnp.float32)
        weights, opt_state = minimise(inversion_loss, weights, optimiser, s.inversion_steps, project=project)
        weights, _ = minimise(target_loss, weights, optimiser, s.steps - s.inversion_steps, opt_state=opt_state,
                              project=project)
        return mask_of(weights)

    def explain(state, params, images, labels, *, key):
        features = state.model.apply_fn(params, images)[1]
        activations = require_feature(features, s.layer)
        targets = jax.lax.stop_gradient(require_feature(features, inversion_layer))
        one = lambda *example: explain_one(state, params, *example)
        return each_image(one, images, labels, key, activations, targets, sequential=False)

    return stateless(settings, explain)


REFERENCE = GfiSettings(class_score="probability", channel_weights="non_negative", mask_upsampling="align_corners")

METHOD = Method("gfi", build, {
    "default": Preset(GfiSettings(), "jaxplain's tuned default; differences from the paper: docs/methods/gfi.md"),
    "paper": Preset(
        GfiSettings(background="noise", penalty_norm=1, inversion_loss="squared", class_score="probability",
                    channel_weights="non_negative", mask_upsampling="align_corners"),
        "Du et al., KDD 2018 (seed 002): eq. (1) noise background p, eq. (2) ||f^l(x~) - f^l(x)||^2 + gamma "
        "||w||_1, eq. (3) -f_c + lambda f_c(background) + delta ||w||_1, eq. (4) m = sum_i w_i f_i^l1",
        open={"layer": "l and l1 are not named for this teacher; the last convolution's output ('head'), the "
                       "analogue of VGG-19 pool5 that the authors' README names for both",
              "steps": "not stated; the authors' code's 80", "inversion_steps": "not stated; the authors' code's 11",
              "learning_rate": "not stated; the authors' code's Adam 1e-2", "decay_every": "the authors' code's 10",
              "initial_weight": "the authors' code's 0.1", "inversion_penalty": "gamma not stated; the code's 5",
              "target_penalty": "delta not stated; the code's 2", "suppress_weight": "lambda not stated; the code's 1",
              "class_score": "f_c^L is 'the target neuron in the output layer'; the code's softmax probability",
              "channel_weights": "eq. (4) leaves the sign open; the code clamps at 0",
              "mask_normalisation": "not stated; the code's (m - min) / max",
              "mask_upsampling": "not stated; the code's UpsamplingBilinear2d (aligned corners)"}),
    "reference": Preset(REFERENCE, "the authors' code, mndu/guided-feature-inversion main.py: Adam 1e-2 halved every "
                                   "10 steps, 80 steps, 11 inversion steps, weights from 0.1 clamped at 0, relative "
                                   "perceptual loss + 5 ||w||^2, then -p_c + p_c(removed) + 2 ||w||^2, blur radius 11",
                        differs=("the authors blur the full-size photo (PIL radius 11) before resizing to 224 px; "
                                 "jaxplain blurs the 224-px crop with sigma 11 px",)),
}, "guided feature inversion: a mask of the teacher's own channels, fitted per image (white-box)")
