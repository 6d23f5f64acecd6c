"""Can one forward pass learn what per-image refinement finds? Fine-tunes a trained surrogate on its own refined maps.

Refining (``surrogate`` with ``refine_steps`` K; :func:`jaxplain.explainers.surrogate.refine_maps`) makes the
surrogate's maps about as faithful as RISE's at K x 6 teacher passes per map. This script amortizes it again:

1. refines the shipped surrogate's maps on ``--images`` training images (the teacher's predicted class; resumable,
   one ``.npy`` file per chunk under ``--work``);
2. fine-tunes the surrogate (attention modules, head and explanation network; the teacher stays frozen) with Adam
   to reproduce those maps (binary cross-entropy per pixel) while its student keeps distilling the teacher
   (the paper's alpha-weighted KL and cross-entropy), on the same images with horizontal flips;
3. writes the result as a surrogate artefact (``config.json`` and ``variables``, floats stored as the start's) to
   ``--out``, which ``surrogate(checkpoint=...)`` loads like the shipped one.

    python experiments/distil_refined_maps.py --model cifar10_resnet_small --data tfds:cifar10_jpeg:train \\
        --images 4096 --out runs/surrogate_cifar10_distilled_k10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from jaxplain.artefacts import artefact_config, project_checkpoints
from jaxplain.data import open_source
from jaxplain.data.loader import load_arrays
from jaxplain.errors import UsageError
from jaxplain.explainers.base import ModelHandle
from jaxplain.explainers.surrogate import refine_maps
from jaxplain.nets.surrogate import teacher_outputs
from jaxplain.train import augment
from jaxplain.train.checkpoints import cast_floats, save_artefact
from jaxplain.train.surrogate_trainer import SurrogateRecipe, distillation_losses
from jaxplain.zoo import load_model, load_surrogate


@dataclasses.dataclass(frozen=True)
class Settings:
    refine_steps: int = 10
    chunk: int = 64
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    alpha: float = SurrogateRecipe.alpha  # the distillation term as the surrogate was trained with it
    temperature: float = SurrogateRecipe.temperature
    seed: int = 0


def random_views(images: np.ndarray, views: int, seed: int) -> np.ndarray:
    """``views`` random resized crops of every image (``[N * views, H, W, C]``, image-major), each flipped at random:
    more distinct inputs from a small set of photos."""
    side = images.shape[1]
    keys = jax.random.split(jax.random.key(seed), 2 * views)
    crops = [augment.random_flip(keys[2 * v + 1], augment.random_resized_crop(keys[2 * v], jnp.asarray(images), side))
             for v in range(views)]
    return np.asarray(jnp.stack(crops, 1).reshape(-1, *images.shape[1:]))


def refined_targets(teacher, handle, images: np.ndarray, work: Path, s: Settings) -> np.ndarray:
    """The surrogate's maps refined with ``s.refine_steps`` steps, chunk by chunk; chunks already on disk are kept."""
    model = ModelHandle.of(teacher)

    @jax.jit
    def refine(x):
        predicted = jnp.argmax(model.logits(teacher.params, x), -1)
        maps = handle(teacher.apply_fn, teacher.params, x)[1].astype(jnp.float32)
        return refine_maps(model, teacher.params, x, maps, predicted, steps=s.refine_steps)

    work.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in tqdm(range(0, len(images), s.chunk), desc="refining", unit="chunk"):
        path = work / f"targets-{start:06d}.npy"
        if not path.exists():
            part = np.asarray(refine(jnp.asarray(images[start:start + s.chunk])))
            np.save(path.with_suffix(".tmp.npy"), part)
            path.with_suffix(".tmp.npy").rename(path)
        parts.append(np.load(path))
    return np.concatenate(parts)


