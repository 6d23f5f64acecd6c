"""Training the audio teacher ``spoken_digits_cnn`` on the espeak-ng spoken digits (tfds:spoken_digits).

Clips are turned into log-mel spectrograms once on the host (:class:`jaxplain.audio.AudioFrontend`,
90 MB for the train split); augmentation runs on the device inside the jitted step: a random time
shift (silence shifted in) and SpecAugment's masks (Park et al., 2019: ``freq_masks`` bands of up to
``freq_mask`` mel bins and ``time_masks`` spans of up to ``time_mask`` frames set to silence).
AdamW with a warm-up and cosine decay. Accuracy is reported on the ``test`` split, whose speaker
variants never occur in training.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxplain.audio import AudioFrontend
from jaxplain.data import open_source
from jaxplain.data.loader import load_arrays
from jaxplain.data.speech import WORDS
from jaxplain.models.speech_cnn import SpeechCNN
from jaxplain.train.checkpoints import save_artefact
from jaxplain.train.loop import create_state, fit, make_train_step, shuffled_batches, training_seconds


@dataclasses.dataclass(frozen=True)
class SpeechRecipe:
    widths: tuple[int, int, int] = (16, 32, 64)
    epochs: int = 15
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    time_shift: int = 8  # frames
    freq_masks: int = 2
    freq_mask: int = 8  # mel bins
    time_masks: int = 2
    time_mask: int = 12  # frames
    seed: int = 0
    train_data: str = "tfds:spoken_digits:train"
    test_data: str = "tfds:spoken_digits:test"
    limit: int | None = None  # train on the first N clips only (smoke tests)


def spec_augment(key, x: jax.Array, recipe: SpeechRecipe) -> jax.Array:
    """Random time shift and SpecAugment masks of a batch ``[B, T, F, 1]`` (silence = 0)."""
    batch, frames, bins, _ = x.shape
    shift_key, *mask_keys = jax.random.split(key, 1 + recipe.freq_masks + recipe.time_masks)
    shifts = jax.random.randint(shift_key, (batch,), -recipe.time_shift, recipe.time_shift + 1)
    t = jnp.arange(frames)[None, :] - shifts[:, None]  # source frame of each output frame
    x = jnp.where(((t >= 0) & (t < frames))[..., None, None],
                  jnp.take_along_axis(x, jnp.clip(t, 0, frames - 1)[..., None, None], axis=1), 0.0)

    def band(k, size, length, axis_len):
        width_key, start_key = jax.random.split(k)
        width = jax.random.randint(width_key, (batch, 1), 0, size + 1)
        start = jax.random.randint(start_key, (batch, 1), 0, axis_len)
        position = jnp.arange(axis_len)[None, :]
        return (position >= start) & (position < start + width)

    keep = jnp.ones((batch, frames, bins), bool)
    for k in mask_keys[: recipe.freq_masks]:
        keep &= ~band(k, recipe.freq_mask, bins, bins)[:, None, :]
    for k in mask_keys[recipe.freq_masks:]:
        keep &= ~band(k, recipe.time_mask, frames, frames)[:, :, None]
    return x * keep[..., None]


def train(recipe: SpeechRecipe, out: str | Path, workdir: str | Path, *, data_dir=None, command: str = "") -> dict:
    """Trains, evaluates on the held-out voices and writes the artefact to ``out``; returns its config."""
    frontend = AudioFrontend()
    train_source, _ = open_source(recipe.train_data, num_classes=len(WORDS), data_dir=data_dir)
    test_source, _ = open_source(recipe.test_data, num_classes=len(WORDS), data_dir=data_dir)
    indices = np.arange(len(train_source) if recipe.limit is None else min(recipe.limit, len(train_source)))
    train_set = load_arrays(train_source, indices, frontend, description="train clips")
    test_set = load_arrays(test_source, None, frontend, description="test clips")
    model = SpeechCNN(num_classes=len(WORDS), widths=recipe.widths)
    key = jax.random.key(recipe.seed)
    variables = model.init(key, jnp.zeros((1, *frontend.input_shape)), train=False)
    steps_per_epoch = len(indices) // recipe.batch_size
    total = recipe.epochs * steps_per_epoch
    schedule = optax.warmup_cosine_decay_schedule(0.0, recipe.learning_rate, max(1, total // 20), total)
    optimizer = optax.adamw(schedule, weight_decay=recipe.weight_decay)

    def loss_fn(params, model_state, batch, step_key):
        augment_key, dropout_key = jax.random.split(step_key)
        inputs = spec_augment(augment_key, batch["inputs"], recipe)
        logits, updates = model.apply({"params": params, **model_state}, inputs, train=True,
                                      mutable=["batch_stats"], rngs={"dropout": dropout_key})
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"]).mean()
        accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["labels"])
        return loss, ({"batch_stats": updates["batch_stats"]}, {"train_accuracy": accuracy})

    batches = shuffled_batches({"inputs": train_set.images, "labels": train_set.labels}, recipe.batch_size,
                               steps_per_epoch, recipe.seed)

    @jax.jit
    def predict(variables, x):
        return jnp.argmax(model.apply(variables, x), -1)

    def evaluate(state) -> dict:
        variables = {"params": state.params, **state.model_state}
        hits = sum(int(jnp.sum(predict(variables, test_set.images[s:s + 256]) == test_set.labels[s:s + 256]))
                   for s in range(0, len(test_set.labels), 256))
        return {"test_accuracy": hits / len(test_set.labels)}

    state = create_state(variables["params"], {"batch_stats": variables["batch_stats"]}, optimizer)
    state = fit(state, make_train_step(loss_fn, optimizer), batches, epochs=recipe.epochs,
                steps_per_epoch=steps_per_epoch, workdir=workdir, key=key, evaluate=evaluate,
                checkpoint_every=max(steps_per_epoch * 2, 1), description="spoken_digits_cnn")
    seconds = training_seconds(workdir)  # every process of a resumed run
    config = {
        "architecture": "SpeechCNN", "widths": list(recipe.widths), "num_classes": len(WORDS),
        "class_names": list(WORDS), "frontend": dataclasses.asdict(frontend), "recipe": dataclasses.asdict(recipe),
        "test_accuracy": evaluate(state)["test_accuracy"], "test_clips": int(len(test_set.labels)),
        "train_clips": int(len(indices)), "train_seconds": seconds, "device": jax.devices()[0].device_kind,
        "device_count": jax.device_count(), "command": command,
    }
    save_artefact(out, {"params": state.params, **state.model_state}, config)
    return config
