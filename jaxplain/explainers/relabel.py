"""Re-label distillation (Hua, Ge & Zhang; seeds 000/001), as module-level pure functions of frozen settings.

For each image ``x`` explained for class ``c``:

1. **Neighbourhood** (:func:`synthesise`). Encode ``x`` with a VAE to ``mu``, draw ``num_samples`` latents
   ``z = mu + s * eps`` and decode them. The teacher sees the decoded image itself (``neighbourhood="decoded"``,
   the paper), the photo plus the VAE's change (``"residual"``), or the decoding through random windows in the
   photo (``"spliced"``: RISE's masks, each cell open with probability ``splice_share``). With ``adapt_noise`` a
   probe of ``probe_samples`` latents per scale picks the noise scale (and window share) whose relabels are
   closest to half *same*, half *shifted* (:func:`neighbourhood_for`).
2. **Relabelling** (:func:`relabel_samples`). *Same* when ``c`` keeps its rank among the teacher's classes (for
   the predicted class: the top-1 is unchanged, the paper's rule); the soft label is the temperature-softened
   probability of ``c``.
3. **Linear student** (:func:`fit_student`). A two-class linear model on the student grid (``student_input``:
   the synthetic image, its change from ``x``, or the size of that change) fitted on
   ``soft_weight * T^2 * KL + hard_weight * CE + l2 ||w||^2`` over the first ``1 - holdout`` of the samples; its
   balanced accuracy on the rest is its *fidelity*.
4. **Saliency** (:func:`attribute`). The weight difference ``w_same - w_shifted`` mapped to the image plane:
   ``sum_c |w_c|`` (``"magnitude"``, the paper's reading), or one of the signed maps (``"change"``, ``"input"``,
   ``"margin"``), bilinearly upsampled from the student grid.

:func:`explain_image` composes the steps for one image; the explainer maps it over a batch (``lax.map``),
``scan``s over sample chunks of ``chunk`` (peak memory: ``chunk`` teacher inputs) and over student steps.
What each setting does and how the tuned default differs from the paper, with measured effects, is in
``docs/methods/relabel.md``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxplain.explainers.base import Explainer, ModelHandle, State, each_image, minimise
from jaxplain.explainers.registry import Method
from jaxplain.explainers.rise import random_masks
from jaxplain.explainers.settings import Preset, Settings, setting
from jaxplain.imageops import blend
from jaxplain.nets.vae import VaeHandle, decode, encode
from jaxplain.zoo import load_vae

SHIFTED, SAME = 0, 1
ATTRIBUTIONS = ("auto", "input", "magnitude", "margin", "change")
STUDENT_INPUTS = ("auto", "image", "change", "size")  # the sample itself, its change from the photo, or its size
NEIGHBOURHOODS = ("residual", "decoded", "spliced")
OPTIMISERS = {"momentum": 1.0, "adam": 0.01}  # student optimiser -> default learning rate
DEGENERATE_SHARE = 0.02  # a minority relabel below this share of the samples leaves the student little to learn

__all__ = ["RelabelSettings", "VaeHandle", "attribute", "attribution_for", "balanced_accuracy", "choose_probe",
           "default_vae_name", "explain_image", "fit_student", "image_sampler", "neighbourhood_for",
           "probe_settings", "relabel_samples", "resolve", "student_features",
           "student_grid", "student_input_for", "student_resolution_for", "synthesise"]


@dataclasses.dataclass(frozen=True)
class RelabelSettings(Settings):
    method = "relabel"
    num_samples: int = setting(4000, "latents drawn (teacher queries per map, besides the probe)", count=True)
    noise_scale: float = setting(1.0, "standard deviation of the latent noise (the probe's scales multiply it)",
                                 above=0.0)
    adapt_noise: bool = setting(True, "probe noise scales (and window shares) for a balanced neighbourhood")
    probe_samples: int = setting(24, "latents per probed setting", count=True)
    probe_scales: tuple[float, ...] = setting((0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0), "noise scales probed "
                                              "(times noise_scale)", above=0.0)
    probe_shares: tuple[float, ...] = setting((), "window shares probed at the smallest scale (spliced only)",
                                              above=0.0, at_most=1.0)
    neighbourhood: str = setting("spliced", "what the teacher sees: the decoding (the paper), the photo plus the "
                                            "VAE's change, or the decoding in random windows of the photo",
                                 choices=NEIGHBOURHOODS)
    splice_grid: int = setting(7, "cells per side of the spliced windows' masks", count=True)
    splice_share: float = setting(0.5, "probability that a window cell shows the decoding", above=0.0, at_most=1.0)
    chunk: int = setting(100, "samples per teacher call (sets peak memory)", count=True)
    student_resolution: int | None = setting(None, "student grid's shorter side in px (None: chosen for the VAE "
                                                   "and the map, see student_resolution_for)", count=True)
    student_steps: int = setting(200, "the student's optimiser steps", count=True)
    learning_rate: float | None = setting(None, "the student's step size (None: 1 for momentum, 0.01 for adam)",
                                          above=0.0)
    soft_weight: float = setting(1.0, "weight of the soft (distillation) loss", at_least=0.0)
    hard_weight: float = setting(0.0, "weight of the hard (relabel) loss", at_least=0.0)
    temperature: float = setting(1.0, "distillation temperature T", above=0.0)
    l2: float = setting(1e-4, "weight of the L2 penalty on the student's weights", at_least=0.0)
    holdout: float = setting(0.2, "share of the samples kept out of the fit to measure its fidelity", at_least=0.0,
                             below=1.0)
    attribution: str = setting("auto", "how weights become a map: magnitude (the paper), change, input, margin; "
                                       "auto: change when spliced, else magnitude", choices=ATTRIBUTIONS)
    student_optimiser: str = setting("momentum", "momentum gradient descent on scaled features, or adam",
                                     choices=tuple(OPTIMISERS))
    student_input: str = setting("auto", "what the student reads: the synthetic image, its change from the photo, "
                                         "or the size of that change; auto: see student_input_for",
                                 choices=STUDENT_INPUTS)
    vae: str | VaeHandle | None = setting(None, "a shipped VAE's name or folder (None: the one matched to the "
                                                "teacher's input), or a loaded VaeHandle")

    def check(self):
        if self.num_samples % self.chunk:
            raise ValueError(f"num_samples ({self.num_samples}) must be a multiple of chunk ({self.chunk})")
        if self.soft_weight + self.hard_weight <= 0:
            raise ValueError(f"soft_weight ({self.soft_weight}) and hard_weight ({self.hard_weight}) leave the student "
                             "nothing to fit; make at least one positive")
        if not 1 <= self.train_count <= self.num_samples:
            raise ValueError(f"holdout {self.holdout} of {self.num_samples} samples leaves {self.train_count} to "
                             "train on; at least one is needed")
        if self.probe_shares and self.neighbourhood != "spliced":
            raise ValueError(f"probe_shares applies to the spliced neighbourhood only, not {self.neighbourhood!r}")

    @property
    def train_count(self) -> int:
        """Samples the student trains on; the rest measure its fidelity."""
        return int(round(self.num_samples * (1.0 - self.holdout)))

    def resolve(self, context):
        vae = self.vae if self.vae is not None else default_vae_name(context.input_shape)
        resolution = vae.module.resolution if isinstance(vae, VaeHandle) else vae_resolution(vae)
        concrete = resolve(self, resolution, *context.input_shape[:2])
        return concrete.replace(vae=vae if isinstance(vae, VaeHandle) else str(vae),
                                learning_rate=learning_rate_for(concrete))


def vae_resolution(name_or_path) -> int:
    """The square resolution a shipped (or saved) VAE decodes at, read from its config without its weights."""
    from jaxplain.artefacts import artefact_config, artefact_dir

    return int(artefact_config(artefact_dir(name_or_path))["resolution"])


def default_vae_name(input_shape) -> str:
    """The shipped VAE matched to a teacher's input ``(H, W, C)``: 32 px -> ``vae_cifar10``, else ``vae_imagenet64``."""
    return "vae_cifar10" if input_shape[0] <= 32 else "vae_imagenet64"


