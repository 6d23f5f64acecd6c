"""A convolutional variational auto-encoder (Kingma & Welling, 2014) exposed as pure functions.

``encode(vae, params, x) -> (mean, logvar)`` and ``decode(vae, params, z) -> x`` take images in
[0, 1] at the VAE's resolution. The encoder has one stage (two 3x3 convolutions, group norm, SiLU)
per halving (average pooling) down to 4x4, then a 1x1 bottleneck of ``bottleneck`` channels feeds
the latent layer; the decoder mirrors it with nearest upsampling and ends in a sigmoid. Channel
widths are small at high resolution because re-label distillation decodes ~1000 latents per image.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct


class Stage(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x):
        x = nn.silu(nn.GroupNorm(num_groups=8)(nn.Conv(self.features, (3, 3))(x)))
        return nn.silu(nn.GroupNorm(num_groups=8)(nn.Conv(self.features, (3, 3))(x)))


class VAE(nn.Module):
    resolution: int = 32
    latent: int = 256
    widths: Sequence[int] = (32, 64, 128)  # one stage per halving; resolution / 2**len(widths) == 4
    bottleneck: int = 32

    def setup(self):
        if self.resolution != 4 * 2 ** len(self.widths):
            raise ValueError(
                f"resolution must be 4 * 2**len(widths) = {4 * 2 ** len(self.widths)}; got {self.resolution}"
            )
        self.down = [Stage(w) for w in self.widths]
        self.squeeze = nn.Conv(self.bottleneck, (1, 1))
        self.to_latent = nn.Dense(2 * self.latent)
        self.from_latent = nn.Dense(4 * 4 * self.bottleneck)
        self.expand = nn.Conv(self.widths[-1], (1, 1))
        self.up = [Stage(w) for w in reversed(self.widths)]
        self.to_image = nn.Conv(3, (3, 3))

    def encode(self, x):
        h = x * 2.0 - 1.0
        for stage in self.down:
            h = nn.avg_pool(stage(h), (2, 2), (2, 2))
        h = nn.silu(self.squeeze(h))
        stats = self.to_latent(h.reshape(h.shape[0], -1))
        mean, logvar = jnp.split(stats, 2, axis=-1)
        return mean, jnp.clip(logvar, -12.0, 8.0)

    def decode(self, z):
        h = nn.silu(self.from_latent(z)).reshape(z.shape[0], 4, 4, self.bottleneck)
        h = self.expand(h)
        for stage in self.up:
            h = stage(h)
            h = jax.image.resize(h, (h.shape[0], h.shape[1] * 2, h.shape[2] * 2, h.shape[3]), "nearest")
        return nn.sigmoid(self.to_image(h))

    def __call__(self, x, key):
        mean, logvar = self.encode(x)
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
        return self.decode(z), mean, logvar


@struct.dataclass
class VaeHandle:
    """A VAE module (static) and its parameters (a pytree), as the zoo loads it and explainers carry it."""

    module: VAE = struct.field(pytree_node=False)
    params: Any


def encode(vae: VAE, params, x):
    """``(mean, logvar)`` of the approximate posterior for images ``[B, r, r, 3]`` in [0, 1]."""
    return vae.apply(params, x, method=VAE.encode)


def decode(vae: VAE, params, z):
    """Images ``[B, r, r, 3]`` in [0, 1] for latents ``[B, latent]``."""
    return vae.apply(params, z, method=VAE.decode)


def elbo_terms(vae: VAE, params, x, key, recon_weight: float):
    """Per-image reconstruction error (sum of squares x ``recon_weight``) and KL to N(0, I)."""
    recon, mean, logvar = vae.apply(params, x, key)
    reconstruction = recon_weight * jnp.sum((recon - x) ** 2, axis=(1, 2, 3))
    kl = 0.5 * jnp.sum(jnp.exp(logvar) + mean ** 2 - 1.0 - logvar, axis=-1)
    return reconstruction, kl
