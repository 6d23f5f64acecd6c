"""The attentive surrogate networks of seed 004: an attentive student and an explanation decoder.

* :class:`Attention` is a channel + spatial attention module (CBAM, Woo et al. 2018): a shared MLP
  over the average- and max-pooled features gives channel weights, a ``kernel`` x ``kernel``
  convolution over the channel-wise mean and max gives spatial weights; their product ``att`` in
  [0, 1] scales the features, ``f^ = att * f``, and ``delta = f^ - f`` is what the decoder reads.
* :class:`AttentiveStudent` is a residual network (four stages of ``blocks`` basic blocks, widths
  doubling, each stage after the first halving the resolution) with an attention module at the end
  of each of its last three stages; it returns the logits and the three ``delta`` maps.
* :class:`ExplanationNet` decodes the deltas, deepest first: three *upsample* blocks (convolution,
  ReLU, bilinear up to the next shallower delta's grid, x2 after the last), each after the first
  concatenating the next shallower delta, then a 1x1
  convolution, a sigmoid and a bilinear resize to the input: the saliency map ``H`` in [0, 1].
* :class:`Surrogate` ties them: ``(logits, H)`` for a batch of images in the teacher's [0, 1] space.
* :class:`FeatureSurrogate` is the same pair for a teacher whose training set is not at hand: its student
  is the frozen teacher itself, with an attention module on each of its named features (shallowest
  first) and a linear head on the deepest attended one. The paper's student learns the teacher's
  features from its whole training set (ImageNet's, for ResNet-50); with a few hundred images a
  student trained from scratch learns nothing that carries over, so this one starts from features
  that already carry the teacher's knowledge, and distillation trains what the paper's attention
  modules are for: which of them the decision rests on.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct


class Attention(nn.Module):
    reduction: int = 8
    kernel: int = 7
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, f):
        channels = f.shape[-1]
        hidden = nn.Dense(max(channels // self.reduction, 4), dtype=self.dtype, name="mlp_hidden")
        out = nn.Dense(channels, dtype=self.dtype, name="mlp_out")
        mlp = lambda v: out(nn.relu(hidden(v)))
        channel = nn.sigmoid(mlp(f.mean(axis=(1, 2))) + mlp(f.max(axis=(1, 2))))[:, None, None, :]
        pooled = jnp.concatenate([(f * channel).mean(-1, keepdims=True), (f * channel).max(-1, keepdims=True)], -1)
        spatial = nn.sigmoid(nn.Conv(1, (self.kernel, self.kernel), dtype=self.dtype, name="spatial")(pooled))
        attended = f * channel * spatial
        return attended, attended - f


class BasicBlock(nn.Module):
    features: int
    stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)
        h = nn.Conv(self.features, (3, 3), (self.stride, self.stride), use_bias=False, dtype=self.dtype)(x)
        h = nn.relu(norm()(h))
        h = norm()(nn.Conv(self.features, (3, 3), use_bias=False, dtype=self.dtype)(h))
        if x.shape[-1] != self.features or self.stride != 1:
            x = norm()(nn.Conv(self.features, (1, 1), (self.stride, self.stride), use_bias=False, dtype=self.dtype)(x))
        return nn.relu(h + x)


class AttentiveStudent(nn.Module):
    num_classes: int
    width: int = 32
    blocks: Sequence[int] = (1, 1, 1, 1)
    stem_stride: int = 1  # 1 for 32-px inputs, 4 (stride-2 conv and max pooling) for 224-px photos
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.astype(self.dtype)
        h = nn.Conv(self.width, (3, 3) if self.stem_stride == 1 else (7, 7), (min(self.stem_stride, 2),) * 2,
                    use_bias=False, dtype=self.dtype)(x)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(h))
        if self.stem_stride > 2:
            h = nn.max_pool(h, (3, 3), (2, 2), padding="SAME")
        deltas = []
        for stage, count in enumerate(self.blocks):
            for b in range(count):
                stride = 2 if stage > 0 and b == 0 else 1
                h = BasicBlock(self.width * 2 ** stage, stride, dtype=self.dtype)(h, train)
            if stage > 0:
                h, delta = Attention(dtype=self.dtype)(h)
                deltas.append(delta)
        logits = nn.Dense(self.num_classes, dtype=self.dtype)(h.mean(axis=(1, 2)))
        return logits.astype(jnp.float32), deltas


class ExplanationNet(nn.Module):
    width: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, deltas, size: tuple[int, int]):
        h = None
        deepest_first = list(reversed(deltas))
        for level, delta in enumerate(deepest_first):
            h = delta if h is None else jnp.concatenate([h, delta.astype(h.dtype)], -1)
            h = nn.relu(nn.Conv(self.width * 2 ** (len(deltas) - 1 - level), (3, 3), dtype=self.dtype)(h))
            # up to the next (shallower) delta's grid; x2 after the last
            target = deepest_first[level + 1].shape[1:3] if level + 1 < len(deltas) else (h.shape[1] * 2, h.shape[2] * 2)
            h = jax.image.resize(h, (h.shape[0], *target, h.shape[3]), "bilinear")
        logits = nn.Conv(1, (1, 1), dtype=self.dtype)(h).astype(jnp.float32)
        return jax.image.resize(nn.sigmoid(logits), (h.shape[0], *size, 1), "bilinear")[..., 0]


class Surrogate(nn.Module):
    """Student logits ``[B, K]`` and the explanation ``H`` ``[B, H, W]`` for images ``[B, H, W, 3]`` in [0, 1]."""

    num_classes: int
    width: int = 32
    blocks: Sequence[int] = (1, 1, 1, 1)
    stem_stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, features=None, train: bool = False):
        del features  # this student reads the image itself
        x = images * 2.0 - 1.0
        logits, deltas = AttentiveStudent(self.num_classes, self.width, self.blocks, self.stem_stride,
                                          self.dtype)(x, train)
        return logits, ExplanationNet(self.width, self.dtype)(deltas, images.shape[1:3])


class FeatureStudent(nn.Module):
    """An attention module on each of the teacher's features and a linear head on the deepest: ``(logits, deltas)``.

    Each feature is batch-normalised first: a teacher's features come at any scale (EfficientNet's head
    reaches 6 after ReLU6), and unscaled they saturate the explanation network's sigmoid at the start.
    """

    num_classes: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, features, train: bool = False):
        deltas = []
        for f in features:
            f = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(f.astype(self.dtype))
            attended, delta = Attention(dtype=self.dtype)(f)
            deltas.append(delta)
        logits = nn.Dense(self.num_classes, dtype=self.dtype)(attended.mean(axis=(1, 2)))
        return logits.astype(jnp.float32), deltas


class FeatureSurrogate(nn.Module):
    """Student logits ``[B, K]`` and ``H`` ``[B, H, W]`` from the frozen teacher's ``features`` (shallowest first)."""

    num_classes: int
    width: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, features, train: bool = False):
        logits, deltas = FeatureStudent(self.num_classes, self.dtype)(features, train)
        return logits, ExplanationNet(self.width, self.dtype)(deltas, images.shape[1:3])


def teacher_outputs(names: Sequence[str], apply_fn, params, images):
    """The teacher's logits and its features ``names`` (``None`` when none are named), without gradients: what
    a :class:`FeatureSurrogate` reads."""
    logits, features = jax.lax.stop_gradient(apply_fn(params, images))
    return logits.astype(jnp.float32), ([features[name] for name in names] if names else None)


@struct.dataclass
class SurrogateHandle:
    """The surrogate network (static), its variables (a pytree) and the teacher features it reads, as the zoo
    loads it."""

    module: nn.Module = struct.field(pytree_node=False)
    variables: Any
    features: tuple[str, ...] = struct.field(pytree_node=False, default=())

    def __call__(self, apply_fn, params, images):
        """``(student logits, maps)`` for ``images`` of the teacher ``apply_fn`` with ``params``."""
        features = teacher_outputs(self.features, apply_fn, params, images)[1] if self.features else None
        return self.module.apply(self.variables, images, features)
