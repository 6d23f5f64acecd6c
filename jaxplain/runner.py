"""Running models and explainers over many images: batching, device sharding and per-image keys.

Each image's randomness is ``fold_in(key, i)`` with ``i`` its position in the call (or its dataset
index, when a job passes ``indices``), so a map depends only on the image, the key and the
hyper-parameters: not on the batch size, the device count or the order of batches.
"""

from __future__ import annotations

import functools

import chex

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain import explainers as registry
from jaxplain.errors import UsageError
from jaxplain.explainers.base import Explainer, State
from jaxplain.model import Model, probabilities_of
from jaxplain.parallel import compiled_program, data_mesh, pad_rows, run_sharded
from jaxplain.validation import check_count, check_images, check_key, check_labels


@functools.lru_cache(maxsize=16)
def _probabilities_fn(apply_fn):
    return functools.partial(probabilities_of, apply_fn)


@functools.lru_cache(maxsize=64)
def _explain_fn(explain):
    def call(state, params, images, labels, keys, prepared):
        return explain(state, params, images, labels, key=keys, **prepared)

    return call


def host_inputs(explainer: Explainer, images: np.ndarray) -> dict:
    """The explainer's host-side inputs for a batch (superpixels, ...), or ``{}``."""
    return explainer.prepare(np.asarray(images)) if explainer.prepare is not None else {}


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def as_model(model) -> Model:
    """``model`` itself, or the zoo's teacher of that name; anything else is a :class:`UsageError`."""
    if isinstance(model, str):
        from jaxplain.zoo import load_model

        return load_model(model)
    if not isinstance(model, Model):
        raise UsageError(f"model must be a jaxplain.Model (jaxplain.load_model(NAME), from_linen, from_nnx or "
                         f"from_callable) or a zoo name; got {type(model).__name__}")
    return model


def predict(model: Model, images, *, params=None, batch_size: int = 64, mesh=None) -> np.ndarray:
    """Class probabilities ``[N, K]`` for images ``[N, H, W, 3]`` in [0, 1]."""
    model = as_model(model)
    check_count("batch_size", batch_size)
    images = check_images(images, model.input_shape)
    params = model.params if params is None else params
    mesh = mesh or data_mesh()
    fn = _probabilities_fn(model.apply_fn)
    out = [run_sharded(fn, (params,), (images[s],), mesh) for s in _batches(len(images), batch_size)]
    return np.concatenate([np.asarray(o) for o in out]) if out else np.zeros((0, model.num_classes), np.float32)


_EXPLAINERS: dict = {}
_STATES: dict = {}


def cached_explainer(spec: str, **overrides) -> Explainer:
    """The registry's explainer ``spec`` (``NAME`` or ``NAME:PRESET``) with ``overrides``, built once per resulting
    settings: repeated calls reuse its functions and so the compiled programs that belong to them."""
    found, _, settings = registry.configure(spec, **overrides)
    try:
        hash(settings)
    except TypeError:  # a setting that is an object (a loaded VAE, ...): build afresh
        return found.build(settings)
    if settings not in _EXPLAINERS:
        _EXPLAINERS[settings] = found.build(settings)
    return _EXPLAINERS[settings]


def initial_state(explainer: Explainer, model: Model, key, sample) -> State:
    """``explainer.init`` once per (explainer, model object): learned parts (a VAE, a surrogate) load once."""
    cache_key = (id(explainer.init), id(model))  # the cached pair is kept alive, so the ids are not reused
    cached = _STATES.get(cache_key)
    if cached is None or cached[0] is not model or cached[1] is not explainer.init:
        _STATES[cache_key] = cached = (model, explainer.init, explainer.init(key, model, sample))
    return cached[2]


def initial_states(explainers: dict[str, Explainer], model: Model, seed: int) -> dict[str, State]:
    """Each explainer's initial state for ``model`` from a run's ``seed`` (the key every run derives the same way),
    as :func:`initial_state` caches them: what ``jaxplain evaluate`` and ``jaxplain job`` explain with."""
    key = jax.random.fold_in(jax.random.key(seed), -1 % 2**31)
    return {label: initial_state(explainer, model, key, None) for label, explainer in explainers.items()}


def make_explainer(method: str | Explainer, model: Model, **hyperparameters) -> Explainer:
    """Looks ``method`` up in the registry and checks the model can serve it."""
    explainer = method if isinstance(method, Explainer) else cached_explainer(method, **hyperparameters)
    if explainer.needs_taps and not model.supports_taps:
        raise UsageError(
            f"method {explainer.name!r} needs feature gradients, which model {model.name!r} does not expose; "
            "choose a method that needs no feature taps (rise, lime, integrated_gradients, relabel, ...)"
        )
    return explainer


