"""Convolution blocks of the U-Net-like networks of DRAEM and DSR (both codes build theirs from these)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Norm = Callable[[int], nn.Module]


def double_conv(
    in_channels: int, out_channels: int, norm: Norm = nn.BatchNorm2d, middle: int | None = None
) -> nn.Sequential:
    """Two 3×3 convolutions (padding 1), each followed by `norm` and ReLU; the first to `middle`
    channels (default: `out_channels`)."""
    middle = out_channels if middle is None else middle
    return nn.Sequential(
        nn.Conv2d(in_channels, middle, 3, padding=1),
        norm(middle),
        nn.ReLU(inplace=True),
        nn.Conv2d(middle, out_channels, 3, padding=1),
        norm(out_channels),
        nn.ReLU(inplace=True),
    )


def up_conv(in_channels: int, out_channels: int, norm: Norm = nn.BatchNorm2d) -> nn.Sequential:
    """×2 bilinear upsampling (corners aligned), then a 3×3 convolution, `norm` and ReLU."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        norm(out_channels),
        nn.ReLU(inplace=True),
    )


class PooledEncoder(nn.Module):
    """`double_conv` blocks of the given widths, 2×2 max-pooled between consecutive ones; returns every
    block's output, shallowest first."""

    def __init__(self, in_channels: int, widths: list[int], norm: Norm = nn.BatchNorm2d) -> None:
        super().__init__()
        inputs = [in_channels, *widths[:-1]]
        self.blocks = nn.ModuleList(double_conv(i, o, norm) for i, o in zip(inputs, widths, strict=True))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = [self.blocks[0](x)]
        for block in self.blocks[1:]:
            outputs.append(block(self.pool(outputs[-1])))
        return outputs


class UNet(nn.Module):
    """A `PooledEncoder` of `widths`, then per shallower level an `up_conv` to `up_widths[i]`, the encoder's
    output of that level concatenated, and a `double_conv`; a 3×3 convolution to `out_channels`."""

    def __init__(
        self,
        in_channels: int,
        widths: list[int],
        up_widths: list[int],
        out_channels: int,
        norm: Norm = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if len(up_widths) != len(widths) - 1:
            raise ValueError(f"a U-Net of {len(widths)} levels has {len(widths) - 1} up-steps")
        self.encoder = PooledEncoder(in_channels, widths, norm)
        skips = list(reversed(widths[:-1]))
        inputs = [widths[-1], *up_widths[:-1]]
        self.ups = nn.ModuleList(up_conv(i, o, norm) for i, o in zip(inputs, up_widths, strict=True))
        self.decoder_blocks = nn.ModuleList(
            double_conv(o + skip, o, norm) for o, skip in zip(up_widths, skips, strict=True)
        )
        self.output = nn.Conv2d(up_widths[-1], out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        h = features[-1]
        for up, block, skip in zip(self.ups, self.decoder_blocks, reversed(features[:-1]), strict=True):
            h = block(torch.cat((up(h), skip), dim=1))
        return self.output(h)
