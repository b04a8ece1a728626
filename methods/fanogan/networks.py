"""f-AnoGAN's networks (Schlegl et al. 2019), as the authors' wgangp_64x64.py and z_encoding_izif.py build
them for 64×64 images, generalised to any power-of-two side of at least 32.

- Residual block: normalisation, ReLU, 3×3 convolution (no bias), normalisation, ReLU, 3×3 convolution,
  plus a shortcut (identity, or a 1×1 convolution where the size or width changes). Up-sampling blocks
  double the side before their first convolution (nearest neighbour: the code's depth_to_space of four
  copies) and in the shortcut; down-sampling blocks average 2×2 pools after their second convolution and
  before the shortcut's convolution.
- G: linear z (128) → 4×4×8d, up-sampling blocks to the image side (for 64 px: 8d→8d→4d→2d→d), batch
  norm, ReLU, 3×3 convolution to the image's channels, tanh.
- D (the critic): 3×3 convolution to d, down-sampling blocks (d→2d→4d→8d→8d for 64 px) with layer norm
  over (C, H, W) (the code's WGAN-GP mode), flattened 4×4×8d features f(x), a linear score.
- E (izi_f encoder): D's architecture with batch norm, a linear layer to z and tanh.
A side of 2^k has k − 2 blocks; widths follow the code's rule from the image end (d, 2d, 4d, 8d, then 8d).
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import Tensor, nn

LATENT_DIM = 128  # ZDIM in both of the authors' scripts


def block_widths(side: int, width: int) -> list[int]:
    """Channel widths from the 4×4 end to the image end: [8d, 8d, 4d, 2d, d] for a 64-px side."""
    blocks = int(math.log2(side)) - 2
    if side < 32 or 2 ** (blocks + 2) != side:
        raise ValueError(f"image side {side}: f-AnoGAN's networks need a power of two of at least 32")
    return [width * min(8, 2**level) for level in range(blocks, -1, -1)]


class _LayerNorm(nn.Module):
    """Layer norm over (C, H, W) with a per-channel scale and offset, as tflib's Layernorm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        variance = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        normed = (x - mean) / torch.sqrt(variance + 1e-5)
        return normed * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def _norm(channels: int, layer_norm: bool) -> nn.Module:
    return _LayerNorm(channels) if layer_norm else nn.BatchNorm2d(channels)


class ResidualBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, resample: str | None, layer_norm: bool) -> None:
        super().__init__()
        self.resample = resample
        middle = outputs if resample == "up" else inputs
        self.norm1, self.norm2 = _norm(inputs, layer_norm), _norm(middle, layer_norm)
        self.conv1 = nn.Conv2d(inputs, middle, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(middle, outputs, 3, padding=1)
        self.shortcut = None if inputs == outputs and resample is None else nn.Conv2d(inputs, outputs, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.shortcut is None:
            skip = x
        elif self.resample == "up":
            skip = self.shortcut(_upsample(x))
        elif self.resample == "down":
            skip = self.shortcut(_downsample(x))
        else:
            skip = self.shortcut(x)
        out = torch.relu(self.norm1(x))
        out = self.conv1(_upsample(out) if self.resample == "up" else out)
        out = self.conv2(torch.relu(self.norm2(out)))
        return skip + (_downsample(out) if self.resample == "down" else out)


def _upsample(x: Tensor) -> Tensor:
    return nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def _downsample(x: Tensor) -> Tensor:
    return nn.functional.avg_pool2d(x, 2)


class Generator(nn.Module):
    def __init__(self, channels: int, side: int, width: int) -> None:
        super().__init__()
        widths = block_widths(side, width)
        self.top = widths[0]
        self.input = nn.Linear(LATENT_DIM, 4 * 4 * self.top)
        self.blocks = nn.Sequential(
            *(ResidualBlock(a, b, "up", layer_norm=False) for a, b in pairwise(widths))
        )
        self.norm = nn.BatchNorm2d(widths[-1])
        self.output = nn.Conv2d(widths[-1], channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.input(z).view(len(z), self.top, 4, 4)
        return torch.tanh(self.output(torch.relu(self.norm(self.blocks(x)))))


class _DownsamplingStack(nn.Module):
    """The critic's and the encoder's shared shape: input convolution and down-sampling blocks."""

    def __init__(self, channels: int, side: int, width: int, layer_norm: bool) -> None:
        super().__init__()
        widths = block_widths(side, width)[::-1]
        self.input = nn.Conv2d(channels, widths[0], 3, padding=1)
        self.blocks = nn.Sequential(*(ResidualBlock(a, b, "down", layer_norm) for a, b in pairwise(widths)))
        self.flat = 4 * 4 * widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.input(x)).flatten(1)


class Critic(nn.Module):
    def __init__(self, channels: int, side: int, width: int) -> None:
        super().__init__()
        self.trunk = _DownsamplingStack(channels, side, width, layer_norm=True)
        self.output = nn.Linear(self.trunk.flat, 1)

    def features(self, x: Tensor) -> Tensor:
        """f(x): the flattened output of the last block, before the linear score (izi_f's features)."""
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.trunk(x)).squeeze(1)


class Encoder(nn.Module):
    def __init__(self, channels: int, side: int, width: int) -> None:
        super().__init__()
        self.trunk = _DownsamplingStack(channels, side, width, layer_norm=False)
        self.output = nn.Linear(self.trunk.flat, LATENT_DIM)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.output(self.trunk(x)))