def resize(images, size: tuple[int, int]):
    """Antialiased bilinear resize of ``[n, H, W, C]`` images to ``size = (h, w)``."""
    return jax.image.resize(images, (images.shape[0], *size, images.shape[-1]), "linear", antialias=True)


def student_grid(config: RelabelSettings, height: int, width: int) -> tuple[int, int]:
    """The student's pixel grid: ``student_resolution`` on the shorter side (never finer than the image),
    the longer side in proportion, so a non-square image keeps its aspect."""
    if config.student_resolution is None:
        raise ValueError("student_resolution None depends on the VAE and the map: resolve the config first")
    short = min(config.student_resolution, height, width)
    if height <= width:
        return short, max(1, round(short * width / height))
    return max(1, round(short * height / width)), short


def synthesise(config: RelabelSettings, image, decoded, base, key, share=None):
    """Synthetic teacher inputs ``[n, H, W, 3]`` from decoded latents ``[n, r, r, 3]`` (``base``: D(mu));
    ``key`` draws the splice windows of the spliced neighbourhood, each open with probability ``share``
    (default ``config.splice_share``)."""
    height, width = image.shape[:2]
    count = decoded.shape[0]
    if config.neighbourhood == "residual":
        change = jax.image.resize(decoded - base, (count, height, width, 3), "linear")
        return jnp.clip(image[None] + change, 0.0, 1.0)
    decoded = jax.image.resize(decoded, (count, height, width, 3), "linear")
    if config.neighbourhood == "decoded":
        return decoded
    share = config.splice_share if share is None else share
    windows = random_masks(key, count, height, width, config.splice_grid, share)
    return blend(decoded, image[None], windows)


