"""A port, to NumPy and PyTorch, of the RISE authors' deletion/insertion code (``eclique/RISE``, ``evaluation.py``:
``gkern``, ``auc`` and ``CausalMetric.single_run``), written here from its description so the parity tests run the
authors' procedure step by step on the same model: softmax probabilities of the class the model predicts on the
clean image, pixels in the order ``np.flip(np.argsort(saliency))``, ``ceil(HW / step)`` steps giving a curve of
``steps + 1`` points, ``step`` pixels moved per step in every channel, deletion towards ``zeros_like`` of the
normalised tensor, insertion from its ``conv2d`` with ``gkern(11, 5)`` and padding ``klen // 2``."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter


def gkern(klen: int, nsig: float) -> torch.Tensor:
    """``[3, 3, klen, klen]``: a delta smoothed by scipy's gaussian_filter on each channel's diagonal entry."""
    delta = np.zeros((klen, klen))
    delta[klen // 2, klen // 2] = 1.0
    smoothed = gaussian_filter(delta, nsig)
    kernel = np.zeros((3, 3, klen, klen))
    for c in range(3):
        kernel[c, c] = smoothed
    return torch.from_numpy(kernel.astype("float32"))


def area(curve: np.ndarray) -> float:
    """The authors' normalised trapezoid: ``(sum - first / 2 - last / 2) / (len - 1)``."""
    return float((curve.sum() - curve[0] / 2 - curve[-1] / 2) / (curve.shape[0] - 1))


def causal_curve(model, image: torch.Tensor, saliency: np.ndarray, mode: str, step: int, klen: int = 11,
                 nsig: float = 5.0) -> np.ndarray:
    """The probability curve of one normalised image ``[1, 3, H, W]`` under ``mode`` ``"del"`` or ``"ins"``;
    ``model`` returns probabilities."""
    height, width = image.shape[-2:]
    pixels = height * width
    with torch.no_grad():
        label = int(model(image).argmax(1)[0])
        blurred = torch.nn.functional.conv2d(image, gkern(klen, nsig), padding=klen // 2)
        start, finish = (image.clone(), torch.zeros_like(image)) if mode == "del" else (blurred, image.clone())
        steps = (pixels + step - 1) // step
        order = np.flip(np.argsort(saliency.reshape(-1, pixels), axis=1, kind="stable"), axis=-1)
        curve = np.empty(steps + 1)
        moving, target = start.numpy().reshape(1, 3, pixels), finish.numpy().reshape(1, 3, pixels)
        for i in range(steps + 1):
            curve[i] = float(model(torch.from_numpy(moving.reshape(1, 3, height, width)))[0, label])
            if i < steps:
                coords = order[:, step * i:step * (i + 1)]
                moving[0, :, coords] = target[0, :, coords]
    return curve
