"""DnCNN for packed Bayer RAW (Zhang et al. 2017): a plain stack of 3x3 convolutions with batch
normalisation that predicts the noise, subtracted from the input (residual learning). Imports only torch,
so this file can ship unchanged as a submission's ``network.py``.

Input ``(B, in_channels, H, W)`` float32: the 4 normalised packed planes (values in [0, 1]) followed,
when ``noise_map`` is on, by 4 planes of the per-pixel noise standard deviation ``sqrt(a*x + b)``. Output
``(B, 4, H, W)``: input planes minus the predicted noise (not clipped). Any H, W.
"""

from __future__ import annotations

import torch
from torch import nn


class DnCNN(nn.Module):
    """``depth`` 3x3 convolutions of ``features`` channels: conv+ReLU, (depth-2) x conv+BN+ReLU, conv."""

    def __init__(self, depth: int = 17, features: int = 64, noise_map: bool = True):
        super().__init__()
        self.config = {"depth": depth, "features": features, "noise_map": noise_map}
        self.noise_map = noise_map
        in_channels = 8 if noise_map else 4
        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, 4, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def size_multiple(self) -> int:
        return 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :4] - self.body(x)
