"""DAX: distillation-aided explainability (Bhattacharya, Poorjam, Mittal & Ganapathy; seed 003).

A gradient-free explainer: the teacher is only *queried*, never differentiated. For each input ``x``
explained for class ``c``:

1. **Local perturbations** (:func:`query_teacher`). ``x`` is cut into segments (:func:`segmentation_for`:
   quickshift superpixels as in the reference, SLIC for small RGB images, a grid of ``patch`` x ``patch`` blocks
   for spectrograms) and ``num_samples`` random on/off patterns are drawn (the first keeps everything). A
   switched-off segment shows its own mean value over pixels and channels (mean grey for images). The teacher's
   probability of ``c`` on each perturbed input is the target; each sample is weighted by
   ``sqrt(exp(-d^2 / 0.25^2))`` of the cosine distance ``d`` of its pattern to the all-on one.
2. **Training** (:func:`train_networks`). A mask network ``M`` and a student ``S`` (:mod:`jaxplain.nets.dax`)
   see the perturbed inputs downscaled to ``resolution`` and are trained on the first ``1 - holdout`` of the samples,
   in batches of ``batch_size`` taken in order (the last one shorter). The reference trains both networks on
   ``mean(w (S(x' M(x')) - p)^2) - mean(w (S(x' (1 - M(x'))) - p)^2)`` by SGD with Nesterov momentum; the
   default (``complement="surrogate"``) trains the student on the perturbed inputs themselves and the mask alone
   on that difference, by Adam (:func:`dax_loss`).
3. **Map** (:func:`dax_map`). The mask of the intact input is recorded at the start of each of the first
   ``averaged_epochs`` epochs (the first before any step, as in the reference), max-pooled by ``pool``, bilinearly
   upsampled, min-max normalised, with its ``border`` outermost pixels zeroed; the map is the min-max normalised
   mean of the masks from ``average_from`` on (the reference's 0 includes the untrained network's; the default
   takes the last mask alone, after ten epochs), resized to the input.

The whole per-image training is one compiled program (``lax.scan`` over epochs and batches). Teacher queries run
image after image in chunks of ``chunk`` (peak memory: ``chunk`` teacher inputs); the training runs
``images_per_step`` images at a time. What each setting does, the reference's values and how the tuned default
differs, with measured effects, are in ``docs/methods/dax.md``.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxplain.explainers.base import Explainer, map_images, per_example_keys, stateless
from jaxplain.explainers.lime import KERNEL_WIDTH, host_superpixels, superpixels
from jaxplain.explainers.registry import Method
from jaxplain.explainers.settings import Preset, Settings, setting
from jaxplain.imageops import minmax
from jaxplain.nets.dax import MaskNet, StudentNet, init_networks

# quickshift at the reference's settings is made for ImageNet-size photos: on the first six imagenet-dev images
# resized it finds about 33 segments at 224 px, 13 at 128, 7 at 96, 3 at 64 and one at 32 (so on CIFAR-10 every
# perturbation switched the whole image on or off); SLIC with n_segments=50 finds about 30 at 32 px
QUICKSHIFT_MIN_SIDE = 128


def segmentation_for(segmentation: str, height: int, width: int, channels: int) -> str:
    """The segmentation ``"auto"`` stands for: ``"grid"`` for one-channel inputs (spectrograms), the reference's
    ``"quickshift"`` for RGB images of at least ``QUICKSHIFT_MIN_SIDE`` px on the shorter side, ``"slic"``
    for smaller ones. A named segmentation is kept."""
    if segmentation != "auto":
        return segmentation
    if channels != 3:
        return "grid"
    return "quickshift" if min(height, width) >= QUICKSHIFT_MIN_SIDE else "slic"


def grid_segments(height: int, width: int, patch: int) -> np.ndarray:
    """Segment labels ``[H, W]`` of a grid of ``patch`` x ``patch`` blocks, row-major."""
    columns = -(-width // patch)
    return (np.arange(height)[:, None] // patch * columns + np.arange(width)[None, :] // patch).astype(np.int32)


def segment_means(x: jax.Array, segments: jax.Array, max_segments: int) -> jax.Array:
    """``x`` ``[H, W, C]`` with every segment replaced by its mean over pixels and channels."""
    one_hot = jax.nn.one_hot(segments, max_segments)  # [H, W, S]
    sizes = one_hot.sum((0, 1))
    means = jnp.einsum("hws,hw->s", one_hot, x.mean(-1)) / jnp.maximum(sizes, 1.0)
    return jnp.broadcast_to(means[segments][..., None], x.shape)


def random_switches(key, num_samples: int, max_segments: int) -> jax.Array:
    """``[N, S]`` on/off patterns, each segment on with probability 1/2; the first sample keeps every segment."""
    return jax.random.bernoulli(key, 0.5, (num_samples, max_segments)).at[0].set(True)


def locality_weights(switches: jax.Array, present: jax.Array) -> jax.Array:
    """``sqrt(exp(-d^2 / 0.25^2))`` of the cosine distance between each pattern (over the segments
    ``present`` in the input) and the all-on pattern."""
    on = (switches & present).astype(jnp.float32)
    cosine = on.sum(-1) / jnp.sqrt(jnp.maximum(on.sum(-1), 1e-12) * present.sum())
    return jnp.sqrt(jnp.exp(-((1.0 - cosine) ** 2) / KERNEL_WIDTH ** 2))


def perturb(x: jax.Array, fill: jax.Array, segments: jax.Array, switches: jax.Array) -> jax.Array:
    """``[N, H, W, C]`` inputs: ``x`` where a pattern keeps the segment, ``fill`` where it switches it off."""
    keep = switches[:, segments][..., None]
    return jnp.where(keep, x[None], fill[None])


def student_views(inputs: jax.Array, mask: jax.Array, fill: jax.Array | float = 0.0) -> tuple[jax.Array, jax.Array]:
    """What the student sees: the kept input (``inputs`` where the mask is 1, ``fill`` where it is 0) and its
    complement (the other way round). With ``fill = 0`` these are the reference's ``x * m`` and ``x * (1 - m)``."""
    return inputs * mask + fill * (1.0 - mask), inputs * (1.0 - mask) + fill * mask


