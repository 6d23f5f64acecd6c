"""The PyTorch EfficientNet-Lite0 on the same weights as the zoo's teacher: the peer libraries' model in
parity tests and the speed race. Needs the 'reference' extra (torch, efficientnet-lite-pytorch)."""

from __future__ import annotations

import numpy as np
import torch

from jaxplain.models.efficientnet_lite import weights_file as efficientnet_lite0_weights_file


class TorchLite0(torch.nn.Module):
    """The reference network with its own head activation module (the package shares one ReLU6 between
    stem and head, which hooks cannot tell apart). It takes normalised inputs, ``(x - 127) / 128`` on
    0-255 pixels, as the torch libraries expect: their zero (occlusion, Score-CAM masks, IG baseline)
    is then the mean colour, which is jaxplain's fill colour."""

    def __init__(self):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name("efficientnet-lite0")
        self.net.load_state_dict(torch.load(efficientnet_lite0_weights_file(), map_location="cpu", weights_only=False))
        self.net.eval()
        self.head_act = torch.nn.ReLU6()

    def forward(self, x):  # x: normalised [B, 3, H, W]
        n = self.net
        x = n._swish(n._bn0(n._conv_stem(x)))
        for block in n._blocks:
            x = block(x)
        x = self.head_act(n._bn1(n._conv_head(x)))
        return n._fc(torch.flatten(n._avg_pooling(x), 1))


def nchw(images: np.ndarray) -> torch.Tensor:
    """[0, 1] NHWC images to the normalised NCHW tensors the torch model takes."""
    normalised = (images * 255.0 - 127.0) / 128.0
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2), np.float32))
