"""Re-label distillation (Hua, Ge & Zhang; seeds 000/001).

For each image ``x`` explained for class ``c``:

1. **Neighbourhood.** Encode ``x`` with a VAE (at the VAE's resolution) to ``mu`` and draw latents
   ``z = mu + s * eps`` (``eps ~ N(0, I)``, ``num_samples`` of them, paper: 1000). Decoding gives the
   synthetic images. With ``neighbourhood="decoded"`` the teacher sees the decoded image itself
   (upsampled), as in the paper; with ``"residual"`` (default) it sees ``x + up(D(z) - D(mu))``: the
   VAE's semantic change added to the full-resolution photo, so the neighbourhood is centred on ``x``
   itself even where the VAE cannot reproduce its detail.
2. **Relabelling.** The teacher labels each sample *same* (top-1 is still ``c``) or *shifted*, and its
   temperature-softened probability of ``c`` is kept as the soft label. When the labels are nearly all
   one kind, the two-class problem is degenerate: with ``adapt_noise`` (default) a probe of
   ``probe_samples`` latents at each of ``probe_scales`` x ``noise_scale`` picks the scale whose
   *same* fraction is closest to one half before the samples are drawn.
3. **Linear student.** A two-class linear model on the synthetic images (downsampled to
   ``student_resolution``, minus the equally downsampled ``x``) is trained on
   ``soft_weight * T^2 * KL(teacher_T || student_T) + hard_weight * CE(relabel, student)`` plus an L2
   penalty, on the first ``1 - holdout`` of the samples; its *fidelity* is its agreement with the
   relabels on the held-out rest. The optimiser is gradient descent with momentum on features scaled
   to unit mean squared norm (default): it keeps the weights proportional to how strongly each
   pixel's change predicts the relabel. Adam (``student_optimiser="adam"``) normalises every
   coordinate's step, so pixels with faint evidence get weights as large as decisive ones; its maps
   were measurably less faithful (results/README.md).
4. **Saliency.** The student's weight difference ``w = w_same - w_shifted`` (one weight per pixel and
   channel) is mapped back to the image plane. ``attribution="magnitude"`` (default) gives
   ``sum_c |w_c|``, the paper's reading: how strongly a change of the pixel moves the decision,
   whatever its direction. ``"input"`` gives ``sum_c w_c (x_c - fill_c)``, the student's own
   prediction of the *same* evidence lost if the pixel were deleted (set to the mean colour);
   ``"margin"`` gives ``sum_c w_c (mean_same - mean_shifted)_c``, each pixel's share of the
   student's logit gap between the two relabelled classes. On held-out ImageNet images the
   magnitude map was more faithful than the input map (results/README.md). The map is
   bilinearly upsampled from ``student_resolution`` (16 px by default: the scale of the smallest
   change a 4x4-latent VAE makes; finer students fit noise with ~1000 samples).

Everything for a batch is one jitted function: ``lax.map`` over images, ``scan`` over sample chunks
of ``chunk`` (peak memory: ``chunk`` teacher inputs, or the probe's ``len(probe_scales) x
probe_samples`` if larger), ``scan`` over student steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxplain.explainers.base import Explainer, ModelHandle, State, map_images, per_example_keys
from jaxplain.nets.vae import VAE, decode, encode

SHIFTED, SAME = 0, 1
ATTRIBUTIONS = ("input", "magnitude", "margin")
OPTIMISERS = {"momentum": 1.0, "adam": 0.01}  # student optimiser -> default learning rate


@struct.dataclass
class VaeHandle:
    """A VAE module (static) and its parameters (a pytree), as carried in the explainer state."""

    module: VAE = struct.field(pytree_node=False)
    params: Any


def default_vae_name(model) -> str:
    """The shipped VAE matched to a teacher's input: 32 px -> ``vae_cifar10``, otherwise ``vae_imagenet64``."""
    return "vae_cifar10" if model.input_shape[0] <= 32 else "vae_imagenet64"