@jax.custom_vjp
def reverse_gradient(x: jax.Array) -> jax.Array:
    """The identity, whose gradient is negated: what follows it is minimised, what precedes it maximised."""
    return x


reverse_gradient.defvjp(lambda x: (x, None), lambda _, g: (-g,))


def straight_through(mask: jax.Array, threshold: float = 0.5) -> jax.Array:
    """``mask`` rounded to 0 or 1 at ``threshold``, with the gradient of the soft mask (straight-through)."""
    return mask + jax.lax.stop_gradient((mask > threshold).astype(mask.dtype) - mask)


def dax_loss(variables, batch_stats, mask_net: MaskNet, student: StudentNet, inputs, targets, weights, key,
             complement: str = "joint", fill: jax.Array | float = 0.0, mask_area: float = 0.0,
             hard_mask: bool = False):
    """The DAX objective on one batch; returns ``(loss, (new batch statistics, (kept error, removed error)))``.

    With ``e_k`` and ``e_c`` the student's weighted errors on the kept and the complementary input:

    * ``complement="joint"`` (the reference): both networks minimise ``e_k - e_c``. The student is then
      rewarded for *anti*-predicting the teacher on the complement, which it can only do where the
      complement still shows the evidence (``experiments/dax_mask_use.py`` measures it).
    * ``"mask"``: as joint, but the complement term trains only the mask (the student is held fixed in it).
    * ``"adversarial"``: the student minimises ``e_k + e_c`` (it reads the teacher from both inputs as well as
      it can) and the mask ``e_k - e_c`` (a gradient reversal on the mask in the complement), so the mask
      is rewarded for leaving nothing in the complement from which the teacher can be read.
    * ``"surrogate"``: the student learns the teacher from the perturbed inputs themselves, ``e_x``, and never from
      a masked one; the mask alone minimises ``e_k - e_c`` through the student held fixed. The student is then a
      local surrogate of the teacher that cannot tell kept from removed inputs by anything but their content, and
      the mask must keep the evidence it reads and take it from the complement.

    ``mask_area`` weighs the mask's mean (its area) in the mask's loss: the reference's commented-out area term,
    without which a mask that keeps everything is as good as one that keeps the evidence. Where the mask removes,
    the student sees ``fill``: 0 in the reference (``x * m`` and ``x * (1 - m)``), or the perturbations' own
    fill, so that the kept and the complementary inputs are alike in brightness. With ``hard_mask`` the student
    sees the mask rounded to 0 or 1 (:func:`straight_through`), so that a removed pixel is gone, not dimmed.
    """
    soft = mask_net.apply(variables["mask"], inputs)
    mask = straight_through(soft) if hard_mask else soft

    def student_pass(x, stats, pass_key, params):  # two passes, as the reference: each normalises by its own batch
        out, updates = student.apply({"params": params, "batch_stats": stats}, x, train=True,
                                     rngs={"dropout": pass_key}, mutable=["batch_stats"])
        return out, updates["batch_stats"]

    kept_key, removed_key = jax.random.split(key)
    error = lambda out: jnp.mean(weights * (out - targets) ** 2)
    kept_input, _ = student_views(inputs, mask, fill)
    _, removed_input = student_views(inputs, reverse_gradient(mask) if complement == "adversarial" else mask, fill)
    if complement == "surrogate":
        return surrogate_loss(variables, batch_stats, student, inputs, kept_input, removed_input, error, key,
                              mask_area * jnp.mean(soft))
    kept, batch_stats = student_pass(kept_input, batch_stats, kept_key, variables["student"])
    fixed = jax.lax.stop_gradient(variables["student"]) if complement == "mask" else variables["student"]
    removed, batch_stats = student_pass(removed_input, batch_stats, removed_key, fixed)
    kept_error, removed_error = error(kept), error(removed)
    sign = 1.0 if complement == "adversarial" else -1.0  # the reversal turns the mask's + into -
    loss = kept_error + sign * removed_error + mask_area * jnp.mean(soft)
    return loss, (batch_stats, (kept_error, removed_error))


