"""The two networks of DAX (distillation-aided explainability, seed 003), trained afresh for every input.

* :class:`MaskNet` turns the (downscaled) input into a saliency mask in [0, 1]: two ``kernel`` x
  ``kernel`` convolutions with LeakyReLU, max pooling by ``pool`` and nearest upsampling back (so the
  mask is piecewise constant on ``pool`` x ``pool`` blocks), a LeakyReLU and a min-max normalisation,
  over the whole batch as in the reference (a sample whose mask is low everywhere stays low) or per sample.
* :class:`StudentNet` imitates the black box locally: the flattened input, a hidden layer of
  ``hidden`` units with LeakyReLU, batch normalisation and dropout, and a sigmoid output that
  regresses the teacher's probability of the explained class.

Both work on any 2-D input with channels last: images ``[B, H, W, 3]`` and spectrograms ``[B, T, F, 1]``;
``torch_init`` initialises them as PyTorch's defaults do (the reference code's networks).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxplain.imageops import minmax

from jaxplain.models.layers import LoopConv, torch_initialisers


class MaskNet(nn.Module):
    features: int = 32
    kernel: int = 7
    pool: int = 8
    per_sample: bool = False
    torch_init: bool = False

    @nn.compact
    def __call__(self, x):
        h = nn.leaky_relu(LoopConv(self.features, self.kernel, self.torch_init)(x))
        h = nn.leaky_relu(LoopConv(1, self.kernel, self.torch_init)(h))
        h = nn.max_pool(h, (self.pool, self.pool), strides=(self.pool, self.pool))
        h = jnp.repeat(jnp.repeat(h, self.pool, axis=1), self.pool, axis=2)  # nearest upsampling
        h = nn.leaky_relu(h)
        axes = tuple(range(1, h.ndim)) if self.per_sample else None
        return minmax(h, axes=axes)


class StudentNet(nn.Module):
    hidden: int = 512
    dropout: float = 0.1
    torch_init: bool = False

    @nn.compact
    def __call__(self, x, train: bool, statistics_rows: jax.Array | None = None):
        """Outputs ``[B]``. In training, batch normalisation uses the statistics of the whole batch, or of the rows
        where ``statistics_rows`` ``[B]`` is true (other rows are normalised as those are, and do not move the
        running statistics)."""
        x = x.reshape(x.shape[0], -1)
        dense = lambda n, fan_in: (nn.Dense(n, kernel_init=torch_initialisers(fan_in)[0],
                                            bias_init=torch_initialisers(fan_in)[1]) if self.torch_init else nn.Dense(n))
        h = nn.leaky_relu(dense(self.hidden, x.shape[-1])(x))
        rows = None if statistics_rows is None else statistics_rows[:, None]
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h, mask=rows)
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return nn.sigmoid(dense(1, self.hidden)(h))[:, 0]


def init_networks(key, mask_net: MaskNet, student: StudentNet, sample: jax.Array) -> dict:
    """Fresh variables ``{"mask": ..., "student": ...}`` for inputs shaped like ``sample`` ``[1, H, W, C]``."""
    mask_key, student_key = jax.random.split(key)
    return {"mask": mask_net.init(mask_key, sample),
            "student": student.init(student_key, sample, train=False)}