def student_features(synthetic, image, grid: tuple[int, int], student_input: str = "change"):
    """What the student sees, on the student grid and flattened ``[n, D]``: each sample itself (``"image"``, the
    paper's direct map from input to prediction), its change from ``image`` (``"change"``), or the absolute value
    of that change (``"size"``: how much each pixel was replaced, not in which direction)."""
    if student_input not in ("image", "change", "size"):
        raise ValueError(f'student_input {student_input!r}: resolve "auto" with student_input_for first')
    samples = resize(synthetic, grid).reshape(synthetic.shape[0], -1)
    if student_input == "image":
        return samples
    change = samples - resize(image[None], grid).reshape(1, -1)
    return jnp.abs(change) if student_input == "size" else change


def relabel_samples(logits, label, reference_logits, temperature: float):
    """``(same [n] bool, soft [n])`` for samples' teacher ``logits`` ``[n, K]``.

    *Same* when class ``label`` ranks at least as high among the classes as in ``reference_logits``
    (the original image's): it stays ahead of its *rival*, the other class just below its original
    rank. For the original top-1 (rank 0) that is the paper's rule, the top-1 is unchanged, and the
    soft label is the paper's temperature-softened probability of ``label``. For a lower-ranked class
    that probability is near zero on every sample and would drown the relabels, so the soft label is
    the softened probability of ``label`` winning against its rival, ``sigmoid((z_label - z_rival) / T)``.
    """
    reference_rank = jnp.sum(reference_logits > reference_logits[label])
    others = logits.at[:, label].set(-jnp.inf)
    rival = -jnp.sort(-others, axis=-1)[:, reference_rank]  # the (rank + 1)-th strongest other class
    target = logits[:, label]
    softmax = jax.nn.softmax(logits / temperature, axis=-1)[:, label]
    pairwise = jax.nn.sigmoid((target - rival) / temperature)
    return target >= rival, jnp.where(reference_rank == 0, softmax, pairwise)


def choose_probe(fractions, strengths):
    """Index of the probed setting whose *same* fraction is closest to one half. Ties (typically: every
    setting keeps the class, or none does) go to the strongest change (``strengths``: noise scale x
    window share) when the class is kept and the weakest when it is lost: the one nearest to a
    balanced neighbourhood."""
    tiebreak = jnp.where(fractions >= 0.5, -strengths, strengths)
    return jnp.lexsort((tiebreak, jnp.abs(fractions - 0.5)))[0]


def probe_settings(config: RelabelSettings):
    """``(scales [P], shares [P])`` the probe tries: each of ``probe_scales`` x ``noise_scale`` at
    ``splice_share``, then each of ``probe_shares`` at the smallest of those scales."""
    scales = [config.noise_scale * s for s in config.probe_scales]
    smallest = min(scales)
    return (jnp.asarray(scales + [smallest] * len(config.probe_shares), jnp.float32),
            jnp.asarray([config.splice_share] * len(scales) + list(config.probe_shares), jnp.float32))


def balanced_accuracy(predicted, truth):
    """Mean recall over the classes present in boolean ``truth``: plain accuracy would credit a student
    that predicts the majority relabel everywhere."""
    recalls, present = [], []
    for members in (truth, ~truth):
        count = members.sum()
        recalls.append(jnp.sum((predicted == truth) & members) / jnp.maximum(count, 1))
        present.append(count > 0)
    present = jnp.asarray(present, jnp.float32)
    return jnp.sum(jnp.asarray(recalls) * present) / jnp.maximum(present.sum(), 1.0)