def surrogate_loss(variables, batch_stats, student: StudentNet, inputs, kept_input, removed_input, error, key,
                   area_term):
    """The ``"surrogate"`` objective: the student fits the perturbed inputs, and the mask, through the student
    held fixed, minimises the error on the kept input less the error on the removed one.

    The three batches go through the student in one pass whose batch normalisation takes its statistics from the
    perturbed inputs alone, so the kept and removed inputs are read exactly as the surrogate reads its own data.
    (Its running statistics lag the weights, which move fast at the start: read through them, the surrogate
    saturates and every mask looks alike to it.)"""
    size = inputs.shape[0]
    rows = jnp.arange(3 * size) < size
    params = {"raw": variables["student"], "fixed": jax.lax.stop_gradient(variables["student"])}

    def outputs(student_params, batch):
        out, updates = student.apply({"params": student_params, "batch_stats": batch_stats}, batch, train=True,
                                     statistics_rows=rows, rngs={"dropout": key}, mutable=["batch_stats"])
        return out, updates["batch_stats"]

    # the student's own fit (gradients to the student), and the mask's two views (gradients to the mask only)
    raw, new_stats = outputs(params["raw"], jnp.concatenate([inputs, jax.lax.stop_gradient(kept_input),
                                                              jax.lax.stop_gradient(removed_input)]))
    views, _ = outputs(params["fixed"], jnp.concatenate([jax.lax.stop_gradient(inputs), kept_input, removed_input]))
    kept, removed = views[size:2 * size], views[2 * size:]
    loss = error(raw[:size]) + error(kept) - error(removed) + area_term
    return loss, (new_stats, (error(kept), error(removed)))


def hsv_scaled(images: jax.Array, selected: jax.Array | None = None) -> jax.Array:
    """RGB images ``[N, H, W, 3]`` in [0, 1] as hue (degrees), saturation and value, each divided by its
    largest value over the ``selected`` images (all when None), as the reference's colour augmentation does."""
    top, bottom = images.max(-1), images.min(-1)
    spread = top - bottom + 1e-10
    r, g, b = images[..., 0], images[..., 1], images[..., 2]
    by_minimum = jnp.stack([60 * (b - g) / spread + 180, 60 * (r - b) / spread + 300, 60 * (g - r) / spread + 60], -1)
    hue = jnp.take_along_axis(by_minimum, images.argmin(-1)[..., None], -1)[..., 0]
    hsv = jnp.stack([hue, spread / (top + 1e-10), top], -1)
    selected = jnp.ones(images.shape[0], bool) if selected is None else selected
    largest = jnp.where(selected[:, None, None, None], hsv, 0.0).max((0, 1, 2))
    return hsv / jnp.maximum(largest, 1e-12)


