"""The model contract: a classifier is a pure apply function plus the variables it is applied to.

Every explainer, metric and command sees a teacher only through :class:`Model`::

    logits, features = model.apply_fn(model.params, images)            # images: f32[B, H, W, 3] in [0, 1]
    logits, features = model.apply_fn(model.params, images, taps)      # taps: {feature name: additive array}

Images are RGB in ``[0, 1]`` at the model's input size; the model's own normalisation happens inside
``apply_fn``, so explainers never need to know it. ``features`` maps names to intermediate
activations. ``taps`` adds arrays to named features, which lets white-box methods differentiate with
respect to a feature (``jax.grad`` of the logits in the tap, at a zero tap). Params stay arguments,
never constants captured in a compiled graph, so one compiled explainer serves any weights (the
model-randomisation sanity check relies on this).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx
from flax.traverse_util import flatten_dict

from jaxplain.errors import UsageError
from jaxplain.images import Preprocessing

TAPS = "taps"  # the variable collection through which a caller adds arrays to named features

Array = jax.Array
Params = Any
ApplyFn = Callable[..., tuple[Array, dict[str, Array]]]


@dataclasses.dataclass(frozen=True)
class Normalisation:
    """Maps [0, 1] inputs to the network's input space: ``(x * 255 - mean) / std`` per channel (0-255 units)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, images: Array) -> Array:
        dtype = images.dtype if jnp.issubdtype(images.dtype, jnp.floating) else jnp.float32
        return (images * 255.0 - jnp.asarray(self.mean, dtype)) / jnp.asarray(self.std, dtype)  # in the input's dtype

    @property
    def zero_pixel(self) -> tuple[float, ...]:
        """The [0, 1] colour that normalises to zero: the "mean colour" used to delete pixels."""
        return tuple(m / 255.0 for m in self.mean)


IMAGENET_MEAN_STD = Normalisation(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
CENTRED_127 = Normalisation(mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0))
UNIT_RANGE = Normalisation(mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))
SPECTROGRAM = Normalisation(mean=(0.0,), std=(255.0,))  # one channel in [0, 1], used as it is; zero = silence


@dataclasses.dataclass(frozen=True)
class Model:
    """A classifier as data: ``apply_fn`` (pure) and ``params`` (a pytree), plus what callers need to feed it."""

    name: str
    apply_fn: ApplyFn
    params: Params
    class_names: tuple[str, ...]
    preprocessing: Preprocessing  # or any object with input_shape, __call__(record) and load(path)
    normalisation: Normalisation
    supports_taps: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.preprocessing.input_shape)

    @property
    def zero_pixel(self) -> Array:
        """The colour that normalises to zero, shape [3]: deletion fills removed pixels with it."""
        return jnp.asarray(self.normalisation.zero_pixel, jnp.float32)

    def logits(self, params: Params, images: Array) -> Array:
        return self.apply_fn(params, images)[0]

    def replace(self, **changes) -> "Model":
        return dataclasses.replace(self, **changes)


def _flat_features(tree) -> dict[str, Array]:
    """``sow`` stores tuples in nested dicts; features are exposed flat as ``"outer/inner"``."""
    flat = flatten_dict(tree, sep="/") if tree else {}
    return {name: value[-1] if isinstance(value, tuple) else value for name, value in flat.items()}


def from_linen(
    name: str,
    module: nn.Module,
    variables: Params,
    *,
    class_names,
    preprocessing: Preprocessing,
    normalisation: Normalisation,
) -> Model:
    """Wraps a Linen module whose ``__call__(x)`` returns logits.

    Features are whatever the module records with ``sow("intermediates", ...)``; taps reach features
    recorded with :func:`jaxplain.models.layers.tap`. ``variables`` is the full variable
    dict (``params``, ``batch_stats``, ...); the module is applied in inference mode.
    """
    variables = {k: v for k, v in variables.items() if k not in ("intermediates", TAPS)}

    def apply_fn(params, images, taps=None):
        inputs = normalisation(images)
        collections = dict(params)
        if taps:
            collections[TAPS] = taps
        logits, state = module.apply(collections, inputs, mutable=["intermediates"])
        return logits, _flat_features(state.get("intermediates", {}))

    return Model(name, apply_fn, variables, tuple(class_names), preprocessing, normalisation, supports_taps=True)


