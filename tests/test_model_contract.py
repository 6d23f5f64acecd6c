"""The model contract: adapters agree with each other, features are exposed, taps give feature gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxplain.errors import UsageError
from jaxplain.model import UNIT_RANGE, Preprocessing, feature_names, from_callable, from_nnx
from tests.conftest import make_tiny_model

SIZE = 16
KW = dict(class_names=["a", "b", "c"], preprocessing=Preprocessing(SIZE, SIZE), normalisation=UNIT_RANGE)


def test_linen_adapter_returns_logits_and_named_features(tiny_model, tiny_images):
    logits, features = tiny_model.apply_fn(tiny_model.params, jnp.asarray(tiny_images))
    assert logits.shape == (3, 5)
    assert features["conv1"].shape == (3, 8, 8, 8) and features["head"].shape == (3, 4, 4, 16)
    assert feature_names(tiny_model) == ["conv1", "head"]


def test_tap_gradient_matches_finite_difference(tiny_model, tiny_images):
    images = jnp.asarray(tiny_images)
    _, features = tiny_model.apply_fn(tiny_model.params, images)
    zero = jnp.zeros_like(features["head"])
    score = lambda tap: tiny_model.apply_fn(tiny_model.params, images, {"head": tap})[0][:, 2].sum()
    grad = jax.grad(score)(zero)
    direction = jax.random.normal(jax.random.key(1), zero.shape)
    eps = 1e-3
    numeric = (score(eps * direction) - score(-eps * direction)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.vdot(grad, direction)), float(numeric), rtol=2e-3)


def test_zero_tap_leaves_the_output_unchanged(tiny_model, tiny_images):
    images = jnp.asarray(tiny_images)
    plain, features = tiny_model.apply_fn(tiny_model.params, images)
    tapped, _ = tiny_model.apply_fn(tiny_model.params, images, {"conv1": jnp.zeros_like(features["conv1"])})
    np.testing.assert_array_equal(plain, tapped)


class DenseLinen(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(x.reshape(x.shape[0], -1))


class DenseNnx(nnx.Module):
    def __init__(self, rngs):
        self.dense = nnx.Linear(SIZE * SIZE * 3, 3, rngs=rngs)

    def __call__(self, x):
        return self.dense(x.reshape(x.shape[0], -1))


def test_nnx_and_callable_adapters_agree_with_the_same_weights(tiny_images):
    nnx_module = DenseNnx(nnx.Rngs(0))
    model_nnx = from_nnx("nnx", nnx_module, **KW)
    kernel, bias = nnx_module.dense.kernel[...], nnx_module.dense.bias[...]
    model_fn = from_callable("fn", lambda p, x: x.reshape(x.shape[0], -1) @ p["k"] + p["b"], {"k": kernel, "b": bias}, **KW)
    x = jnp.asarray(tiny_images)
    a, _ = jax.jit(model_nnx.apply_fn)(model_nnx.params, x)
    b, _ = jax.jit(model_fn.apply_fn)(model_fn.params, x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert not model_nnx.supports_taps and not model_fn.supports_taps
    with pytest.raises(UsageError, match="taps"):
        model_fn.apply_fn(model_fn.params, x, {"head": 0})


def test_params_are_arguments_not_constants(tiny_images):
    """One compiled function serves any weights: changing params changes the output without retracing."""
    model = make_tiny_model()
    other = make_tiny_model(seed=1)
    traces = []

    def logits(params, x):
        traces.append(1)
        return model.apply_fn(params, x)[0]

    fn = jax.jit(logits)
    a = fn(model.params, jnp.asarray(tiny_images))
    b = fn(other.params, jnp.asarray(tiny_images))
    assert len(traces) == 1 and not np.allclose(a, b)


def test_flip_averaged_model_averages_logits_and_keeps_feature_gradients_consistent(tiny_model, tiny_images):
    from jaxplain.model import flip_averaged

    model = flip_averaged(tiny_model)
    images = jnp.asarray(tiny_images)
    plain = tiny_model.apply_fn(tiny_model.params, images)[0]
    mirrored = tiny_model.apply_fn(tiny_model.params, images[:, :, ::-1])[0]
    logits, features = model.apply_fn(model.params, images)
    np.testing.assert_allclose(logits, 0.5 * (plain + mirrored), rtol=1e-5, atol=1e-6)
    zero = jnp.zeros_like(features["head"])
    score = lambda tap: model.apply_fn(model.params, images, {"head": tap})[0][:, 1].sum()
    grad = jax.grad(score)(zero)
    direction = jax.random.normal(jax.random.key(2), zero.shape)
    numeric = (score(1e-3 * direction) - score(-1e-3 * direction)) / 2e-3
    np.testing.assert_allclose(float(jnp.vdot(grad, direction)), float(numeric), rtol=2e-3)


def test_mixed_precision_computes_in_bfloat16_and_returns_float32(tiny_model, tiny_images):
    from jaxplain import runner
    from jaxplain.model import computing_in

    half = computing_in(tiny_model, "bfloat16")
    assert computing_in(tiny_model, "float32") is tiny_model
    logits, features = half.apply_fn(half.params, jnp.asarray(tiny_images))
    assert logits.dtype == jnp.float32 and all(v.dtype == jnp.float32 for v in features.values())
    text = str(jax.make_jaxpr(lambda x: half.apply_fn(half.params, x)[0])(jnp.asarray(tiny_images)))
    assert "conv_general_dilated" in text and "bf16[3,8,8,8]" in text  # the convolutions really run in bfloat16
    full_logits = tiny_model.logits(tiny_model.params, jnp.asarray(tiny_images))
    np.testing.assert_allclose(logits, full_logits, atol=0.05 * float(jnp.abs(full_logits).max()))
    labels = np.array([0, 1, 2])
    for method in ("gradcam", "gradient"):  # a tap gradient and an input gradient, through the cast
        a = runner.explain(tiny_model, method, tiny_images, labels, key=0)
        b = runner.explain(half, method, tiny_images, labels, key=0)
        assert b.dtype == np.float32
        assert np.abs(a - b).max() < 0.05 * np.abs(a).max(), method  # bfloat16 keeps 2-3 significant digits
    from jaxplain.errors import UsageError

    with pytest.raises(UsageError, match="--dtype must be one of float32, bfloat16, float16; got 'int8'"):
        computing_in(tiny_model, "int8")