def colour_augmented(inputs: jax.Array, step_in_epoch, key, input_scale: float) -> jax.Array:
    """The reference's colour augmentation of one batch (values in [0, ``input_scale``]): 3/5 of the inputs on
    even steps of an epoch, 2/5 on odd ones, chosen at random, are shown in HSV coordinates (:func:`hsv_scaled`,
    scaled together); on an epoch's first step the intact input (the batch's first) is too, scaled on its own,
    and is never among the chosen."""
    size = inputs.shape[0]
    first = step_in_epoch == 0
    order = jax.random.permutation(key, size)
    order = order[jnp.argsort(jnp.where(first & (order == 0), size, jnp.arange(size)))]  # the intact one last
    count = jnp.where(step_in_epoch % 2 == 0, size * 3 // 5, size * 2 // 5)
    chosen = jnp.zeros(size, bool).at[order].set(jnp.arange(size) < count)
    augmented = jnp.where(chosen[:, None, None, None], hsv_scaled(inputs / input_scale, chosen) * input_scale, inputs)
    intact = hsv_scaled(inputs[:1] / input_scale)[0] * input_scale
    return augmented.at[0].set(jnp.where(first, intact, augmented[0]))


def recorded_map(mask_net: MaskNet, mask_params, intact: jax.Array, pool: int, border: int) -> jax.Array:
    """The snapshot the map averages: the intact input's mask, max-pooled, bilinearly upsampled, min-max
    normalised, with its border zeroed; ``[r, r]``."""
    mask = mask_net.apply(mask_params, intact[None])[0, ..., 0]
    size = mask.shape
    pooled = -jax.lax.reduce_window(-mask, jnp.inf, jax.lax.min, (pool, pool), (pool, pool), "VALID")
    smooth = minmax(jax.image.resize(pooled, size, method="bilinear"))
    inner = jnp.zeros(size, bool).at[border:size[0] - border, border:size[1] - border].set(True)
    return jnp.where(inner, smooth, 0.0)


def student_resolution(size: tuple[int, int], pool: int, reference: int = 128) -> int:
    """The side the networks work at by default: the reference's 128 px, or less for smaller inputs
    (a 32-px CIFAR image is not upsampled), a multiple of ``pool``."""
    return max(pool, min(reference, max(size)) // pool * pool)


@dataclasses.dataclass(frozen=True)
class DaxSettings(Settings):
    method = "dax"
    num_samples: int = setting(1000, "perturbations (teacher queries per map)", count=True)
    segmentation: str = setting("auto", "auto: quickshift for RGB images of 128 px or more, SLIC below, a grid "
                                        "for spectrograms", choices=("auto", "quickshift", "slic", "grid"))
    max_segments: int = setting(256, "segments kept (surplus ones are pooled into the last)", at_least=2)
    n_segments: int = setting(50, "SLIC's target number of segments", count=True)
    patch: int = setting(8, "side of the grid's blocks in px", count=True)
    resolution: int | None = setting(64, "side of the networks' square input (None: 128 px, or the input's if "
                                         "smaller, as the reference)", count=True)
    input_scale: float = setting(255.0, "the networks see pixel values in [0, input_scale]", above=0.0)
    mask_features: int = setting(32, "channels of the mask network's first convolution", count=True)
    mask_kernel: int = setting(7, "kernel size of the mask network's convolutions", count=True)
    pool: int = setting(8, "the mask is constant on pool x pool blocks", count=True)
    mask_normalisation: str = setting("batch", "min-max of the mask over the whole batch (the reference) or per "
                                               "sample", choices=("batch", "sample"))
    hidden: int = setting(512, "hidden units of the student", count=True)
    dropout: float = setting(0.1, "the student's dropout", at_least=0.0, below=1.0)
    init: str = setting("flax", "initialisation of both networks: flax's defaults or PyTorch's",
                        choices=("flax", "torch"))
    batch_size: int = setting(16, "samples per step", count=True)
    learning_rate: float = setting(1e-3, "the optimiser's step size", above=0.0)
    mask_learning_rate: float | None = setting(None, "the mask network's step size (None: learning_rate)", above=0.0)
    optimiser: str = setting("adam", "sgd (Nesterov momentum 0.9, the reference) or adam", choices=("sgd", "adam"))
    holdout: float = setting(0.0, "share of the samples (the last ones) kept out of training", at_least=0.0,
                             below=1.0)
    averaged_epochs: int = setting(11, "masks recorded: before training and after each epoch (so one more than the "
                                       "epochs trained)", count=True)
    average_from: int | None = setting(None, "the first recorded mask the map averages (None: the last alone, the "
                                             "trained network's answer; 0: the untrained network's too, as the "
                                             "reference)", at_least=0)
    border: int | None = setting(None, "outermost pixels of each mask set to zero (None: 7 px at 128 px, scaled)",
                                 at_least=0)
    complement: str = setting("surrogate", "how the complement term trains: joint (the reference), mask only, "
                                           "adversarial, or surrogate (the student learns the unmasked perturbations)",
                              choices=("joint", "mask", "adversarial", "surrogate"))
    masked_fill: str = setting("segment_mean", "what the student sees where the mask removes: black (the reference) "
                                               "or the perturbations' fill", choices=("zero", "segment_mean"))
    mask_area: float = setting(0.0, "weight of the mask's mean in the loss", at_least=0.0)
    hard_mask: bool = setting(False, "show the student the mask rounded to 0 or 1 (straight-through)")
    colour_augmentation: bool = setting(False, "the reference's HSV views of part of each batch and of the "
                                               "recorded input")
    chunk: int = setting(100, "perturbations per teacher call (sets peak memory)", count=True)
    images_per_step: int = setting(1, "images trained at once (1: a map never depends on its batch)", count=True)

    def check(self):
        if self.num_samples % self.chunk:
            raise ValueError(f"num_samples ({self.num_samples}) must be a multiple of chunk ({self.chunk})")
        if self.resolution is not None and self.resolution % self.pool:
            raise ValueError(f"resolution ({self.resolution}) must be a multiple of pool ({self.pool})")
        if self.first_averaged >= self.averaged_epochs:
            raise ValueError(f"average_from ({self.average_from}) leaves none of the {self.averaged_epochs} recorded "
                             "masks to average")
        if self.train_count < self.batch_size:
            raise ValueError(f"{self.train_count} training samples fill no batch of {self.batch_size}")

    @property
    def first_averaged(self) -> int:
        """The first recorded mask the map averages (``average_from`` made concrete)."""
        return self.averaged_epochs - 1 if self.average_from is None else self.average_from

    @property
    def train_count(self) -> int:
        """Samples the networks train on (sklearn's train_test_split rounds the held-out share up)."""
        return self.num_samples - math.ceil(self.holdout * self.num_samples)

    @property
    def mask_net(self) -> MaskNet:
        return MaskNet(self.mask_features, self.mask_kernel, self.pool, self.mask_normalisation == "sample",
                       self.init == "torch")

    @property
    def student(self) -> StudentNet:
        return StudentNet(self.hidden, self.dropout, self.init == "torch")

    @property
    def optimiser_transform(self) -> optax.GradientTransformation:
        def one(rate):
            return optax.sgd(rate, momentum=0.9, nesterov=True) if self.optimiser == "sgd" else optax.adam(rate)

        if self.mask_learning_rate is None:
            return one(self.learning_rate)
        return optax.multi_transform({"mask": one(self.mask_learning_rate), "student": one(self.learning_rate)},
                                     {"mask": "mask", "student": "student"})

    def geometry(self, size: tuple[int, int]) -> tuple[int, int]:
        """``(side, border)`` of the networks' input and of the map's zeroed edge for an input of ``size``."""
        side = self.resolution or student_resolution(size, self.pool)
        return side, self.border if self.border is not None else round(7 * side / 128)

    def resolve(self, context):
        side, edge = self.geometry(context.input_shape[:2])
        return self.replace(segmentation=segmentation_for(self.segmentation, *context.input_shape),
                            resolution=side, border=edge, average_from=self.first_averaged)


def segments_of(settings: DaxSettings, inputs: jax.Array) -> jax.Array:
    """Segment labels ``[B, H, W]`` of a batch (a grid, or superpixels through a host callback)."""
    height, width, channels = inputs.shape[1:]
    method = segmentation_for(settings.segmentation, height, width, channels)
    if method == "grid":
        segments = grid_segments(height, width, settings.patch)
        if segments.max() >= settings.max_segments:
            raise ValueError(f"a {height}x{width} input has {segments.max() + 1} patches of {settings.patch} px; "
                             f"raise max_segments or patch")
        return jnp.broadcast_to(jnp.asarray(segments), inputs.shape[:3])
    return superpixels(inputs, method, settings.max_segments, settings.n_segments)


def query_teacher(settings: DaxSettings, model, params, x, label, segments, key) -> tuple[jax.Array, jax.Array]:
    """Patterns ``[N, S]`` and the teacher's probability of ``label`` on each perturbed input ``[N]``: the
    only use DAX makes of the teacher."""
    fill = segment_means(x, segments, settings.max_segments)
    switches = random_switches(key, settings.num_samples, settings.max_segments)

    def probabilities(chunk_switches):
        return model.probabilities(params, perturb(x, fill, segments, chunk_switches))[:, label]

    targets = jax.lax.map(probabilities, switches.reshape(-1, settings.chunk, settings.max_segments)).reshape(-1)
    return switches, targets


def network_inputs(settings: DaxSettings, x, segments):
    """The input as the networks see it: ``(x, perturbation fill, segments)`` at their side and scale, and the
    fill the student sees where the mask removes (0 in the reference)."""
    side = settings.geometry(x.shape[:2])[0]
    small = lambda a: jax.image.resize(a, (side, side, a.shape[-1]), "linear") * settings.input_scale
    fill_small = small(segment_means(x, segments, settings.max_segments))
    student_fill = fill_small if settings.masked_fill == "segment_mean" else 0.0
    return small(x), fill_small, jax.image.resize(segments, (side, side), "nearest"), student_fill


def train_networks(settings: DaxSettings, x, segments, switches, targets, key, *, trace: bool = False):
    """Trains the mask and student networks on one input's samples.

    Returns the final ``(params, batch_stats)``, the ``averaged_epochs`` recorded masks ``[E, r, r]`` (the first
    before any step, then one after each epoch) and, with ``trace``, ``{name: [E - 1, ...]}`` per epoch: the mean
    loss and its two terms, and how far the mask network's parameters have moved from their start."""
    s = settings
    mask_net, student, optimiser = s.mask_net, s.student, s.optimiser_transform
    edge = s.geometry(x.shape[:2])[1]
    x_small, fill_small, segments_small, student_fill = network_inputs(s, x, segments)
    augment = s.colour_augmentation and x.shape[-1] == 3  # HSV needs colour: spectrograms are left alone
    # what the recorded masks see: the reference records the intact input as its first batch shows it
    recorded_view = hsv_scaled(x_small[None] / s.input_scale)[0] * s.input_scale if augment else x_small
    present = jnp.zeros(s.max_segments, bool).at[segments].set(True)
    weights = locality_weights(switches, present)
    init_key, dropout_key = jax.random.split(key)
    colour_key = jax.random.fold_in(init_key, 1)
    variables = init_networks(init_key, mask_net, student, x_small[None])
    params = {"mask": variables["mask"], "student": variables["student"]["params"]}
    start = params["mask"]
    full, rest = divmod(s.train_count, s.batch_size)
    steps = full + (rest > 0)  # the reference's DataLoader keeps the last, shorter batch
    batches = lambda a: a[:full * s.batch_size].reshape(full, s.batch_size, *a.shape[1:])
    last = lambda a: a[full * s.batch_size:s.train_count]
    data = (batches(switches), batches(targets), batches(weights))

    def step(carry, batch):
        params, batch_stats, opt_state, index = carry
        batch_switches, batch_targets, batch_weights = batch
        inputs = perturb(x_small, fill_small, segments_small, batch_switches)
        if augment:
            inputs = colour_augmented(inputs, index % steps, jax.random.fold_in(colour_key, index), s.input_scale)
        grad_fn = jax.value_and_grad(dax_loss, has_aux=True)
        (loss, (batch_stats, terms)), grads = grad_fn(
            params, batch_stats, mask_net, student, inputs, batch_targets, batch_weights,
            jax.random.fold_in(dropout_key, index), s.complement, student_fill, s.mask_area, s.hard_mask)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), batch_stats, opt_state, index + 1), (loss, *terms)

    def epoch(carry, _):
        carry, losses = jax.lax.scan(step, carry, data)
        if rest:
            carry, tail = step(carry, (last(switches), last(targets), last(weights)))
            losses = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b[None]]), losses, tail)
        mask = recorded_map(mask_net, carry[0]["mask"], recorded_view, s.pool, edge)
        moved = jnp.sqrt(sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree_util.tree_leaves(carry[0]["mask"]),
                                                                    jax.tree_util.tree_leaves(start))))
        return carry, (mask, {"loss": losses[0].mean(), "kept_error": losses[1].mean(),
                              "removed_error": losses[2].mean(), "mask_moved": moved})

    first = recorded_map(mask_net, params["mask"], recorded_view, s.pool, edge)
    carry = (params, variables["student"]["batch_stats"], optimiser.init(params), 0)
    (params, batch_stats, _, _), (later, history) = jax.lax.scan(epoch, carry, None, length=s.averaged_epochs - 1)
    masks = jnp.concatenate([first[None], later])
    return ((params, batch_stats), masks, history) if trace else ((params, batch_stats), masks)