def learning_rate_for(config: RelabelSettings) -> float:
    """The student's step size: ``learning_rate``, or its optimiser's own (:data:`OPTIMISERS`) when None."""
    return OPTIMISERS[config.student_optimiser] if config.learning_rate is None else config.learning_rate


def fit_student(config: RelabelSettings, features, same, soft):
    """Fits the linear student; returns the weight difference ``w_same - w_shifted`` ``[D]`` and its
    balanced accuracy on the training and held-out samples."""
    hard = same.astype(jnp.int32)
    teacher = jnp.stack([1.0 - soft, soft], axis=-1)
    rate = learning_rate_for(config)
    if config.student_optimiser == "adam":
        optimiser = optax.adam(rate)
    else:  # one global scale keeps the pixels' relative weights; mean squared row norm 1 bounds the curvature
        features = features / jnp.sqrt(jnp.mean(jnp.sum(features ** 2, -1)) + 1e-12)
        optimiser = optax.sgd(rate, momentum=0.9)
    params = {"w": jnp.zeros((features.shape[1], 2)), "b": jnp.zeros((2,))}
    n, t = config.train_count, config.temperature
    x_train, t_train, y_train = features[:n], teacher[:n], hard[:n]

    def loss(p):
        logits = x_train @ p["w"] + p["b"]
        soft_loss = optax.softmax_cross_entropy(logits / t, t_train).mean() * t ** 2
        hard_loss = optax.softmax_cross_entropy_with_integer_labels(logits, y_train).mean()
        return config.soft_weight * soft_loss + config.hard_weight * hard_loss + config.l2 * jnp.sum(p["w"] ** 2)

    params, _ = minimise(loss, params, optimiser, config.student_steps)
    predicted = jnp.argmax(features @ params["w"] + params["b"], -1) == SAME
    weights = params["w"][:, SAME] - params["w"][:, SHIFTED]
    held_out = balanced_accuracy(predicted[n:], same[n:]) if n < len(same) else jnp.nan  # no held-out share: unknown
    return weights, balanced_accuracy(predicted[:n], same[:n]), held_out


def attribution_for(config: RelabelSettings) -> str:
    """The map ``config.attribution`` names; ``"auto"`` is the signed ``"change"`` map in a spliced
    neighbourhood (it marks the evidence for the class, not against it; chosen on the development photos
    and grids of CIFAR-10 and imagenet-dev, results/README.md), and the paper's ``"magnitude"`` otherwise."""
    if config.attribution != "auto":
        return config.attribution
    return "change" if config.neighbourhood == "spliced" else "magnitude"


def student_input_for(config: RelabelSettings, attribution: str, vae_resolution: int, height: int, width: int) -> str:
    """The student's input ``config.student_input`` names; ``"auto"`` is ``"size"`` (each pixel's absolute
    change) for the ``"change"`` map of a spliced neighbourhood whose decodings are upsampled into the image
    (the 64 px VAE of 224 px photos: there the change's sign is noise and its size the signal), and the
    signed ``"change"`` otherwise (each chosen on its development split, results/README.md)."""
    if config.student_input != "auto":
        return config.student_input
    upsampled = config.neighbourhood == "spliced" and not splices_at_full_resolution(config, vae_resolution,
                                                                                      height, width)
    return "size" if upsampled and attribution == "change" else "change"


def splices_at_full_resolution(config: RelabelSettings, vae_resolution: int, height: int, width: int) -> bool:
    """Whether the neighbourhood is spliced from VAE decodings made at the image's own resolution (CIFAR-10's
    32 px VAE), rather than upsampled ones (the 64 px VAE of 224 px photos) or none at all."""
    return config.neighbourhood == "spliced" and vae_resolution >= min(height, width)


def student_resolution_for(config: RelabelSettings, attribution: str, vae_resolution: int, height: int,
                           width: int) -> int:
    """The student grid ``config.student_resolution`` names; ``None`` is the image's shorter side for the
    ``"change"`` map in a spliced neighbourhood whose VAE decodes at the image's resolution (the map then
    reads the VAE's change pixel by pixel), and 16 px otherwise (chosen on the development splits)."""
    if config.student_resolution is not None:
        return config.student_resolution
    native = splices_at_full_resolution(config, vae_resolution, height, width)
    return min(height, width) if native and attribution == "change" else 16


