"""Data augmentation as pure JAX functions of a key (run inside the jitted train step, on device)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop(key, images: jax.Array, padding: int) -> jax.Array:
    """Pads ``[B, H, W, C]`` by reflection and crops each image back at a random offset."""
    batch, height, width, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode="reflect")
    offsets = jax.random.randint(key, (batch, 2), 0, 2 * padding + 1)
    crop = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (height, width, image.shape[-1]))
    return jax.vmap(crop)(padded, offsets)


def random_flip(key, images: jax.Array) -> jax.Array:
    """Mirrors each image left-right with probability 1/2."""
    flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flip, images[:, :, ::-1], images)


def cutout(key, images: jax.Array, size: int, fill) -> jax.Array:
    """Sets one random ``size`` x ``size`` square per image to ``fill`` (DeVries & Taylor, 2017)."""
    batch, height, width, _ = images.shape
    centres = jax.random.randint(key, (batch, 2), 0, jnp.array([height, width]))
    ys = jnp.arange(height)[None, :, None]
    xs = jnp.arange(width)[None, None, :]
    cy, cx = centres[:, 0, None, None], centres[:, 1, None, None]
    inside = (jnp.abs(ys - cy) * 2 < size) & (jnp.abs(xs - cx) * 2 < size)
    return jnp.where(inside[..., None], jnp.asarray(fill, images.dtype), images)


def standard(key, images: jax.Array, *, padding: int = 4, cutout_size: int = 8, fill=0.5) -> jax.Array:
    """Crop with reflection padding, flip, cutout: the usual CIFAR recipe."""
    k1, k2, k3 = jax.random.split(key, 3)
    images = random_flip(k2, random_crop(k1, images, padding))
    return cutout(k3, images, cutout_size, fill) if cutout_size else images
