"""NAFNet for packed Bayer RAW: a U-Net of NAFBlocks (Chen et al. 2022, "Simple Baselines for Image
Restoration"). Imports only torch, so this file can ship unchanged as a submission's ``network.py``.

Input ``(B, in_channels, H, W)`` float32: the 4 normalised packed planes (values in [0, 1]) followed,
when ``noise_map`` is on, by 4 planes of the per-pixel noise standard deviation ``sqrt(a*x + b)``. Output
``(B, 4, H, W)``: the denoised planes (input planes + predicted residual; not clipped). H and W must be
multiples of ``2 ** len(encoder_blocks)`` (:meth:`NAFNet.size_multiple`); callers pad.

A NAFBlock is ``x + beta * conv(SCA(SimpleGate(dwconv(conv(LayerNorm(x))))))`` followed by
``y + gamma * conv(SimpleGate(conv(LayerNorm(y))))``: no nonlinear activation function anywhere, the
SimpleGate (split the channels in two halves and multiply them) and the simplified channel attention
(average pool, 1x1 conv, multiply) do that work. ``beta`` and ``gamma`` start at zero, so every block
starts as the identity.

The channel attention pools over a window of ``pool_window`` full-resolution pixels (scaled down with each
level), clamped inside the image, rather than over the whole image: with training patches of that size the
two are the same, but on a large image a global average would see statistics the network never saw in
training (the train/test mismatch that Chu et al. 2022, "TLC", describe), and the output of a tile would
depend on the whole tile, so tiled and whole-image inference would disagree. ``pool_window = 0`` pools
globally, as in the original NAFNet.
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channels of each pixel of a ``(B, C, H, W)`` tensor."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        variance = (x - mean).pow(2).mean(dim=1, keepdim=True)
        x = (x - mean) / torch.sqrt(variance + self.eps)
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]


class SimpleGate(nn.Module):
    """Split the channels into two halves and multiply them: ``(B, 2C, H, W) -> (B, C, H, W)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=1)
        return first * second


def local_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean of ``x`` ``(B, C, H, W)`` over a ``window`` x ``window`` box around every pixel, the box shifted
    (not shrunk) to stay inside the image; a side shorter than the window is averaged whole. ``window = 0``:
    the global mean ``(B, C, 1, 1)``. Computed with summed-area tables, about four operations a pixel."""
    height, width = x.shape[-2:]
    if window <= 0 or (height <= window and width <= window):
        return x.mean(dim=(2, 3), keepdim=True)
    box_h, box_w = min(window, height), min(window, width)
    centre = x.mean(dim=(2, 3), keepdim=True)  # subtracted first: keeps the running sums small
    table = nn.functional.pad((x - centre).cumsum(2).cumsum(3), (1, 0, 1, 0))
    sums = (table[..., box_h:, box_w:] - table[..., :-box_h, box_w:] - table[..., box_h:, :-box_w]
            + table[..., :-box_h, :-box_w])
    rows = (torch.arange(height, device=x.device) - box_h // 2).clamp(0, height - box_h)
    cols = (torch.arange(width, device=x.device) - box_w // 2).clamp(0, width - box_w)
    return sums[..., rows, :][..., cols] / (box_h * box_w) + centre


class NAFBlock(nn.Module):
    """One NAFBlock of ``channels`` channels (shape-preserving); ``pool_window``: the channel attention's
    averaging window at this block's resolution (0 = global)."""

    def __init__(self, channels: int, expansion: int = 2, pool_window: int = 0):
        super().__init__()
        self.pool_window = pool_window
        hidden = channels * expansion
        self.norm1 = LayerNorm2d(channels)
        self.expand = nn.Conv2d(channels, hidden, 1)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.gate = SimpleGate()
        self.attention = nn.Conv2d(hidden // 2, hidden // 2, 1)
        self.project = nn.Conv2d(hidden // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.ffn_expand = nn.Conv2d(channels, hidden, 1)
        self.ffn_project = nn.Conv2d(hidden // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.depthwise(self.expand(self.norm1(x))))
        y = self.project(y * self.attention(local_mean(y, self.pool_window)))
        x = x + self.beta * y
        y = self.ffn_project(self.gate(self.ffn_expand(self.norm2(x))))
        return x + self.gamma * y


class NAFNet(nn.Module):
    """U-Net of NAFBlocks with a global residual on the 4 packed planes.

    width: channels at full resolution (doubled at every level down). encoder_blocks / decoder_blocks:
    NAFBlocks per level (same length: the number of levels). middle_blocks: NAFBlocks at the bottom.
    noise_map: whether 4 noise-std planes follow the 4 image planes in the input.
    pool_window: channel-attention window in pixels at full resolution, halved per level (0 = global).
    """

    def __init__(self, width: int = 16, encoder_blocks: tuple[int, ...] = (1, 1, 2),
                 middle_blocks: int = 2, decoder_blocks: tuple[int, ...] = (1, 1, 1), noise_map: bool = True,
                 pool_window: int = 64):
        super().__init__()
        if len(encoder_blocks) != len(decoder_blocks):
            raise ValueError("encoder_blocks and decoder_blocks need one entry per level each")
        self.config = {"width": width, "encoder_blocks": list(encoder_blocks), "middle_blocks": middle_blocks,
                       "decoder_blocks": list(decoder_blocks), "noise_map": noise_map, "pool_window": pool_window}
        self.noise_map = noise_map
        in_channels = 8 if noise_map else 4
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        channels, window = width, pool_window
        for count in encoder_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(channels, pool_window=window) for _ in range(count)]))
            self.downs.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels, window = channels * 2, window // 2
        self.middle = nn.Sequential(*[NAFBlock(channels, pool_window=window) for _ in range(middle_blocks)])
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for count in decoder_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(channels, 2 * channels, 1, bias=False), nn.PixelShuffle(2)))
            channels, window = channels // 2, window * 2
            self.decoders.append(nn.Sequential(*[NAFBlock(channels, pool_window=window) for _ in range(count)]))
        self.ending = nn.Conv2d(width, 4, 3, padding=1)

    def size_multiple(self) -> int:
        return 2 ** len(self.encoders)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            features = encoder(features)
            skips.append(features)
            features = down(features)
        features = self.middle(features)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            features = decoder(up(features) + skip)
        return x[:, :4] + self.ending(features)
