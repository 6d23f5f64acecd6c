"""Re-label distillation (Hua, Ge & Zhang; seeds 000/001), as module-level pure functions of a frozen config.

For each image ``x`` explained for class ``c``:

1. **Neighbourhood** (:func:`synthesise`). Encode ``x`` with a VAE (at the VAE's square resolution)
   to ``mu`` and draw latents ``z = mu + s * eps`` (``eps ~ N(0, I)``, ``num_samples`` of them, paper:
   1000; default 4000, RISE's query count, which won on both development splits: results/README.md).
   Decoding gives the synthetic images. With ``neighbourhood="decoded"`` the
   teacher sees the decoded image itself (resized to the input), as in the paper; with ``"residual"`` it sees
   ``x + up(D(z) - D(mu))``: the VAE's semantic change added to the full-resolution photo, so the
   neighbourhood is centred on ``x`` itself even where the VAE cannot reproduce its detail. With
   ``"spliced"`` (default) it sees the decoded image through random windows in the photo: ``x``
   outside, ``D(z)`` inside a smooth mask of ``splice_grid`` x ``splice_grid`` cells, each open with
   probability ``splice_share`` (the masks of RISE); a share of 1 is the paper's decoded
   neighbourhood. Where the VAE is too blurred for the teacher to keep its class on ``D(z)``, the
   windows still leave enough of the photo that about half the samples keep it, and which windows
   lose it is what the student learns (spliced beat residual on the development split; results/README.md).
   (A non-square image is squashed into the VAE's square and the change stretched
   back, so every change lands on the pixels it was made for.)
2. **Relabelling** (:func:`relabel_samples`). The teacher labels each sample *same* or *shifted*:
   *same* when ``c`` ranks at least as high among the teacher's classes as it does on ``x``. For the
   predicted class that is the paper's rule (the top-1 is still ``c``), with the temperature-softened
   probability of ``c`` as the soft label; for another class (``--label``) it asks whether the sample
   keeps ``c`` where ``x`` had it, rather than calling nearly every sample shifted, and the soft label
   is the softened probability of ``c`` beating the class just below it. When the labels are
   nearly all one kind the two-class problem is degenerate: with ``adapt_noise`` (default) a probe of
   ``probe_samples`` latents at each of ``probe_scales`` x ``noise_scale`` (and, in the spliced
   neighbourhood, at each window share of ``probe_shares`` with the smallest of those scales) picks the
   setting whose *same* fraction is closest to one half (:func:`probe_settings`, :func:`choose_probe`). A neighbourhood whose minority relabel
   holds under ``DEGENERATE_SHARE`` of the samples is reported as ``degenerate`` in the diagnostics.
3. **Linear student** (:func:`fit_student`). A two-class linear model on the synthetic images
   (downsampled to the student grid, :func:`student_grid`, minus the equally downsampled ``x``; with
   ``student_input="size"``, the absolute value of that change, :func:`student_features`) is
   trained on ``soft_weight * T^2 * KL(teacher_T || student_T) + hard_weight * CE(relabel, student)``
   plus an L2 penalty, on the first ``1 - holdout`` of the samples; its *fidelity* is its balanced
   accuracy on the relabels of the held-out rest. The paper weighs both terms; the default keeps only
   the soft one (``soft_weight=1, hard_weight=0``; ``0.5, 0.5`` is the paper's objective), which was
   better on ImageNet's development split and level on CIFAR-10's (results/README.md): the softened
   probability says how far a sample moved towards losing the class, the hard relabel only which side
   it landed on. The optimiser is gradient descent with momentum on features scaled to unit mean
   squared norm (default): it keeps the weights proportional to how strongly each pixel's change
   predicts the relabel. Adam (``student_optimiser="adam"``) normalises
   every coordinate's step, so pixels with faint evidence get weights as large as decisive ones; its
   maps were measurably less faithful (results/README.md).
4. **Saliency** (:func:`attribute`). The student's weight difference ``w = w_same - w_shifted`` (one
   weight per pixel and channel) is mapped back to the image plane. ``attribution="magnitude"``
   gives ``sum_c |w_c|``, the paper's reading: how strongly a change of the pixel moves the
   decision, whatever its direction. ``"input"`` gives ``sum_c w_c (x_c - fill_c)``, the student's own
   prediction of the *same* evidence lost if the pixel were deleted (set to the mean colour);
   ``"margin"`` gives ``sum_c w_c (mean_same - mean_shifted)_c``, each pixel's share of the student's
   logit gap between the two relabelled classes; ``"change"`` gives ``-sum_c w_c mean_c``, the *same*
   evidence the neighbourhood's average change of the pixel takes away (in the spliced neighbourhood
   that change is half the step from the photo to the VAE's decoding, so this reads like RISE: how much
   of the class is lost where the photo is replaced). The default, ``"auto"`` (:func:`attribution_for`),
   is ``"change"`` in a spliced neighbourhood and ``"magnitude"`` (the paper's) in the others. The
   magnitudes mark evidence *against* the class as brightly as evidence for it: on 2x2 grids of four
   classes they lit the other cells, and the signed change map raised the grid pointing game on
   ImageNet's development grids from 0.42 to 0.68 (results/README.md). Where the 64 px VAE's decodings
   are upsampled into a 224 px photo, the change's *sign* at a pixel varies from sample to sample while
   its *size* (whether the window replaced the pixel) is what predicts the relabel, so there the student
   reads the size (``student_input="auto"`` -> ``"size"``, :func:`student_input_for`; level with the
   magnitudes on development photos, where the signed input lost 0.036 ± 0.013); at the VAE's own
   resolution (CIFAR-10) it reads the signed change, as chosen on that development split.
   The map is bilinearly upsampled from the student grid (:func:`student_grid`; ``student_resolution``
   px on its shorter side). ``None`` (default, :func:`student_resolution_for`) is the image's own
   resolution for the change map of a VAE that decodes at it (CIFAR-10: 32 px, +0.076 ± 0.017 over 16 px
   on its development split), and 16 px otherwise: the scale of the smallest change the 64 px VAE's 4x4
   latent grid makes in a 224 px photo, where finer students fit noise with ~1000 samples.
   :func:`resolve` makes the ``"auto"`` and ``None`` defaults concrete.

:func:`explain_image` composes the steps for one image; the explainer maps it over a batch
(``lax.map``), ``scan``s over sample chunks of ``chunk`` and probes one scale at a time (peak memory:
``chunk`` teacher inputs, or ``probe_samples`` if larger) and ``scan``s over student steps.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxplain.explainers.base import Explainer, ModelHandle, State, map_images, per_example_keys, require_choice
from jaxplain.explainers.rise import random_masks
from jaxplain.imageops import blend
from jaxplain.nets.vae import VaeHandle, decode, encode
from jaxplain.zoo import load_vae

SHIFTED, SAME = 0, 1
ATTRIBUTIONS = ("auto", "input", "magnitude", "margin", "change")
STUDENT_INPUTS = ("auto", "change", "size")  # the sample's signed change from the photo, or its absolute value
NEIGHBOURHOODS = ("residual", "decoded", "spliced")
OPTIMISERS = {"momentum": 1.0, "adam": 0.01}  # student optimiser -> default learning rate
DEGENERATE_SHARE = 0.02  # a minority relabel below this share of the samples leaves the student little to learn

__all__ = ["RelabelConfig", "VaeHandle", "attribute", "attribution_for", "balanced_accuracy", "choose_probe",
           "default_vae_name", "explain_image", "fit_student", "image_sampler", "neighbourhood_for",
           "probe_settings", "relabel", "relabel_samples", "resolve", "student_features",
           "student_grid", "student_input_for", "student_resolution_for", "synthesise"]


@dataclasses.dataclass(frozen=True)
class RelabelConfig:
    """Every setting of re-label distillation (see the module docstring for what each one does)."""

    num_samples: int = 4000
    noise_scale: float = 1.0
    adapt_noise: bool = True
    probe_samples: int = 24
    probe_scales: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    probe_shares: tuple[float, ...] = ()
    neighbourhood: str = "spliced"
    splice_grid: int = 7
    splice_share: float = 0.5
    chunk: int = 100
    student_resolution: int | None = None
    student_steps: int = 200
    learning_rate: float | None = None
    soft_weight: float = 1.0
    hard_weight: float = 0.0
    temperature: float = 1.0
    l2: float = 1e-4
    holdout: float = 0.2
    attribution: str = "auto"
    student_optimiser: str = "momentum"
    student_input: str = "auto"

    def __post_init__(self):
        samples = self.num_samples
        if samples % self.chunk:
            raise ValueError(f"num_samples ({samples}) must be a multiple of chunk ({self.chunk})")
        require_choice("neighbourhood", self.neighbourhood, NEIGHBOURHOODS)
        if not 0.0 < self.splice_share <= 1.0 or self.splice_grid < 1:
            raise ValueError(f"splice_share must be in (0, 1] and splice_grid at least 1, not {self.splice_share} "
                             f"and {self.splice_grid}")
        require_choice("attribution", self.attribution, ATTRIBUTIONS)
        require_choice("student_input", self.student_input, STUDENT_INPUTS)
        if self.soft_weight + self.hard_weight <= 0:
            raise ValueError(f"soft_weight ({self.soft_weight}) and hard_weight ({self.hard_weight}) leave the student "
                             "nothing to fit; make at least one positive")
        require_choice("student_optimiser", self.student_optimiser, OPTIMISERS)
        train = self.train_count
        if not 1 <= train < samples:
            raise ValueError(f"holdout {self.holdout} of {samples} samples leaves {train} to train on and "
                             f"{samples - train} to check the student; both must be at least 1")
        if self.probe_shares and self.neighbourhood != "spliced":
            raise ValueError(f"probe_shares applies to the spliced neighbourhood only, not {self.neighbourhood!r}")
        if not all(0.0 < q <= 1.0 for q in self.probe_shares):
            raise ValueError(f"every probe share must be in (0, 1], not {tuple(self.probe_shares)}")
        object.__setattr__(self, "probe_scales", tuple(float(s) for s in self.probe_scales))
        object.__setattr__(self, "probe_shares", tuple(float(q) for q in self.probe_shares))

    @property
    def train_count(self) -> int:
        """Samples the student trains on; the rest measure its fidelity."""
        return int(round(self.num_samples * (1.0 - self.holdout)))


def default_vae_name(model) -> str:
    """The shipped VAE matched to a teacher's input: 32 px -> ``vae_cifar10``, otherwise ``vae_imagenet64``."""
    return "vae_cifar10" if model.input_shape[0] <= 32 else "vae_imagenet64"


