"""Training the attentive surrogate of a teacher (seed 004): student and explanation network, end to end.

For a batch of augmented images ``x`` with labels ``y`` and the frozen teacher ``T``, the loss is

    alpha * t^2 * KL(softmax(z_T / t) || softmax(z_S / t)) + (1 - alpha) * CE(z_S, y)     (distillation)
    + KL(softmax(z_T(x)) || softmax(z_T(x * H + m * (1 - H))))                           (explanation)
    + lam * sum |H|  (at 224 x 224; see below)                                            (sparsity)
    [+ beta * p_c(x * (1 - H) + m * H)   (deletion; not the paper's, off unless the recipe sets beta)]

with ``S`` the attentive student, ``H`` the explanation network's map and ``m`` the colour the teacher
normalises to zero (the paper multiplies normalised images by ``H``). The explanation term is
differentiated through the frozen teacher into ``H``. Paper defaults: ``alpha`` 0.5, ``t`` 1,
``lam`` 1e-5, Nesterov SGD with momentum 0.9 at 0.1.

The paper's ``lam`` weighs the L1 norm of a 224 x 224 map. The norm grows with the number of pixels, so
for other input sizes the sum is rescaled to 224 x 224 pixels (:func:`sparsity_loss`): without that, a
32 x 32 map pays 49 times less for keeping everything, and on CIFAR-10 the map went to ``H = 1``
everywhere (mean 0.9996 after one epoch), the trivial solution the term exists to prevent.

Presets: ``cifar10`` (teacher ``cifar10_resnet_small``, CIFAR-10 train, crop + flip) and ``imagenet``
(teacher ``efficientnet_lite0``; the even rows of imagenet-dev and the scikit-image photos, kept at 256 px
and randomly cropped, flipped and colour-jittered on the device; the odd rows are held out). Both make the
student the frozen teacher with attention modules on three of its features
(:class:`~jaxplain.nets.surrogate.FeatureSurrogate`): with 254 images instead of ImageNet's training set a
student trained from scratch agreed with the teacher on none of the held-out images, and on CIFAR-10's
development images the feature student's maps were the more faithful (results/README.md). The paper's
student, trained from scratch, is ``features=()`` (``--features none``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxplain.data import DataSpec, open_source
from jaxplain.data.folder import FolderSource
from jaxplain.data.loader import load_arrays
from jaxplain.errors import UsageError
from jaxplain.model import Preprocessing, feature_names
from jaxplain.nets.surrogate import FeatureSurrogate, Surrogate, teacher_outputs
from jaxplain.nets.surrogate_objective import deletion_loss, explanation_loss, sparsity_loss
from jaxplain.train import augment
from jaxplain.train.checkpoints import cast_floats, save_artefact
from jaxplain.train.loop import create_state, fit, make_train_step, shuffled_batches, training_seconds


@dataclasses.dataclass(frozen=True)
class SurrogateRecipe:
    teacher: str = "cifar10_resnet_small"
    data: str = "tfds:cifar10_jpeg:train"
    holdout: str = "tfds:cifar10_jpeg:test"
    folder_rows: str = "all"  # "even": train on the even rows of a folder, hold out the odd ones
    photos: bool = False  # add the scikit-image photos to the training images
    augmentation: str = "crop_flip"  # or "strong": random resized crop, flip, colour jitter
    # the student: () for the paper's (a residual network trained from scratch); feature names of the teacher
    # (shallowest first) for attention modules on the frozen teacher's own features (FeatureSurrogate)
    features: tuple[str, ...] = ()
    width: int = 32
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    stem_stride: int = 1
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 0.1
    weight_decay: float = 5e-4
    alpha: float = 0.5
    temperature: float = 1.0
    l1: float = 1e-5
    deletion: float = 0.0  # weight of the deletion term (not the paper's: 0 leaves it out); see deletion_loss
    bf16: bool = True
    stored_dtype: str = "float32"  # the shipped artefact's floats ("bfloat16" halves its size); reported as stored
    seed: int = 0
    limit: int | None = None  # training images (smoke tests)
    holdout_limit: int = 2000


PRESETS = {
    "cifar10": SurrogateRecipe(
        features=("layer1", "layer2", "head"), epochs=2,  # the student converges in one epoch (90 % top-1)
        bf16=False,  # as below
    ),
    "imagenet": SurrogateRecipe(
        teacher="efficientnet_lite0", data="imagenet-dev", holdout="imagenet-dev", folder_rows="even", photos=True,
        augmentation="strong", features=("stage3", "stage5", "head"), width=32, epochs=60, batch_size=32,
        bf16=False,  # the trainable part is small and the teacher runs in float32: bfloat16 only slows the CPU
        stored_dtype="bfloat16",  # 3.2 M parameters: 6 MB instead of 12
        blocks=(1, 1, 1, 1), stem_stride=4,  # the paper's student, with --features none
        holdout_limit=250,
    ),
}


def preset(name: str, raw_data=None, **changes) -> SurrogateRecipe:
    """A named recipe; the folder name ``imagenet-dev`` is resolved inside ``$JAXPLAIN_DATA``."""
    from jaxplain.data import raw_data_dir

    recipe = PRESETS[name]
    root = raw_data_dir(raw_data)
    resolve = lambda spec: str(root / spec) if spec == "imagenet-dev" and root else spec
    recipe = dataclasses.replace(recipe, data=resolve(recipe.data), holdout=resolve(recipe.holdout))
    return dataclasses.replace(recipe, **changes)


def distillation_losses(student_logits, teacher_logits, labels, alpha: float, temperature: float):
    """``alpha * t^2 * KL(teacher_t || student_t) + (1 - alpha) * CE(student, labels)`` per example."""
    t = temperature
    soft = optax.kl_divergence(jax.nn.log_softmax(student_logits / t), jax.nn.softmax(teacher_logits / t)) * t ** 2
    hard = optax.softmax_cross_entropy_with_integer_labels(student_logits, labels)
    return alpha * soft + (1.0 - alpha) * hard


def training_images(recipe: SurrogateRecipe, size: int, *, data_dir=None, raw_data=None):
    """``(uint8 images, labels)``: a TFDS split as it is, or a folder's rows resized and centre-cropped to ``size``."""
    spec = DataSpec.parse(recipe.data)
    if spec.kind == "folder":
        source = FolderSource(spec.name)
        rows = np.arange(0, len(source), 2 if recipe.folder_rows == "even" else 1)[: recipe.limit]
        keep = Preprocessing(resize=size, crop=size)
        records = [source[int(i)] for i in rows]
        images = [np.round(keep(r["image"]) * 255).astype(np.uint8) for r in records]
        labels = [int(r["label"]) for r in records]
        if recipe.photos:
            import skimage.data

            from jaxplain.assets import PHOTOS

            images += [np.round(keep(getattr(skimage.data, n)()) * 255).astype(np.uint8) for n in PHOTOS]
            labels += [-1] * len(PHOTOS)  # no label: the teacher's prediction is used as the hard label
        return np.stack(images), np.asarray(labels, np.int32)
    source, _ = open_source(recipe.data, data_dir=data_dir, raw_data=raw_data)
    rows = np.arange(len(source) if recipe.limit is None else min(recipe.limit, len(source)))
    batch = load_arrays(source, rows, None, description="training images")
    return batch.images, batch.labels


