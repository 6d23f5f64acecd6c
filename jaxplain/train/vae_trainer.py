"""Training the VAEs of re-label distillation, and measuring how well they reconstruct for a teacher.

Two artefacts are shipped: ``vae_cifar10`` (32x32, for ``cifar10_resnet``) trained on CIFAR-10 train,
and ``vae_imagenet64`` (64x64, for ``efficientnet_lite0``) trained on natural photos available
offline: random crops of half of imagenet-dev (even rows of labels.tsv; odd rows are held out for
the report and for evaluations of the method) and of the scikit-image photos. 64 px keeps the network small
and fast to decode 1000 times per explanation; re-label distillation adds the VAE's change to the
full-resolution image (see :mod:`jaxplain.explainers.relabel`), so detail the VAE cannot hold is kept.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from jaxplain.data import DataSpec, open_source
from jaxplain.data.folder import FolderSource
from jaxplain.data.loader import load_arrays
from jaxplain.nets.vae import VAE, decode, elbo_terms, encode
from jaxplain.train.checkpoints import save_artefact
from jaxplain.train.loop import create_state, fit, make_train_step, shuffled_batches, training_seconds


@dataclasses.dataclass(frozen=True)
class VaeRecipe:
    resolution: int = 32
    latent: int = 256
    widths: tuple[int, ...] = (32, 64, 128)
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 1e-3
    recon_weight: float = 50.0  # 1 / (2 sigma^2) for a Gaussian decoder with sigma = 0.1
    data: tuple[str, ...] = ("tfds:cifar10_jpeg:train",)
    crops_per_image: int = 40  # random crops taken from each image of a folder source
    folder_rows: str = "all"  # "all" or "even": which rows of a folder's labels.tsv to train on
    photos: bool = False  # add random crops of the scikit-image photos
    holdout: str = "tfds:cifar10_jpeg:test"
    teacher: str = "cifar10_resnet_small"
    seed: int = 0
    limit: int | None = None  # images per source (smoke tests)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in images])


def random_crops(rgb: np.ndarray, count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random-resized crops (area 30-100 %, aspect 3/4-4/3, random flip) of one image."""
    image = Image.fromarray(rgb)
    width, height = image.size
    crops = []
    for _ in range(count):
        area = rng.uniform(0.3, 1.0) * width * height
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        w = int(min(width, round(np.sqrt(area * aspect))))
        h = int(min(height, round(np.sqrt(area / aspect))))
        x, y = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
        crop = np.asarray(image.crop((x, y, x + w, y + h)).resize((size, size), Image.BICUBIC))
        crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
    return np.stack(crops)


def training_images(recipe: VaeRecipe, *, data_dir=None, raw_data=None) -> np.ndarray:
    """All training images as uint8 ``[N, r, r, 3]``."""
    rng = np.random.default_rng(recipe.seed)
    parts = []
    for spec in recipe.data:
        source, _ = open_source(spec, data_dir=data_dir, raw_data=raw_data)
        count = len(source) if recipe.limit is None else min(recipe.limit, len(source))
        if DataSpec.parse(spec).kind == "folder":
            rows = range(0, count, 2) if recipe.folder_rows == "even" else range(count)
            parts += [random_crops(source[i]["image"], recipe.crops_per_image, recipe.resolution, rng) for i in rows]
        else:
            parts.append(_resize(load_arrays(source, np.arange(count), description=spec).images, recipe.resolution))
    if recipe.photos:
        import skimage.data

        from jaxplain.assets import PHOTOS

        parts += [random_crops(getattr(skimage.data, n)(), recipe.crops_per_image * 5, recipe.resolution, rng) for n in PHOTOS]
    return np.concatenate(parts)


def holdout_images(recipe: VaeRecipe, model, *, data_dir=None, raw_data=None, count: int = 2000) -> np.ndarray:
    """Held-out images at the teacher's input size (float [0, 1]): odd rows of a folder, or a test split."""
    spec = DataSpec.parse(recipe.holdout)
    if spec.kind == "folder":
        source = FolderSource(spec.name)
        rows = np.arange(1, len(source), 2)[:count]
    else:
        source, _ = open_source(recipe.holdout, data_dir=data_dir, raw_data=raw_data)
        rows = np.arange(min(count, len(source)))
    return load_arrays(source, rows, model.preprocessing, description="held-out images").images