def resize(images, size: tuple[int, int]):
    """Antialiased bilinear resize of ``[n, H, W, C]`` images to ``size = (h, w)``."""
    return jax.image.resize(images, (images.shape[0], *size, images.shape[-1]), "linear", antialias=True)


def student_grid(config: RelabelConfig, height: int, width: int) -> tuple[int, int]:
    """The student's pixel grid: ``student_resolution`` on the shorter side (never finer than the image),
    the longer side in proportion, so a non-square image keeps its aspect."""
    if config.student_resolution is None:
        raise ValueError("student_resolution None depends on the VAE and the map: resolve the config first")
    short = min(config.student_resolution, height, width)
    if height <= width:
        return short, max(1, round(short * width / height))
    return max(1, round(short * height / width)), short


def synthesise(config: RelabelConfig, image, decoded, base, key, share=None):
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
    """What the student sees: each sample's change from ``image`` on the student grid, flattened ``[n, D]``;
    its absolute value for ``student_input="size"`` (how much each pixel was replaced, not in which direction)."""
    if student_input not in ("change", "size"):
        raise ValueError(f'student_input {student_input!r}: resolve "auto" with student_input_for first')
    change = (resize(synthetic, grid) - resize(image[None], grid)).reshape(synthetic.shape[0], -1)
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


