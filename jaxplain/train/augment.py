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


def random_resized_crop(key, images: jax.Array, size: int, scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3)) -> jax.Array:
    """Inception-style crops: a random box of ``scale`` of the area and aspect ``ratio`` of each image
    ``[B, H, W, C]``, resized (bilinear, antialiased) to ``size`` x ``size``."""
    batch, height, width, _ = images.shape
    area_key, ratio_key, y_key, x_key = jax.random.split(key, 4)
    area = jax.random.uniform(area_key, (batch,), minval=scale[0], maxval=scale[1]) * height * width
    aspect = jnp.exp(jax.random.uniform(ratio_key, (batch,), minval=jnp.log(ratio[0]), maxval=jnp.log(ratio[1])))
    box_w = jnp.minimum(jnp.sqrt(area * aspect), width)
    box_h = jnp.minimum(jnp.sqrt(area / aspect), height)
    top = jax.random.uniform(y_key, (batch,)) * (height - box_h)
    left = jax.random.uniform(x_key, (batch,)) * (width - box_w)

    def crop(image, h, w, y, x):
        scale_hw = jnp.stack([size / h, size / w])
        translation = -jnp.stack([y, x]) * scale_hw
        return jax.image.scale_and_translate(image, (size, size, image.shape[-1]), (0, 1), scale_hw, translation,
                                             "linear", antialias=True)

    return jax.vmap(crop)(images, box_h, box_w, top, left)


def colour_jitter(key, images: jax.Array, strength: float = 0.3) -> jax.Array:
    """Random brightness, contrast and saturation changes of up to ``strength`` per image, clipped to [0, 1]."""
    batch = images.shape[0]
    b, c, s = (1.0 + jax.random.uniform(k, (batch, 1, 1, 1), minval=-strength, maxval=strength)
               for k in jax.random.split(key, 3))
    grey = images.mean(-1, keepdims=True)
    images = grey + (images - grey) * s
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    return jnp.clip((mean + (images - mean) * c) * b, 0.0, 1.0)