def compiled_explainer(model: Model, explainer: Explainer, state: State, batch_size: int, mesh=None):
    """The compiled program that :func:`explain` runs for batches of ``batch_size`` (compiles, never runs)."""
    mesh = mesh or data_mesh()
    rows = batch_size + (-batch_size % mesh.size)
    images = jax.ShapeDtypeStruct((rows, *model.input_shape), jnp.float32)
    labels = jax.ShapeDtypeStruct((rows,), jnp.int32)
    keys = jax.eval_shape(lambda: jax.random.split(jax.random.key(0), rows))
    one = host_inputs(explainer, np.zeros((1, *model.input_shape), np.float32))
    prepared = {k: jax.ShapeDtypeStruct((rows, *v.shape[1:]), v.dtype) for k, v in one.items()}
    compiled = compiled_program(_explain_fn(explainer.explain), mesh, 2, 4, True)
    return compiled.lower(state, model.params, images, labels, keys, prepared).compile()


def peak_memory(model: Model, method: str | Explainer, batch_size: int = 16, *, mesh=None, **hyperparameters) -> int:
    """Bytes per device that explaining a batch takes: XLA's temporary buffers plus the program's arguments
    (params, images, ...) and outputs.

    Measured by compiling the program and reading its memory analysis, so it costs seconds and no
    teacher forwards. See :mod:`jaxplain.memory` for choosing a chunk from a budget.
    """
    explainer = make_explainer(method, model, **hyperparameters)
    state = explainer.init(jax.random.key(0), model, None)
    analysis = compiled_explainer(model, explainer, state, batch_size, mesh).memory_analysis()
    return int(analysis.temp_size_in_bytes + analysis.argument_size_in_bytes + analysis.output_size_in_bytes)


def explain(
    model: Model,
    method: str | Explainer,
    images,
    labels=None,
    *,
    key: jax.Array | int = 0,
    indices=None,
    params=None,
    state: State | None = None,
    batch_size: int = 16,
    fixed_shape: bool = False,
    mesh=None,
    with_details: bool = False,
    per_device: bool = True,
    **hyperparameters,
):
    """Saliency maps ``[N, H, W]`` for ``images`` (``[N, H, W, 3]`` in [0, 1]) and class ``labels``.

    ``labels=None`` explains each image's predicted class. ``indices`` (default ``0..N-1``) name the
    images for their PRNG keys. ``state`` reuses an initialised explainer (e.g. a loaded surrogate).
    ``fixed_shape`` pads every chunk to ``batch_size`` rows, so a job whose last batch is short does
    not compile a second program. ``with_details`` returns ``(maps, {name: [N] array})`` with the
    method's per-image diagnostics (re-label distillation's noise scale, class balance, student
    fidelity, ...; ``{}`` for methods without any). ``per_device`` (default) runs each device's shard
    of the batch with ``jax.shard_map``, the per-device SPMD form of ``pmap``; ``False`` runs the batch
    under ``jit`` with ``NamedSharding`` and leaves the partitioning to XLA. Both give the same maps
    (tests/test_parallel.py); the per-device form bounds memory by walking each shard image by image.
    """
    model = as_model(model)
    check_count("batch_size", batch_size)
    images = check_images(images, model.input_shape)
    params = model.params if params is None else params
    mesh = mesh or data_mesh()
    if labels is None:
        labels = predict(model, images, params=params, mesh=mesh).argmax(-1)
    labels = check_labels(labels, model.num_classes, len(images))
    explainer = make_explainer(method, model, **hyperparameters)
    key = check_key(key)
    if state is None:
        state = initial_state(explainer, model, jax.random.fold_in(key, -1 % 2**31), images[:1])
    indices = np.arange(len(images)) if indices is None else np.asarray(indices)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(indices, jnp.uint32))
    detailed = with_details and explainer.details is not None
    fn = _explain_fn(explainer.details if detailed else explainer.explain)
    maps, details = [], []
    for s in _batches(len(images), batch_size):
        batch = (images[s], labels[s], keys[s], host_inputs(explainer, images[s]))
        rows = s.stop - s.start
        if fixed_shape and rows < batch_size:
            batch = pad_rows(batch, batch_size)
        out = run_sharded(fn, (state, params), batch, mesh, per_device=per_device)
        out, extra = out if detailed else (out, {})
        chex.assert_shape(out, (len(batch[0]), *images.shape[1:3]))  # the contract: one [H, W] map per image
        maps.append(np.asarray(out[:rows], np.float32))
        details.append({name: np.asarray(value[:rows], np.float32) for name, value in extra.items()})
    maps = np.concatenate(maps) if maps else np.zeros((0, *model.input_shape[:2]), np.float32)
    if not with_details:
        return maps
    return maps, {name: np.concatenate([d[name] for d in details]) for name in (details[0] if details else {})}