def from_nnx(
    name: str,
    module: nnx.Module,
    *,
    class_names,
    preprocessing: Preprocessing,
    normalisation: Normalisation,
) -> Model:
    """Wraps a Flax NNX module whose ``__call__(x)`` returns logits or ``(logits, features)``.

    The module's state becomes ``params`` (split with ``nnx.split``), so it is an argument of every
    compiled function. Put the module in inference mode (``module.eval()``) before wrapping it.
    """
    graphdef, state = nnx.split(module)

    def apply_fn(params, images, taps=None):
        if taps:
            raise UsageError(f"model {name!r} does not support feature taps; use a black-box method")
        out = nnx.merge(graphdef, params)(normalisation(images))
        return out if isinstance(out, tuple) else (out, {})

    return Model(name, apply_fn, state, tuple(class_names), preprocessing, normalisation)


def from_callable(
    name: str,
    fn: Callable,
    params: Params,
    *,
    class_names,
    preprocessing: Preprocessing,
    normalisation: Normalisation,
    supports_taps: bool = False,
) -> Model:
    """Wraps any JAX function ``fn(params, x) -> logits | (logits, features)``.

    If ``supports_taps`` is set, ``fn`` must also accept ``taps`` as a third argument.
    """

    def apply_fn(params, images, taps=None):
        inputs = normalisation(images)
        if taps:
            if not supports_taps:
                raise UsageError(f"model {name!r} does not support feature taps; use a black-box method")
            out = fn(params, inputs, taps)
        else:
            out = fn(params, inputs)
        return out if isinstance(out, tuple) else (out, {})

    return Model(name, apply_fn, params, tuple(class_names), preprocessing, normalisation, supports_taps)


def flip_averaged(model: Model) -> Model:
    """Test-time augmentation as a model: logits averaged over each image and its left-right mirror.

    Spatial features (``[B, H, W, C]``) are averaged after mirroring the second pass back, and a tap
    is added, mirrored, to both passes, so feature gradients (Grad-CAM) stay consistent with the
    averaged logits.
    """
    apply = model.apply_fn
    mirror = lambda a: a[:, :, ::-1] if a.ndim == 4 else a

    def apply_fn(params, images, taps=None):
        mirrored_taps = {k: mirror(v) for k, v in taps.items()} if taps else None
        logits, features = apply(params, images, taps)
        logits_m, features_m = apply(params, images[:, :, ::-1], mirrored_taps)
        averaged = {k: 0.5 * (features[k] + mirror(features_m[k])) for k in features}
        return 0.5 * (logits + logits_m), averaged

    return model.replace(apply_fn=apply_fn)


COMPUTE_DTYPES = ("float32", "bfloat16", "float16")


def computing_in(model: Model, dtype: str) -> Model:
    """The model with its forward (and backward) passes computed in ``dtype`` (mixed precision, e.g.
    ``"bfloat16"``): params, images and taps are cast on the way in; logits and features come out in
    float32, so softmaxes, accumulations and maps stay float32. ``"float32"`` returns ``model``."""
    if dtype not in COMPUTE_DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(COMPUTE_DTYPES)}; got {dtype!r}")
    if dtype == "float32":
        return model
    apply = model.apply_fn
    cast = lambda tree: jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)

    def apply_fn(params, images, taps=None):
        logits, features = apply(cast(params), images.astype(dtype), cast(taps) if taps else None)
        return logits.astype(jnp.float32), {k: v.astype(jnp.float32) for k, v in features.items()}

    return model.replace(apply_fn=apply_fn)


def probabilities_of(apply_fn: ApplyFn, params, images: Array) -> Array:
    """Class probabilities ``[B, K]`` of a model contract's ``apply_fn``: softmax in float32, whatever the
    dtype the network computes in. The one softmax every explainer, metric and command uses."""
    return jax.nn.softmax(apply_fn(params, images)[0].astype(jnp.float32), axis=-1)


def log_probabilities_of(apply_fn: ApplyFn, params, images: Array) -> Array:
    """Class log-probabilities ``[B, K]``, computed as :func:`probabilities_of` computes probabilities."""
    return jax.nn.log_softmax(apply_fn(params, images)[0].astype(jnp.float32), axis=-1)


def feature_names(model: Model) -> list[str]:
    """Names of the features ``model`` exposes, found by tracing one input (no FLOPs spent)."""
    sample = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
    _, features = jax.eval_shape(model.apply_fn, model.params, sample)
    return sorted(features)


