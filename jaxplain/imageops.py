"""Pure JAX image operations shared by explainers and metrics (single images ``[H, W, C]`` or batches)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def gaussian_kernel(size: int, sigma: float) -> jax.Array:
    """Normalised 1-D Gaussian of odd length ``size``."""
    x = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    kernel = jnp.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(images: jax.Array, size: int, sigma: float, fill=None) -> jax.Array:
    """Separable Gaussian blur of ``[..., H, W, C]`` images.

    Borders are padded with ``fill`` (a colour ``[C]``; default zeros): the colour the model normalises to
    zero pads as the RISE reference's zero padding of normalised tensors does (its kernel differs:
    :func:`jaxplain.metrics.faithfulness.gaussian_filtered_delta`).
    """
    kernel = gaussian_kernel(size, sigma)
    pad = size // 2
    squeeze = images.ndim == 3
    x = images[None] if squeeze else images
    channels = x.shape[-1]
    fill = jnp.zeros((channels,), x.dtype) if fill is None else jnp.asarray(fill, x.dtype)
    x = x - fill
    dims = ("NHWC", "HWIO", "NHWC")
    rows = jnp.tile(kernel.reshape(size, 1, 1, 1), (1, 1, 1, channels)).astype(x.dtype)
    cols = jnp.tile(kernel.reshape(1, size, 1, 1), (1, 1, 1, channels)).astype(x.dtype)
    x = jax.lax.conv_general_dilated(x, rows, (1, 1), ((pad, pad), (0, 0)), dimension_numbers=dims, feature_group_count=channels)
    x = jax.lax.conv_general_dilated(x, cols, (1, 1), ((0, 0), (pad, pad)), dimension_numbers=dims, feature_group_count=channels)
    x = x + fill
    return x[0] if squeeze else x


def blend(image: jax.Array, substrate: jax.Array, mask: jax.Array) -> jax.Array:
    """``image * mask + substrate * (1 - mask)`` with a ``[..., H, W]`` mask broadcast over channels."""
    mask = mask[..., None]
    return image * mask + substrate * (1.0 - mask)


def fill_like(image: jax.Array, colour) -> jax.Array:
    """An image of the same shape filled with one colour ``[C]``."""
    return jnp.broadcast_to(jnp.asarray(colour, image.dtype), image.shape)


def minmax(maps, axes=(-2, -1), eps: float | None = None):
    """Min-max normalises maps over ``axes`` (``None``: all) to [0, 1]; constant maps become zeros.

    The one min-max of the project. A NumPy array stays NumPy (host-side float64 work such as the
    localisation boxes); anything else is computed with ``jax.numpy``. ``eps`` reproduces reference code
    that divides by ``high - low + eps`` instead of treating a constant map apart.
    """
    xp = np if isinstance(maps, np.ndarray) else jnp
    low = maps.min(axis=axes, keepdims=True)
    high = maps.max(axis=axes, keepdims=True)
    if eps is not None:
        return (maps - low) / (high - low + eps)
    spread = high - low
    return xp.where(spread > 0, (maps - low) / xp.where(spread > 0, spread, 1.0), 0.0)


def align_corners_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Linear interpolation ``[size_out, size_in]`` mapping the first/last samples onto each other."""
    if size_in == 1:
        return np.ones((size_out, 1), np.float32)
    position = np.arange(size_out) * (size_in - 1) / max(size_out - 1, 1)
    low = np.clip(np.floor(position).astype(int), 0, size_in - 2)
    frac = position - low
    matrix = np.zeros((size_out, size_in), np.float32)
    matrix[np.arange(size_out), low] = 1 - frac
    matrix[np.arange(size_out), low + 1] += frac
    return matrix


def resize_align_corners(maps: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Bilinear resize of ``[..., h, w]`` maps to ``size`` with aligned corners (PyTorch's ``UpsamplingBilinear2d``)."""
    rows = jnp.asarray(align_corners_matrix(maps.shape[-2], size[0]))
    cols = jnp.asarray(align_corners_matrix(maps.shape[-1], size[1]))
    return jnp.einsum("Hh,...hw,Ww->...HW", rows, maps, cols)