def reconstruction_report(vae: VAE, params, model, images: np.ndarray, batch: int = 250) -> dict:
    """Reconstruction MSE at the VAE's resolution and how often the teacher keeps its top-1 class
    on the reconstruction (decoded at the VAE resolution, resized to the teacher's input size)."""
    @jax.jit
    def one(x):
        small = jax.image.resize(x, (x.shape[0], vae.resolution, vae.resolution, 3), "linear", antialias=True)
        recon = decode(vae, params, encode(vae, params, small)[0])
        full = jax.image.resize(recon, x.shape, "linear")
        same = jnp.argmax(model.logits(model.params, full), -1) == jnp.argmax(model.logits(model.params, x), -1)
        return jnp.mean((recon - small) ** 2, axis=(1, 2, 3)), same

    errors, kept = zip(*(jax.device_get(one(jnp.asarray(images[s:s + batch]))) for s in range(0, len(images), batch)))
    return {"reconstruction_mse": float(np.concatenate(errors).mean()),
            "teacher_keeps_prediction": float(np.concatenate(kept).mean()), "holdout_images": int(len(images))}


PRESETS = {
    "cifar10": VaeRecipe(),
    "imagenet64": VaeRecipe(
        resolution=64, latent=512, widths=(16, 32, 64, 128), epochs=20, crops_per_image=80,
        data=("imagenet-dev",), folder_rows="even", photos=True,
        holdout="imagenet-dev", teacher="efficientnet_lite0",
    ),
}


def preset(name: str, raw_data=None, **changes) -> VaeRecipe:
    """A named recipe; the folder name ``imagenet-dev`` is resolved inside ``$JAXPLAIN_DATA``."""
    from jaxplain.data import raw_data_dir

    recipe = PRESETS[name]
    root = raw_data_dir(raw_data)
    resolve = lambda spec: str(root / spec) if spec == "imagenet-dev" and root else spec
    recipe = dataclasses.replace(recipe, data=tuple(resolve(s) for s in recipe.data), holdout=resolve(recipe.holdout))
    return dataclasses.replace(recipe, **changes)


def train(recipe: VaeRecipe, out: str | Path, workdir: str | Path, *, data_dir=None, raw_data=None, command: str = "") -> dict:
    from jaxplain.zoo import load_model

    images = training_images(recipe, data_dir=data_dir, raw_data=raw_data)
    vae = VAE(recipe.resolution, recipe.latent, tuple(recipe.widths))
    key = jax.random.key(recipe.seed)
    params = vae.init(key, jnp.zeros((1, recipe.resolution, recipe.resolution, 3)), key)
    steps_per_epoch = len(images) // recipe.batch_size
    total = recipe.epochs * steps_per_epoch
    schedule = optax.warmup_cosine_decay_schedule(0.0, recipe.learning_rate, max(1, min(500, total // 10)), total)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-5))

    def loss_fn(params, model_state, batch, step_key):
        x = batch["images"].astype(jnp.float32) / 255.0
        reconstruction, kl = elbo_terms(vae, params, x, step_key, recipe.recon_weight)
        loss = jnp.mean(reconstruction + kl)
        return loss, (model_state, {"reconstruction": reconstruction.mean(), "kl": kl.mean()})

    batches = shuffled_batches({"images": images}, recipe.batch_size, steps_per_epoch, recipe.seed)

    state = fit(create_state(params, {}, optimizer), make_train_step(loss_fn, optimizer), batches,
                epochs=recipe.epochs, steps_per_epoch=steps_per_epoch, workdir=workdir, key=key,
                checkpoint_every=max(steps_per_epoch * 5, 1), description=f"vae{recipe.resolution}")
    seconds = training_seconds(workdir)  # every process of a resumed run
    teacher = load_model(recipe.teacher)
    report = reconstruction_report(vae, state.params, teacher,
                                   holdout_images(recipe, teacher, data_dir=data_dir, raw_data=raw_data))
    config = {"architecture": "VAE", "resolution": recipe.resolution, "latent": recipe.latent,
              "widths": list(recipe.widths), "bottleneck": vae.bottleneck, "recipe": dataclasses.asdict(recipe), "train_images": int(len(images)),
              "train_seconds": seconds, "device": jax.devices()[0].device_kind, "command": command, **report}
    save_artefact(out, state.params, config)
    return config