def averaged_masks(masks: jax.Array, first: int) -> jax.Array:
    """The min-max normalised mean of the recorded masks ``[E, r, r]`` from ``first`` on: ``[r, r]``."""
    return minmax(masks[first:].mean(0))


def dax_map(settings: DaxSettings, x, segments, switches, targets, key) -> jax.Array:
    """The map ``[H, W]`` of one input: the min-max normalised mean of its recorded masks, resized to the input."""
    _, masks = train_networks(settings, x, segments, switches, targets, key)
    return jax.image.resize(averaged_masks(masks, settings.first_averaged), x.shape[:2], method="bilinear")


def build(settings: DaxSettings) -> Explainer:
    """DAX with ``num_samples`` segment perturbations and a mask+student pair trained per input."""
    s = settings

    def prepare(images):
        """Superpixels on the host (grids need none: they are computed in the compiled program)."""
        method = segmentation_for(s.segmentation, *images.shape[1:])
        return {} if method == "grid" else {"segments": host_superpixels(images, method, s.max_segments, s.n_segments)}

    def explain(state, params, images, labels, *, key, segments=None):
        keys = per_example_keys(key, images.shape[0])
        query_keys, train_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
        segments = segments_of(s, images) if segments is None else segments
        query = lambda *example: query_teacher(s, state.model, params, *example)
        switches, targets = map_images(query, images, labels, segments, query_keys)
        trained = lambda example: dax_map(s, *example)
        return jax.lax.map(trained, (images, segments, switches, targets, train_keys), batch_size=s.images_per_step)

    return stateless(settings, explain, prepare=prepare)


