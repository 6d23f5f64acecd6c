"""Checks on arrays given to the public API, raising one clear :class:`UsageError` each."""

from __future__ import annotations

import numpy as np

from jaxplain.errors import UsageError


def _as_array(value, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{name} cannot form one array ({str(e).splitlines()[0][:120]}); give a batch whose items "
                         "all have the same shape") from e
    if array.dtype == object:
        raise UsageError(f"{name} cannot form one numeric array; give a batch whose items all have the same shape")
    return array


def check_count(name: str, value, allow_none: bool = False) -> None:
    """A :class:`UsageError` unless ``value`` is a whole number of at least 1 (or None when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be a whole number of at least 1; got {value!r}")


def check_key(key):
    """A PRNG key from ``key``: an int seed or a JAX key (one, or one per example); else a :class:`UsageError`."""
    import jax
    import jax.numpy as jnp

    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if not -2 ** 63 <= int(key) < 2 ** 64:
            raise UsageError(f"key {key} is too large; give a seed that fits in 64 bits")
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.dtype == jnp.uint32):
        return key
    raise UsageError(f"key must be an int seed or a JAX PRNG key (jax.random.key(0)); got {type(key).__name__} "
                     f"{key!r:.40}")


def check_images(images, input_shape: tuple[int, int, int] | None = None, name: str = "images") -> np.ndarray:
    """Returns ``images`` as float32 ``[B, H, W, C]`` in [0, 1] (``C`` = 3 for RGB, 1 for a spectrogram), or
    raises saying what is wrong and how to fix it."""
    array = _as_array(images, name)
    if array.ndim == 3 and input_shape is not None and array.shape == tuple(input_shape):
        raise UsageError(f"{name} has shape {array.shape}: add a batch axis, e.g. images[None]")
    if array.ndim != 4:
        raise UsageError(f"{name} must be a batch [B, H, W, C]; got shape {array.shape}")
    channels, expected = array.shape[-1], (input_shape[-1] if input_shape is not None else 3)
    if channels != expected:
        if expected == 3:
            hint = "grayscale: repeat it to 3 channels" if channels == 1 else (
                "RGBA: composite it over a background (jaxplain.images.to_rgb)" if channels == 4 else "give RGB images")
        else:
            hint = f"the model takes {expected} channel(s)"
        raise UsageError(f"{name} has {channels} channels; {hint}")
    if not np.issubdtype(array.dtype, np.floating):
        hint = " (divide uint8 images by 255)" if array.dtype == np.uint8 else ""
        raise UsageError(f"{name} must be floating point in [0, 1]; got {array.dtype}{hint}")
    if not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array).reshape(len(array), -1).all(axis=1))[0, 0])
        raise UsageError(f"{name}[{bad}] contains NaN or infinite values; give finite pixel values")
    if array.size and (array.min() < -1e-6 or array.max() > 1 + 1e-6):
        raise UsageError(
            f"{name} must lie in [0, 1] (RGB); got values in [{array.min():.3g}, {array.max():.3g}]"
        )
    if input_shape is not None and array.shape[1:] != tuple(input_shape):
        raise UsageError(
            f"{name} are {array.shape[1]}x{array.shape[2]}x{array.shape[3]} but the model takes "
            f"{input_shape[0]}x{input_shape[1]}x{input_shape[2]}; resize and crop with jaxplain.images.resize_and_crop"
        )
    return array.astype(np.float32, copy=False)


def check_labels(labels, num_classes: int, batch: int, name: str = "labels") -> np.ndarray:
    """Returns integer class indices ``[B]`` or raises on a wrong shape, dtype or an index out of range."""
    array = _as_array(labels, name)
    if array.shape != (batch,):
        raise UsageError(f"{name} must have shape ({batch},), one class per image; got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise UsageError(f"{name} must be integer class indices; got {array.dtype}")
    bad = (array < 0) | (array >= num_classes)
    if bad.any():
        raise UsageError(
            f"{name}[{int(np.argmax(bad))}] = {int(array[bad][0])} is out of range; the model has classes 0..{num_classes - 1}"
        )
    return array.astype(np.int32)