def holdout_images(recipe: SurrogateRecipe, model, *, data_dir=None, raw_data=None):
    """Held-out images at the teacher's input size: the odd rows of a folder, or a test split."""
    spec = DataSpec.parse(recipe.holdout)
    if spec.kind == "folder":
        source = FolderSource(spec.name)
        rows = np.arange(1, len(source), 2)[: recipe.holdout_limit]
    else:
        source, _ = open_source(recipe.holdout, data_dir=data_dir, raw_data=raw_data)
        rows = np.arange(min(recipe.holdout_limit, len(source)))
    batch = load_arrays(source, rows, model.preprocessing, description="held-out images")
    return batch.images, batch.labels


def train(recipe: SurrogateRecipe, out: str | Path, workdir: str | Path, *, data_dir=None, raw_data=None,
          command: str = "") -> dict:
    """Trains the surrogate of ``recipe.teacher``, reports it on held-out images, writes the artefact."""
    from jaxplain.zoo import load_model

    teacher = load_model(recipe.teacher)
    side = teacher.input_shape[0]
    stored = side if recipe.augmentation == "crop_flip" else round(side * 256 / 224)
    names = tuple(recipe.features)
    valid = feature_names(teacher)
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise UsageError(f"{recipe.teacher} has no feature {', '.join(unknown)}; valid: {', '.join(valid)}")
    images, labels = training_images(recipe, stored, data_dir=data_dir, raw_data=raw_data)
    dtype = jnp.bfloat16 if recipe.bf16 else jnp.float32
    network = (FeatureSurrogate(teacher.num_classes, recipe.width, dtype) if names else
               Surrogate(teacher.num_classes, recipe.width, tuple(recipe.blocks), recipe.stem_stride, dtype))
    key = jax.random.key(recipe.seed)
    blank = jnp.zeros((1, *teacher.input_shape))
    variables = jax.jit(lambda k: network.init(
        k, blank, teacher_outputs(names, teacher.apply_fn, teacher.params, blank)[1], train=False))(key)
    steps_per_epoch = max(1, len(images) // recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    schedule = optax.cosine_decay_schedule(recipe.learning_rate, total)
    optimizer = optax.chain(optax.add_decayed_weights(recipe.weight_decay),
                            optax.sgd(schedule, momentum=0.9, nesterov=True))
    fill = jnp.asarray(teacher.zero_pixel)

    def augmented(step_key, raw):
        x = raw.astype(jnp.float32) / 255.0
        crop_key, flip_key, colour_key = jax.random.split(step_key, 3)
        if recipe.augmentation == "strong":
            x = augment.random_resized_crop(crop_key, x, side)
            x = augment.colour_jitter(colour_key, augment.random_flip(flip_key, x))
        else:
            x = augment.random_flip(flip_key, augment.random_crop(crop_key, x, max(1, side // 8)))
        return x

    def loss_fn(params, model_state, batch, step_key, teacher_params):
        x = augmented(step_key, batch["images"])
        teacher_logits, features = teacher_outputs(names, teacher.apply_fn, teacher_params, x)
        hard = jnp.where(batch["labels"] >= 0, batch["labels"], jnp.argmax(teacher_logits, -1))
        (student_logits, maps), updates = network.apply({"params": params, **model_state}, x, features, train=True,
                                                        mutable=["batch_stats"])
        distil = distillation_losses(student_logits, teacher_logits, hard, recipe.alpha, recipe.temperature)
        explain = explanation_loss(teacher.apply_fn, teacher_params, x, maps, teacher_logits, fill)
        sparsity = sparsity_loss(maps, recipe.l1)
        loss = jnp.mean(distil + explain + sparsity)
        removal = {}
        if recipe.deletion:
            removal["deletion"] = deletion_loss(teacher.apply_fn, teacher_params, x, maps, jnp.argmax(teacher_logits, -1),
                                               fill).mean()
            loss = loss + recipe.deletion * removal["deletion"]
        agreement = jnp.mean(jnp.argmax(student_logits, -1) == jnp.argmax(teacher_logits, -1))
        return loss, (dict(updates), {
            "distillation": distil.mean(), "explanation": explain.mean(), "map_mean": maps.mean(),
            "agreement": agreement, **removal})

    batches = shuffled_batches({"images": images, "labels": labels}, recipe.batch_size, steps_per_epoch, recipe.seed)

    held_images, held_labels = holdout_images(recipe, teacher, data_dir=data_dir, raw_data=raw_data)

    @jax.jit
    def held_out_predictions(variables, teacher_params, x):
        teacher_logits, features = teacher_outputs(names, teacher.apply_fn, teacher_params, x)
        student_logits, maps = network.apply(variables, x, features)
        return jnp.argmax(student_logits, -1), jnp.argmax(teacher_logits, -1), maps.mean((1, 2))

    def evaluate(state) -> dict:
        variables = {"params": state.params, **state.model_state}
        parts = [held_out_predictions(variables, teacher.params, held_images[s:s + 100])
                 for s in range(0, len(held_images), 100)]
        student, teacher_top1, map_mean = (np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(3))
        return {"student_top1": float(np.mean(student == held_labels)),
                "teacher_top1": float(np.mean(teacher_top1 == held_labels)),
                "agreement": float(np.mean(student == teacher_top1)), "map_mean": float(map_mean.mean())}

    state = create_state(variables["params"], {k: v for k, v in variables.items() if k != "params"}, optimizer)
    state = fit(state, make_train_step(loss_fn, optimizer, constants=teacher.params), batches, epochs=recipe.epochs,
                steps_per_epoch=steps_per_epoch, workdir=workdir, key=key, evaluate=evaluate,
                checkpoint_every=max(steps_per_epoch, 1), description=f"surrogate of {recipe.teacher}")
    seconds = training_seconds(workdir)  # every process of a resumed run
    shipped = cast_floats({"params": state.params, **state.model_state}, recipe.stored_dtype)
    rounded = cast_floats(shipped, "float32")  # the report is of the weights as shipped
    report = evaluate(state.replace(params=rounded.pop("params"), model_state=rounded))
    config = {"architecture": type(network).__name__, "teacher": recipe.teacher, "num_classes": teacher.num_classes,
              "features": list(names), "width": recipe.width, "blocks": list(recipe.blocks),
              "stem_stride": recipe.stem_stride,
              "recipe": dataclasses.asdict(recipe), "train_images": int(len(images)),
              "holdout_images": int(len(held_images)), **report, "train_seconds": seconds,
              "device": jax.devices()[0].device_kind, "device_count": jax.device_count(), "command": command}
    save_artefact(out, shipped, config)
    return config
