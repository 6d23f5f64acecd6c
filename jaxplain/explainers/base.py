"""The explainer contract, optax-style: a factory of hyper-parameters returns a pair of pure functions.

::

    explainer = jaxplain.explainers.get("rise", num_masks=4000)
    state = explainer.init(key, model, sample_images)        # learned parts (VAE, surrogate) + model handle
    maps = explainer.explain(state, params, images, labels, key=key)   # f32[B, H, W], higher = more important

``explain`` is pure and jit-able; ``params`` are the teacher's variables, passed explicitly. ``key``
is one PRNG key for the call (split per example with ``fold_in(key, position)``) or one key per
example (shape ``[B]``), which lets jobs make each image's randomness depend on its dataset index only,
so maps do not change with the batch size or device count. Amortized methods add ``update``;
methods with diagnostics (e.g. re-label distillation's class balance and student fidelity) add
``details``, which returns ``(maps, {name: [B] array})``. Every explainer carries the settings it was
built from (``settings``), whose :meth:`~jaxplain.explainers.settings.Settings.resolve` says what its
input-dependent defaults stand for, so a run folder records every value. Methods that need host code per image
(superpixels with scikit-image: LIME, DAX) add ``prepare(images) -> {name: [B, ...] array}``, run on
the host before the compiled call; ``explain`` then takes those arrays as keyword arguments (and,
called without them, computes them itself through ``jax.pure_callback``). Keeping host callbacks
out of the compiled program keeps it portable, and avoids a hang of XLA's CPU runtime when a
callback runs beside a large model on a single core.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxplain.errors import UsageError
from jaxplain.model import log_probabilities_of, probabilities_of

Array = jax.Array


@struct.dataclass
class ModelHandle:
    """What an explainer needs to know of a teacher besides its params; static under ``jit``."""

    apply_fn: Callable = struct.field(pytree_node=False)
    zero_pixel: tuple[float, float, float] = struct.field(pytree_node=False)
    num_classes: int = struct.field(pytree_node=False)
    input_shape: tuple[int, int, int] = struct.field(pytree_node=False)

    @classmethod
    def of(cls, model) -> "ModelHandle":
        return cls(model.apply_fn, tuple(model.normalisation.zero_pixel), model.num_classes, model.input_shape)

    def logits(self, params, images: Array) -> Array:
        return self.apply_fn(params, images)[0]

    def probabilities(self, params, images: Array) -> Array:
        return probabilities_of(self.apply_fn, params, images)

    def log_probabilities(self, params, images: Array) -> Array:
        return log_probabilities_of(self.apply_fn, params, images)


@struct.dataclass
class State:
    """Explainer state: the model handle plus any learned pytree (``None`` for stateless methods)."""

    model: ModelHandle
    learned: Any = None


class Explainer(NamedTuple):
    name: str
    init: Callable[..., State]
    explain: Callable[..., Array]
    update: Callable | None = None
    needs_taps: bool = False  # differentiates with respect to a named feature (model taps)
    details: Callable | None = None  # like explain, but returns (maps, {diagnostic: [B]})
    prepare: Callable | None = None  # host step: images (numpy) -> {name: [B, ...]} passed to explain
    settings: Any = None  # the Settings it was built from


def stateless(settings, explain: Callable, *, needs_taps: bool = False, prepare: Callable | None = None) -> Explainer:
    """An explainer with nothing to learn: ``init`` only records the model handle."""

    def init(key, model, sample=None) -> State:
        del key, sample
        return State(ModelHandle.of(model))

    return Explainer(settings.method, init, explain, needs_taps=needs_taps, prepare=prepare, settings=settings)


def per_example_keys(key: Array, batch: int) -> Array:
    """One key per example: ``fold_in(key, i)`` for a single key, or the keys themselves if given ``[B]``."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    single = key.ndim == 0 if typed else key.ndim == 1
    if single:
        return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(batch))
    return key


def map_images(fn: Callable, *batched):
    """``fn(*example)`` for each example along the leading axis of ``batched``, one after another.

    Sample-streaming methods (RISE, LIME, occlusion, Score-CAM, re-label distillation, DAX) map over
    the images of a batch with this instead of ``vmap``, so their peak memory is one image's ``chunk``
    of teacher inputs whatever the batch size (``vmap`` would hold ``batch x chunk`` at once). Under
    :func:`jaxplain.parallel.run_sharded` with ``per_device=True`` each device walks its own shard.
    """
    return jax.lax.map(lambda example: fn(*example), batched)


def each_image(one: Callable, images, labels, key=None, *extras, sequential: bool = True):
    """``one(image, label, key, *extra)`` for every image of a batch, with its own key (:func:`per_example_keys`;
    ``key=None`` passes ``None``): image after image (:func:`map_images`, memory of one image) or, with
    ``sequential=False``, all at once (``vmap``). The per-image wrapper every per-image explainer uses."""
    keys = per_example_keys(key, images.shape[0]) if key is not None else None
    if keys is None:
        fn = lambda image, label, *rest: one(image, label, None, *rest)
        batched = (images, labels, *extras)
    else:
        fn, batched = one, (images, labels, keys, *extras)
    return map_images(fn, *batched) if sequential else jax.vmap(fn)(*batched)


def minimise(loss: Callable, params, optimiser, steps: int, *, opt_state=None, xs=None, project: Callable | None = None):
    """``steps`` optax updates of ``params`` on ``loss(params)`` (or ``loss(params, x)`` for each ``x`` of ``xs``) in
    one ``lax.scan``, each followed by ``project`` (a clamp, ...) when given; returns ``(params, opt_state)``. The one
    fitting loop of the per-image optimisation methods (GFI, extremal perturbation, relabel's student, the
    surrogate's refinement)."""
    opt_state = optimiser.init(params) if opt_state is None else opt_state

    def step(carry, x):
        params, opt_state = carry
        grads = jax.grad(loss)(params) if xs is None else jax.grad(loss)(params, x)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params if project is None else project(params), opt_state), None

    (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), xs, length=None if xs is not None else steps)
    return params, opt_state


def require_feature(features: dict, layer: str) -> Array:
    """``features[layer]``, or a :class:`~jaxplain.errors.UsageError` that lists the names the model has."""
    if layer not in features:
        raise UsageError(f"the model has no feature {layer!r}; choose one of: {', '.join(sorted(features))} "
                         "(set it with --set METHOD.layer=NAME)")
    return features[layer]


def select(logits: Array, labels: Array) -> Array:
    """``logits[b, labels[b]]`` for a batch."""
    return jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]


def resize_maps(maps: Array, size: tuple[int, int], method: str = "bilinear") -> Array:
    """Resizes ``[B, h, w]`` maps to ``[B, *size]`` (half-pixel centres, like OpenCV and PyTorch)."""
    return jax.image.resize(maps, (maps.shape[0], *size), method=method)
