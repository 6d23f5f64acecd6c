"""Shared fixtures: a tiny Flax classifier (fast on a 2-core CPU), real photos, the shared data folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# One persistent compilation cache per test session, shared by the xdist workers and the CLI subprocesses the
# tests start: the tests compile the same small programs many times (each training run, each subprocess), and
# a cached executable is the one XLA would build again. Made fresh per session, so CI measures a cold start.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxplain-tests-jit-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxplain.model import UNIT_RANGE, Preprocessing, from_linen  # noqa: E402
from jaxplain.models.layers import tap  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))


def pytest_unconfigure(config):
    """The session's compilation cache goes with the process that made it (the xdist controller)."""
    if _OWN_CACHE:
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


SHARED_DATA = Path(os.environ.get("JAXPLAIN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


class TinyNet(nn.Module):
    """Two convolutions and a linear head; exposes ``conv1`` and ``head`` features."""

    num_classes: int = 5

    @nn.compact
    def __call__(self, x):
        h = tap(self, "conv1", nn.relu(nn.Conv(8, (3, 3), strides=2)(x)))
        h = tap(self, "head", nn.relu(nn.Conv(16, (3, 3), strides=2)(h)))
        return nn.Dense(self.num_classes)(h.mean(axis=(1, 2)))


def make_tiny_model(size: int = 16, num_classes: int = 5, seed: int = 0):
    module = TinyNet(num_classes)
    variables = module.init(jax.random.key(seed), jnp.zeros((1, size, size, 3)))
    return from_linen("tiny", module, variables, class_names=[f"class{i}" for i in range(num_classes)],
                      preprocessing=Preprocessing(size, size), normalisation=UNIT_RANGE)


def custom_method(name: str, explain, details=None):
    """A registry entry for a method written in a test (no settings): register it with
    ``monkeypatch.setitem(jaxplain.explainers.METHODS, name, custom_method(name, explain))``."""
    import dataclasses

    from jaxplain.explainers import Explainer, Method, ModelHandle, Preset, Settings, State

    settings_class = dataclasses.make_dataclass(f"{name}_settings", [], bases=(Settings,), frozen=True,
                                                namespace={"method": name})

    def build(settings):
        init = lambda key, model, sample=None: State(ModelHandle.of(model))
        return Explainer(name, init, explain, details=details, settings=settings)

    return Method(name, build, {"default": Preset(settings_class(), "a method written in a test")}, "a test method")


def write_labelled_folder(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` random 20x20 PNG images and a ``labels.tsv`` (class ``i % 5``) in ``root``, created."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    rows = ["file\tclass_index"]
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / f"{i}.png")
        rows.append(f"{i}.png\t{i % 5}")
    (root / "labels.tsv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_model():
    return make_tiny_model()


@pytest.fixture(scope="session")
def tiny_images():
    return np.random.default_rng(0).uniform(size=(3, 16, 16, 3)).astype(np.float32)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "imagenet-dev" / "labels.tsv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}; set JAXPLAIN_DATA to the folder with imagenet-dev/")
    return SHARED_DATA


@pytest.fixture(scope="session")
def teacher():
    from jaxplain.zoo import load_model

    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def photos(teacher):
    """Two real photos from scikit-image at the teacher's input size, float [0, 1]."""
    import skimage.data

    from jaxplain.images import resize_and_crop, to_unit_float

    return np.stack([to_unit_float(resize_and_crop(getattr(skimage.data, n)(), teacher.preprocessing))
                     for n in ("chelsea", "coffee")])