def load_vae(name_or_path: str) -> VaeHandle:
    """Loads a VAE artefact by name (in ``checkpoints/``) or by path."""
    from pathlib import Path

    from jaxplain.train.checkpoints import load_artefact, project_checkpoints

    path = Path(name_or_path)
    directory = path if path.is_dir() else project_checkpoints() / name_or_path
    params, config = load_artefact(directory)
    module = VAE(config["resolution"], config["latent"], tuple(config["widths"]))
    return VaeHandle(module, params)


def class_mean_gap(features, same):
    """Mean feature of *same* samples minus mean of *shifted* ones (zero if either class is empty)."""
    weight_same = same / jnp.maximum(same.sum(), 1)
    weight_shifted = ~same / jnp.maximum((~same).sum(), 1)
    gap = (weight_same - weight_shifted) @ features
    return jnp.where((same.sum() > 0) & ((~same).sum() > 0), gap, 0.0)


def _resize(images, size: int):
    return jax.image.resize(images, (images.shape[0], size, size, images.shape[-1]), "linear", antialias=True)


def relabel(
    num_samples: int = 1000,
    noise_scale: float = 1.0,
    adapt_noise: bool = True,
    probe_samples: int = 24,
    probe_scales: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
    neighbourhood: str = "residual",
    chunk: int = 100,
    student_resolution: int = 16,
    student_steps: int = 200,
    learning_rate: float | None = None,
    soft_weight: float = 0.5,
    hard_weight: float = 0.5,
    temperature: float = 1.0,
    l2: float = 1e-4,
    holdout: float = 0.2,
    attribution: str = "magnitude",
    student_optimiser: str = "momentum",
    vae: str | VaeHandle | None = None,
) -> Explainer:
    """Re-label distillation with a VAE neighbourhood of ``num_samples`` latents and a linear student."""
    if num_samples % chunk:
        raise ValueError(f"num_samples ({num_samples}) must be a multiple of chunk ({chunk})")
    if neighbourhood not in ("residual", "decoded"):
        raise ValueError(f"neighbourhood must be 'residual' or 'decoded', not {neighbourhood!r}")
    if attribution not in ATTRIBUTIONS:
        raise ValueError(f"attribution must be one of {ATTRIBUTIONS}, not {attribution!r}")
    if student_optimiser not in OPTIMISERS:
        raise ValueError(f"student_optimiser must be one of {tuple(OPTIMISERS)}, not {student_optimiser!r}")
    train_count = int(round(num_samples * (1.0 - holdout)))
    if not 1 <= train_count < num_samples:
        raise ValueError(f"holdout {holdout} of {num_samples} samples leaves {train_count} to train on and "
                         f"{num_samples - train_count} to check the student; both must be at least 1")

    def init(key, model, sample=None) -> State:
        del key, sample
        handle = vae if isinstance(vae, VaeHandle) else load_vae(vae or default_vae_name(model))
        return State(ModelHandle.of(model), handle)

    def synthesise(image, decoded, base):
        """Synthetic teacher inputs ``[n, H, W, 3]`` from decoded latents ``[n, r, r, 3]``."""
        height, width = image.shape[:2]
        if neighbourhood == "decoded":
            return jax.image.resize(decoded, (decoded.shape[0], height, width, 3), "linear")
        change = jax.image.resize(decoded - base, (decoded.shape[0], height, width, 3), "linear")
        return jnp.clip(image[None] + change, 0.0, 1.0)

    def sample_chunk(state, params, image, label, mu, base, scale, key, count):
        """Decode ``count`` latents around ``mu``; return student features, relabels and soft labels."""
        vae_handle = state.learned
        eps = jax.random.normal(key, (count, mu.shape[-1]))
        decoded = decode(vae_handle.module, vae_handle.params, mu + scale * eps)
        synthetic = synthesise(image, decoded, base)
        logits = state.model.logits(params, synthetic).astype(jnp.float32)
        same = jnp.argmax(logits, -1) == label
        soft = jax.nn.softmax(logits / temperature, axis=-1)[:, label]
        size = min(student_resolution, image.shape[0])
        features = (_resize(synthetic, size) - _resize(image[None], size)).reshape(count, -1)
        return features, same, soft

    def choose_scale(state, params, image, label, mu, base, key):
        scales = noise_scale * jnp.asarray(probe_scales)

        def same_fraction(scale, k):
            _, same, _ = sample_chunk(state, params, image, label, mu, base, scale, k, probe_samples)
            return same.mean()

        fractions = jax.vmap(same_fraction)(scales, jax.random.split(key, len(probe_scales)))
        return scales[jnp.argmin(jnp.abs(fractions - 0.5))]

    def fit_student(features, same, soft):
        """Adam on the distillation loss; returns the weight difference ``[D]`` and train/held-out accuracy."""
        hard = same.astype(jnp.int32)
        teacher = jnp.stack([1.0 - soft, soft], axis=-1)
        rate = OPTIMISERS[student_optimiser] if learning_rate is None else learning_rate
        if student_optimiser == "adam":
            optimiser = optax.adam(rate)
        else:  # one global scale keeps the pixels' relative weights; mean squared row norm 1 bounds the curvature
            features = features / jnp.sqrt(jnp.mean(jnp.sum(features ** 2, -1)) + 1e-12)
            optimiser = optax.sgd(rate, momentum=0.9)
        params = {"w": jnp.zeros((features.shape[1], 2)), "b": jnp.zeros((2,))}
        x_train, t_train, y_train = features[:train_count], teacher[:train_count], hard[:train_count]

        def loss(p):
            logits = x_train @ p["w"] + p["b"]
            soft_loss = optax.softmax_cross_entropy(logits / temperature, t_train).mean() * temperature ** 2
            hard_loss = optax.softmax_cross_entropy_with_integer_labels(logits, y_train).mean()
            return soft_weight * soft_loss + hard_weight * hard_loss + l2 * jnp.sum(p["w"] ** 2)

        def step(carry, _):
            p, opt_state = carry
            updates, opt_state = optimiser.update(jax.grad(loss)(p), opt_state)
            return (optax.apply_updates(p, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, optimiser.init(params)), None, length=student_steps)
        predictions = jnp.argmax(features @ params["w"] + params["b"], -1)
        agree = predictions == hard
        return params["w"][:, SAME] - params["w"][:, SHIFTED], agree[:train_count].mean(), agree[train_count:].mean()

    def explain_one(state, params, image, label, key):
        vae_handle = state.learned
        size = vae_handle.module.resolution
        mu = encode(vae_handle.module, vae_handle.params, _resize(image[None], size))[0][0]
        base = decode(vae_handle.module, vae_handle.params, mu[None])[0]
        probe_key, sample_key = jax.random.split(key)
        scale = choose_scale(state, params, image, label, mu, base, probe_key) if adapt_noise else jnp.asarray(noise_scale)

        def draw(_, index):
            k = jax.random.fold_in(sample_key, index)
            return None, sample_chunk(state, params, image, label, mu, base, scale, k, chunk)

        _, (features, same, soft) = jax.lax.scan(draw, None, jnp.arange(num_samples // chunk))
        features = features.reshape(num_samples, -1)
        same, soft = same.reshape(-1), soft.reshape(-1)
        weights, train_fidelity, fidelity = fit_student(features, same, soft)
        student_size = min(student_resolution, image.shape[0])
        shape = (student_size, student_size, 3)
        if attribution == "magnitude":
            saliency = jnp.abs(weights).reshape(shape).sum(-1)
        elif attribution == "input":  # the student's loss of "same" evidence if the pixel were deleted
            presence = _resize(image[None], student_size)[0] - jnp.asarray(state.model.zero_pixel)
            saliency = (weights.reshape(shape) * presence).sum(-1)
        else:  # "margin": each pixel's share of the student's logit gap between the two relabelled classes
            saliency = (weights * class_mean_gap(features, same)).reshape(shape).sum(-1)
        saliency = jax.image.resize(saliency, image.shape[:2], "linear")
        details = {"same_fraction": same.mean(), "noise_scale": scale, "fidelity": fidelity,
                   "train_fidelity": train_fidelity}
        return saliency, details

    def explain_with_details(state, params, images, labels, *, key):
        keys = per_example_keys(key, images.shape[0])
        return map_images(lambda *example: explain_one(state, params, *example), images, labels, keys)

    def explain(state, params, images, labels, *, key):
        return explain_with_details(state, params, images, labels, key=key)[0]

    return Explainer("relabel", init, explain, details=explain_with_details)