def probe_settings(config: RelabelConfig):
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


def learning_rate_for(config: RelabelConfig) -> float:
    """The student's step size: ``learning_rate``, or its optimiser's own (:data:`OPTIMISERS`) when None."""
    return OPTIMISERS[config.student_optimiser] if config.learning_rate is None else config.learning_rate


def fit_student(config: RelabelConfig, features, same, soft):
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

    def step(carry, _):
        p, opt_state = carry
        updates, opt_state = optimiser.update(jax.grad(loss)(p), opt_state)
        return (optax.apply_updates(p, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, optimiser.init(params)), None, length=config.student_steps)
    predicted = jnp.argmax(features @ params["w"] + params["b"], -1) == SAME
    weights = params["w"][:, SAME] - params["w"][:, SHIFTED]
    return weights, balanced_accuracy(predicted[:n], same[:n]), balanced_accuracy(predicted[n:], same[n:])


def attribution_for(config: RelabelConfig) -> str:
    """The map ``config.attribution`` names; ``"auto"`` is the signed ``"change"`` map in a spliced
    neighbourhood (it marks the evidence for the class, not against it; chosen on the development photos
    and grids of CIFAR-10 and imagenet-dev, results/README.md), and the paper's ``"magnitude"`` otherwise."""
    if config.attribution != "auto":
        return config.attribution
    return "change" if config.neighbourhood == "spliced" else "magnitude"