def resolve(config: RelabelSettings, vae_resolution: int, height: int, width: int) -> RelabelSettings:
    """``config`` with its VAE- and image-dependent defaults (``attribution`` and ``student_input``
    ``"auto"``, ``student_resolution=None``) made concrete for an image of ``height`` x ``width``."""
    attribution = attribution_for(config)
    resolution = student_resolution_for(config, attribution, vae_resolution, height, width)
    student_input = student_input_for(config, attribution, vae_resolution, height, width)
    return dataclasses.replace(config, attribution=attribution, student_resolution=resolution,
                               student_input=student_input)


def attribute(config: RelabelSettings, weights, image, features, same, zero_pixel):
    """The saliency map ``[H, W]`` of the student's weights ``[D]`` (``config.attribution``, resolved
    by :func:`attribution_for` first), upsampled from the student grid."""
    if config.attribution == "auto":
        raise ValueError('attribution "auto" depends on the VAE: resolve it with attribution_for first')
    grid = student_grid(config, *image.shape[:2])
    shape = (*grid, image.shape[-1])
    if config.attribution == "magnitude":
        saliency = jnp.abs(weights).reshape(shape).sum(-1)
    elif config.attribution == "input":  # the student's loss of "same" evidence if the pixel were deleted
        presence = resize(image[None], grid)[0] - jnp.asarray(zero_pixel)
        saliency = (weights.reshape(shape) * presence).sum(-1)
    elif config.attribution == "margin":  # each pixel's share of the student's logit gap between the classes
        saliency = (weights * class_mean_gap(features, same)).reshape(shape).sum(-1)
    else:  # "change": the "same" evidence the neighbourhood's average change of each pixel takes away
        saliency = -(weights * features.mean(0)).reshape(shape).sum(-1)
    return jax.image.resize(saliency, image.shape[:2], "linear")


def class_mean_gap(features, same):
    """Mean feature of *same* samples minus mean of *shifted* ones (zero if either class is empty)."""
    weight_same = same / jnp.maximum(same.sum(), 1)
    weight_shifted = ~same / jnp.maximum((~same).sum(), 1)
    gap = (weight_same - weight_shifted) @ features
    return jnp.where((same.sum() > 0) & ((~same).sum() > 0), gap, 0.0)


def sample_neighbourhood(config: RelabelSettings, model: ModelHandle, params, vae: VaeHandle, image, label,
                         reference_logits, mu, base, scale, share, key, count: int):
    """``count`` synthetic images around ``mu`` at noise ``scale`` (spliced: windows open with probability
    ``share``), with their relabels and soft labels."""
    eps = jax.random.normal(key, (count, mu.shape[-1]))
    decoded = decode(vae.module, vae.params, mu + scale * eps)
    synthetic = synthesise(config, image, decoded, base, jax.random.fold_in(key, 1), share)
    logits = model.logits(params, synthetic).astype(jnp.float32)
    same, soft = relabel_samples(logits, label, reference_logits, config.temperature)
    return synthetic, same, soft


def image_sampler(config: RelabelSettings, model: ModelHandle, params, vae: VaeHandle, image, label):
    """``sample(scale, share, key, count) -> (synthetic, same, soft)``: the neighbourhood of one image."""
    size = vae.module.resolution
    mu = encode(vae.module, vae.params, resize(image[None], (size, size)))[0][0]
    base = decode(vae.module, vae.params, mu[None])[0]
    reference_logits = model.logits(params, image[None])[0].astype(jnp.float32)
    return lambda scale, share, key, count: sample_neighbourhood(config, model, params, vae, image, label,
                                                                 reference_logits, mu, base, scale, share, key, count)


def neighbourhood_for(config: RelabelSettings, sample, key):
    """``(noise scale, splice share)`` to sample at: the configured ones, or with ``adapt_noise`` the probe's choice."""
    if not config.adapt_noise:
        return jnp.asarray(config.noise_scale, jnp.float32), jnp.asarray(config.splice_share, jnp.float32)
    scales, shares = probe_settings(config)
    keys = jax.random.split(key, len(config.probe_scales))
    if config.probe_shares:  # their own keys: the scale probes draw what they drew without them
        keys = jnp.concatenate([keys, jax.random.split(jax.random.fold_in(key, 1), len(config.probe_shares))])
    probe = lambda setting: sample(*setting, config.probe_samples)[1].mean()
    fractions = jax.lax.map(probe, (scales, shares, keys))  # one setting at a time: bounded memory
    chosen = choose_probe(fractions, scales * shares)
    return scales[chosen], shares[chosen]


