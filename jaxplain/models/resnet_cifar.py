"""A small residual network for 32x32 images (the "ResNet-9" layout of fast CIFAR-10 training).

prep conv -> [conv, pool, residual block] -> [conv, pool] -> [conv, pool, residual block] -> max-pool
-> linear, with batch norm and ReLU after every convolution. ``widths`` scales the four stages.
Features: ``prep``, ``layer1``, ``layer2``, ``head`` (the last 4x4 map, for Grad-CAM), ``pooled``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxplain.models.layers import tap


class ConvBN(nn.Module):
    features: int
    pool: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(self.features, (3, 3), padding="SAME", use_bias=False, dtype=self.dtype)(x)
        if self.pool:
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(x)
        return nn.relu(x)


class Residual(nn.Module):
    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        h = ConvBN(self.features, dtype=self.dtype)(x, train)
        h = ConvBN(self.features, dtype=self.dtype)(h, train)
        return x + h


class ResNet9(nn.Module):
    num_classes: int = 10
    widths: tuple[int, int, int, int] = (64, 128, 256, 256)
    dtype: Any = jnp.float32  # computation dtype; parameters stay float32
    logit_scale: float = 0.125  # a fixed output scale that keeps early training stable

    @nn.compact
    def __call__(self, x, train: bool = False):
        w0, w1, w2, w3 = self.widths
        x = x.astype(self.dtype)
        x = tap(self, "prep", ConvBN(w0, dtype=self.dtype)(x, train))
        x = ConvBN(w1, pool=True, dtype=self.dtype)(x, train)
        x = tap(self, "layer1", Residual(w1, dtype=self.dtype)(x, train))
        x = tap(self, "layer2", ConvBN(w2, pool=True, dtype=self.dtype)(x, train))
        x = ConvBN(w3, pool=True, dtype=self.dtype)(x, train)
        x = tap(self, "head", Residual(w3, dtype=self.dtype)(x, train))
        pooled = tap(self, "pooled", jnp.max(x, axis=(1, 2)))
        logits = nn.Dense(self.num_classes, dtype=self.dtype)(pooled) * self.logit_scale
        return logits.astype(jnp.float32)