def student_input_for(config: RelabelConfig, attribution: str, vae_resolution: int, height: int, width: int) -> str:
    """The student's input ``config.student_input`` names; ``"auto"`` is ``"size"`` (each pixel's absolute
    change) for the ``"change"`` map of a spliced neighbourhood whose decodings are upsampled into the image
    (the 64 px VAE of 224 px photos: there the change's sign is noise and its size the signal), and the
    signed ``"change"`` otherwise (each chosen on its development split, results/README.md)."""
    if config.student_input != "auto":
        return config.student_input
    upsampled = config.neighbourhood == "spliced" and not splices_at_full_resolution(config, vae_resolution,
                                                                                      height, width)
    return "size" if upsampled and attribution == "change" else "change"


def splices_at_full_resolution(config: RelabelConfig, vae_resolution: int, height: int, width: int) -> bool:
    """Whether the neighbourhood is spliced from VAE decodings made at the image's own resolution (CIFAR-10's
    32 px VAE), rather than upsampled ones (the 64 px VAE of 224 px photos) or none at all."""
    return config.neighbourhood == "spliced" and vae_resolution >= min(height, width)


def student_resolution_for(config: RelabelConfig, attribution: str, vae_resolution: int, height: int,
                           width: int) -> int:
    """The student grid ``config.student_resolution`` names; ``None`` is the image's shorter side for the
    ``"change"`` map in a spliced neighbourhood whose VAE decodes at the image's resolution (the map then
    reads the VAE's change pixel by pixel), and 16 px otherwise (chosen on the development splits)."""
    if config.student_resolution is not None:
        return config.student_resolution
    native = splices_at_full_resolution(config, vae_resolution, height, width)
    return min(height, width) if native and attribution == "change" else 16


def resolve(config: RelabelConfig, vae_resolution: int, height: int, width: int) -> RelabelConfig:
    """``config`` with its VAE- and image-dependent defaults (``attribution`` and ``student_input``
    ``"auto"``, ``student_resolution=None``) made concrete for an image of ``height`` x ``width``."""
    attribution = attribution_for(config)
    resolution = student_resolution_for(config, attribution, vae_resolution, height, width)
    student_input = student_input_for(config, attribution, vae_resolution, height, width)
    return dataclasses.replace(config, attribution=attribution, student_resolution=resolution,
                               student_input=student_input)