def fine_tune(teacher, handle, images: np.ndarray, targets: np.ndarray, s: Settings):
    """Adam on ``BCE(H, target) + distillation`` over ``images`` with flips; returns the surrogate's variables."""
    params, frozen = handle.variables["params"], {k: v for k, v in handle.variables.items() if k != "params"}
    optimiser = optax.adam(s.learning_rate)

    def loss_fn(params, x, target):
        teacher_logits, features = teacher_outputs(handle.features, teacher.apply_fn, teacher.params, x)
        student_logits, maps = handle.module.apply({"params": params, **frozen}, x, features)
        maps = jnp.clip(maps.astype(jnp.float32), 1e-6, 1 - 1e-6)
        bce = -(target * jnp.log(maps) + (1 - target) * jnp.log1p(-maps)).mean((1, 2))
        distil = distillation_losses(student_logits, teacher_logits, jnp.argmax(teacher_logits, -1), s.alpha,
                                     s.temperature)
        return jnp.mean(bce + distil), bce.mean()

    @jax.jit
    def step(params, opt_state, x, target, flip):
        x = jnp.where(flip[:, None, None, None], x[:, :, ::-1], x)
        target = jnp.where(flip[:, None, None], target[:, :, ::-1], target)
        (_, bce), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, target)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, bce

    steps = len(images) // s.batch_size
    if not steps:
        raise UsageError(f"{len(images)} images make no batch of --batch-size {s.batch_size}; lower it")
    rng = np.random.default_rng(s.seed)
    opt_state = optimiser.init(params)
    progress = tqdm(range(s.epochs), desc="fine-tuning", unit="epoch")
    for _ in progress:
        order = rng.permutation(len(images))
        losses = []
        for i in range(steps):
            rows = order[i * s.batch_size:(i + 1) * s.batch_size]
            flip = rng.random(len(rows)) < 0.5
            params, opt_state, bce = step(params, opt_state, images[rows], targets[rows], flip)
            losses.append(float(bce))
        progress.set_postfix(bce=f"{np.mean(losses):.4f}")
    return {"params": params, **frozen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cifar10_resnet_small")
    parser.add_argument("--data", default="tfds:cifar10_jpeg:train", help="training images: TFDS split or folder")
    parser.add_argument("--images", type=int, default=4096, help="the first N images of --data")
    parser.add_argument("--views", type=int, default=1,
                        help="with V > 1, V random resized crops of each image (scale 0.25-1, flipped at random), "
                             "each refined and fitted as an image of its own")
    parser.add_argument("--checkpoint", help="surrogate to start from (default: the shipped one for the model)")
    parser.add_argument("--work", type=Path, help="refined maps, resumable (default: OUT-targets)")
    parser.add_argument("--out", type=Path, required=True)
    for field in dataclasses.fields(Settings):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default)
    args = parser.parse_args()
    s = Settings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)})

    teacher = load_model(args.model)
    handle = load_surrogate(args.model, args.checkpoint)
    source, _ = open_source(args.data)
    batch = load_arrays(source, np.arange(min(args.images, len(source))), teacher.preprocessing,
                        description="training images")
    images = batch.images if args.views == 1 else random_views(batch.images, args.views, s.seed)
    targets = refined_targets(teacher, handle, images, args.work or Path(f"{args.out}-targets"), s)
    variables = fine_tune(teacher, handle, images, targets, s)
    start = args.checkpoint or f"checkpoints/surrogate_{args.model}"
    config = artefact_config(args.checkpoint or project_checkpoints() / f"surrogate_{args.model}") | {
        "distilled_from_refined_maps": dataclasses.asdict(s) | {"start": start, "data": args.data,
                                                               "images": int(len(batch.images)), "views": args.views},
        "command": "python " + " ".join(sys.argv)}
    stored = config.get("recipe", {}).get("stored_dtype", "float32")  # as the start was shipped
    save_artefact(args.out, cast_floats(jax.device_get(variables), stored), config)
    print(json.dumps(config["distilled_from_refined_maps"]))


if __name__ == "__main__":
    main()