REFERENCE = DaxSettings(num_samples=3000, segmentation="quickshift", resolution=None, init="torch", optimiser="sgd",
                        holdout=0.1, averaged_epochs=6, average_from=0, complement="joint", masked_fill="zero",
                        colour_augmentation=True)
_REFERENCE_SOURCE = ("the authors' code, iiscleap/DAX lime/lime_image.py and lime/student_ntw_learn.py: quickshift "
                     "(4, 200, 0.2), 3000 perturbations with each segment's mean grey, train_test_split(test_size=0.1, "
                     "shuffle=False), batches of 16 in order (the last of 12), SGD 1e-3 Nesterov 0.9, PyTorch's "
                     "initialisation, HSV colour augmentation, masks of epochs 0-5 averaged, 7-px border zeroed")

METHOD = Method("dax", build, {
    "default": Preset(DaxSettings(), "jaxplain's tuned default; differences from the authors' code: docs/methods/dax.md"),
    "paper": Preset(REFERENCE, "Bhattacharya et al. (seed 003) states the framework (mask network, student, the "
                               "joint loss on weighted local perturbations, fewer than 10 epochs) and no values: "
                               "every value is the authors' code's, as in dax:reference",
                    open={name: "not stated in the paper; the authors' code's" for name in
                          ("num_samples", "segmentation", "resolution", "batch_size", "learning_rate", "holdout",
                           "averaged_epochs", "border", "init", "colour_augmentation")}),
    "reference": Preset(REFERENCE, _REFERENCE_SOURCE,
                        differs=("the authors' teacher query divides each batch of 128 perturbed images by its largest "
                                 "value; jaxplain's images are already in [0, 1]",)),
}, "DAX: a mask network and a student trained per input on local perturbations (black-box, gradient-free)")