def attribute(config: RelabelConfig, weights, image, features, same, zero_pixel):
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


def sample_neighbourhood(config: RelabelConfig, model: ModelHandle, params, vae: VaeHandle, image, label,
                         reference_logits, mu, base, scale, share, key, count: int):
    """``count`` synthetic images around ``mu`` at noise ``scale`` (spliced: windows open with probability
    ``share``), with their relabels and soft labels."""
    eps = jax.random.normal(key, (count, mu.shape[-1]))
    decoded = decode(vae.module, vae.params, mu + scale * eps)
    synthetic = synthesise(config, image, decoded, base, jax.random.fold_in(key, 1), share)
    logits = model.logits(params, synthetic).astype(jnp.float32)
    same, soft = relabel_samples(logits, label, reference_logits, config.temperature)
    return synthetic, same, soft


def image_sampler(config: RelabelConfig, model: ModelHandle, params, vae: VaeHandle, image, label):
    """``sample(scale, share, key, count) -> (synthetic, same, soft)``: the neighbourhood of one image."""
    size = vae.module.resolution
    mu = encode(vae.module, vae.params, resize(image[None], (size, size)))[0][0]
    base = decode(vae.module, vae.params, mu[None])[0]
    reference_logits = model.logits(params, image[None])[0].astype(jnp.float32)
    return lambda scale, share, key, count: sample_neighbourhood(config, model, params, vae, image, label,
                                                                 reference_logits, mu, base, scale, share, key, count)


def neighbourhood_for(config: RelabelConfig, sample, key):
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


def explain_image(config: RelabelConfig, model: ModelHandle, params, vae: VaeHandle, image, label, key):
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


def relabel(
    num_samples: int = 4000,
    noise_scale: float = 1.0,
    adapt_noise: bool = True,
    probe_samples: int = 24,
    probe_scales: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
    probe_shares: tuple[float, ...] = (),
    neighbourhood: str = "spliced",
    splice_grid: int = 7,
    splice_share: float = 0.5,
    chunk: int = 100,
    student_resolution: int | None = None,
    student_steps: int = 200,
    learning_rate: float | None = None,
    soft_weight: float = 1.0,
    hard_weight: float = 0.0,
    temperature: float = 1.0,
    l2: float = 1e-4,
    holdout: float = 0.2,
    attribution: str = "auto",
    student_optimiser: str = "momentum",
    student_input: str = "auto",
    vae: str | VaeHandle | None = None,
) -> Explainer:
    """Re-label distillation with a VAE neighbourhood of ``num_samples`` latents and a linear student.

    ``vae`` names a shipped VAE (default: the one matched to the teacher's input size), gives a folder,
    or passes a loaded :class:`VaeHandle`.
    """
    config = RelabelConfig(**{name: value for name, value in locals().items() if name != "vae"})  # every other argument

    def init(key, model, sample=None) -> State:
        del key, sample
        handle = vae if isinstance(vae, VaeHandle) else load_vae(vae or default_vae_name(model))
        return State(ModelHandle.of(model), handle)

    def explain_with_details(state, params, images, labels, *, key):
        keys = per_example_keys(key, images.shape[0])
        one = lambda image, label, k: explain_image(config, state.model, params, state.learned, image, label, k)
        return map_images(one, images, labels, keys)

    def explain(state, params, images, labels, *, key):
        return explain_with_details(state, params, images, labels, key=key)[0]

    def resolved(state, input_shape):
        concrete = resolve(config, state.learned.module.resolution, *input_shape[:2])
        return {"attribution": concrete.attribution, "student_resolution": concrete.student_resolution,
                "student_input": concrete.student_input,
                "num_samples": concrete.num_samples, "learning_rate": learning_rate_for(concrete),
                "vae_resolution": state.learned.module.resolution}

    return Explainer("relabel", init, explain, details=explain_with_details, resolved=resolved)
