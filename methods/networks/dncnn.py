"""DnCNN for packed Bayer RAW (Zhang et al. 2017): a plain stack of 3x3 convolutions with batch
normalisation (optional here) that predicts the noise, subtracted from the input (residual learning). Imports only torch,
so this file can ship unchanged as a submission's ``network.py``.

Input ``(B, in_channels, H, W)`` float32: the 4 normalised packed planes (values in [0, 1]) followed,
when ``noise_map`` is on, by 4 planes of the per-pixel noise standard deviation ``sqrt(a*x + b)``. Output
``(B, 4, H, W)``: input planes minus the predicted noise (not clipped); with a noise map the body predicts
the noise divided by its standard deviation. Any H, W.
"""

from __future__ import annotations

import torch
from torch import nn


class DnCNN(nn.Module):
    """``depth`` 3x3 convolutions of ``features`` channels: conv+ReLU, (depth-2) x conv(+BN)+ReLU, conv (the
    last one zero-initialised, so the untrained network is the identity). ``batch_norm``: the paper's batch
    normalisation in the middle layers; off by default, because on RAW patches with noise levels spread
    over two decades it kept the network from learning at all in our CPU training runs (the loss stayed at
    the identity's for 1000 steps), while the same network without it learned at once."""

    def __init__(self, depth: int = 17, features: int = 64, noise_map: bool = True, batch_norm: bool = False):
        super().__init__()
        self.config = {"depth": depth, "features": features, "noise_map": noise_map, "batch_norm": batch_norm}
        self.noise_map = noise_map
        in_channels = 8 if noise_map else 4
        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            if batch_norm:
                layers += [nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features)]
            else:
                layers.append(nn.Conv2d(features, features, 3, padding=1))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(features, 4, 3, padding=1))
        self.body = nn.Sequential(*layers)
        # He initialisation keeps the signal's scale through the ReLU stack (PyTorch's default shrinks it
        # about 2.5-fold a layer, so without batch normalisation almost nothing reached the last layer)
        for layer in layers[:-1]:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        # start as the identity: RAW noise is small next to the signal, and a randomly initialised last
        # layer would first add far more "noise" than there is to remove
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def size_multiple(self) -> int:
        return 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise_map:
            # Work in units of the noise: the stack sees the image's detail (image minus its 5x5 local
            # mean) divided by the noise std, plus the local mean, and predicts the noise divided by its std.
            # Raw noise std spans 0.003 to 0.1, and a plain ReLU stack cannot divide by it; fed the raw
            # planes and the std map it stayed at the identity for 1000 steps.
            planes, sigma = x[:, :4], x[:, 4:8]
            local = nn.functional.avg_pool2d(planes, 5, stride=1, padding=2, count_include_pad=False)
            return planes - sigma * self.body(torch.cat([(planes - local) / sigma, local], dim=1))
        return x[:, :4] - self.body(x)