def explain_image(config: RelabelSettings, model: ModelHandle, params, vae: VaeHandle, image, label, key):
    """``(saliency [H, W], diagnostics)`` for one image ``[H, W, 3]`` and class ``label``."""
    config = resolve(config, vae.module.resolution, *image.shape[:2])
    sample = image_sampler(config, model, params, vae, image, label)
    probe_key, sample_key = jax.random.split(key)
    scale, share = neighbourhood_for(config, sample, probe_key)
    grid = student_grid(config, *image.shape[:2])

    def draw(_, index):
        synthetic, same, soft = sample(scale, share, jax.random.fold_in(sample_key, index), config.chunk)
        return None, (student_features(synthetic, image, grid, config.student_input), same, soft)

    _, (features, same, soft) = jax.lax.scan(draw, None, jnp.arange(config.num_samples // config.chunk))
    features = features.reshape(config.num_samples, -1)
    same, soft = same.reshape(-1), soft.reshape(-1)
    weights, train_fidelity, fidelity = fit_student(config, features, same, soft)
    saliency = attribute(config, weights, image, features, same, model.zero_pixel)
    same_fraction = same.mean()
    diagnostics = {"noise_scale": scale, "splice_share": share, "same_fraction": same_fraction, "fidelity": fidelity,
                   "train_fidelity": train_fidelity,
                   "degenerate": (jnp.minimum(same_fraction, 1.0 - same_fraction) < DEGENERATE_SHARE).astype(jnp.float32)}
    return saliency, diagnostics


def build(settings: RelabelSettings) -> Explainer:
    """Re-label distillation with a VAE neighbourhood of ``num_samples`` latents and a linear student."""

    def init(key, model, sample=None) -> State:
        del key, sample
        vae = settings.vae
        handle = vae if isinstance(vae, VaeHandle) else load_vae(vae or default_vae_name(model.input_shape))
        return State(ModelHandle.of(model), handle)

    def explain_with_details(state, params, images, labels, *, key):
        one = lambda image, label, k: explain_image(settings, state.model, params, state.learned, image, label, k)
        return each_image(one, images, labels, key)

    def explain(state, params, images, labels, *, key):
        return explain_with_details(state, params, images, labels, key=key)[0]

    return Explainer("relabel", init, explain, details=explain_with_details, settings=settings)


PAPER = RelabelSettings(num_samples=1000, adapt_noise=False, noise_scale=1.0, neighbourhood="decoded",
                        soft_weight=0.5, hard_weight=0.5, l2=0.0, holdout=0.0, attribution="magnitude",
                        student_input="image", student_resolution=224)

METHOD = Method("relabel", build, {
    "default": Preset(RelabelSettings(), "jaxplain's tuned default; differences from the paper: "
                                         "docs/methods/relabel.md"),
    "paper": Preset(
        PAPER, "Hua, Ge & Zhang, arXiv 2409.13137 (seeds 000/001): 1000 synthetic images per input from a VAE's "
               "perturbed latent, relabelled by whether the teacher's top-1 shifts, a two-class linear student "
               "mapping the image to the relabels with a soft (distillation) and a hard loss, the saliency the "
               "student's weights mapped back to the pixels",
        open={"noise_scale": "the noise's scale is not stated: the prior's, 1", "soft_weight": "the loss weights "
              "lambda1, lambda2 are not stated: equal", "hard_weight": "not stated: equal to soft_weight",
              "temperature": "not stated: 1", "student_resolution": "the student maps the image directly: the "
              "teacher's input size (224 px; capped at the input's side)", "student_steps": "not stated: 200",
              "student_optimiser": "not stated: jaxplain's momentum descent", "learning_rate": "not stated: 1 "
              "(momentum descent on unit-scaled features)", "attribution": "'the weights mark the location of "
              "the important features': the weights' magnitude summed over the colour channels"},
        differs=("the paper's VAE has a 500-D latent trained on ImageNet; the shipped VAEs (vae_imagenet64: 512-D "
                 "at 64 px; vae_cifar10: 256-D at 32 px) are trained on the data at hand, and the ImageNet teacher "
                 "keeps its class on 0.4 % of the 64-px VAE's reconstructions, so many decoded neighbourhoods are "
                 "degenerate (reported per image as the 'degenerate' diagnostic)",)),
}, "re-label distillation: a linear student of VAE-perturbed neighbours relabelled by the teacher (black-box)")
