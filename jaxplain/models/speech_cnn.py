"""A small convolutional classifier of log-mel spectrograms (``[frames, mels, 1]`` in [0, 1]).

Three stages of two 3x3 convolutions (batch norm, ReLU) with 2x2 max pooling, global average
pooling and a linear layer. Features: ``stage1``, ``stage2``, ``head`` (the last map, 12x8 for a
1-s clip: Grad-CAM's layer) and ``pooled``.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxplain.models.layers import tap


class SpeechCNN(nn.Module):
    num_classes: int = 10
    widths: tuple[int, int, int] = (16, 32, 64)
    dropout: float = 0.2

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = x
        for stage, width in enumerate(self.widths, start=1):
            for _ in range(2):
                h = nn.Conv(width, (3, 3), use_bias=False)(h)
                h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h))
            h = nn.max_pool(h, (2, 2), (2, 2))
            h = tap(self, "head" if stage == len(self.widths) else f"stage{stage}", h)
        pooled = tap(self, "pooled", jnp.mean(h, axis=(1, 2)))
        pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
        return nn.Dense(self.num_classes)(pooled)
