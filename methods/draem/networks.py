"""DRAEM's two sub-networks (VitjanZ/DRAEM model_unet.py, read for its layer table).

Every block is two 3×3 convolutions (padding 1), each followed by batch norm and ReLU; pooling is 2×2
max pooling; every up-step is ×2 bilinear upsampling (corners aligned) then a 3×3 convolution, batch norm
and ReLU; the output is a 3×3 convolution with no activation.

- Reconstructive (width w = 128 in the paper): an encoder of 5 blocks, w → 2w → 4w → 8w → 8w channels,
  pooled between them (a 256-px image becomes 16 × 16 × 8w), and a decoder without skip connections of 4
  up-steps, each followed by a block (8w → 4w, 4w → 2w, 2w → w, w → w), to the image's channels.
- Discriminative (w = 64): a U-Net whose encoder has 6 blocks (w, 2w, 4w, 8w, 8w, 8w; 5 poolings) and
  whose decoder's 5 up-steps each concatenate the encoder block of the same resolution before a block,
  ending in 2 channels (normal, anomalous; a softmax gives the segmentation).

Weights start N(0, 0.02) for convolutions and N(1, 0.02) for batch-norm scales with zero shifts, the
code's `weights_init`.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _Encoder(nn.Module):
    """Blocks of the given widths, max-pooled between consecutive ones; returns every block's output."""

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        inputs = [in_channels, *widths[:-1]]
        self.blocks = nn.ModuleList(_block(i, o) for i, o in zip(inputs, widths, strict=True))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = [self.blocks[0](x)]
        for block in self.blocks[1:]:
            outputs.append(block(self.pool(outputs[-1])))
        return outputs


class ReconstructiveNetwork(nn.Module):
    """x (with simulated anomalies) -> its defect-free reconstruction, same shape, no activation."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        w = width
        self.encoder = _Encoder(channels, [w, 2 * w, 4 * w, 8 * w, 8 * w])
        # (up-step in -> out, block in -> out) per decoder stage, without skips
        stages = [(8 * w, 8 * w, 4 * w), (4 * w, 4 * w, 2 * w), (2 * w, 2 * w, w), (w, w, w)]
        self.ups = nn.ModuleList(_up(i, m) for i, m, _ in stages)
        self.decoder_blocks = nn.ModuleList(_two_convs(m, o) for _, m, o in stages)
        self.output = nn.Conv2d(w, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)[-1]
        for up, block in zip(self.ups, self.decoder_blocks, strict=True):
            h = block(up(h))
        return self.output(h)


def _two_convs(in_channels: int, out_channels: int) -> nn.Sequential:
    """The reconstructive decoder's block: its first convolution keeps the up-step's width, the second
    narrows it (model_unet.py's DecoderReconstructive)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DiscriminativeNetwork(nn.Module):
    """(reconstruction, input) concatenated -> 2-channel segmentation logits at the input's size."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        w = width
        skips = [w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w]
        self.encoder = _Encoder(in_channels, skips)
        # up-step from the deeper stage's width, then a block over [up-step, skip]
        ups = [(8 * w, 8 * w), (8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w), (w, w)]
        self.ups = nn.ModuleList(_up(i, o) for i, o in ups)
        self.decoder_blocks = nn.ModuleList(
            _block(o + skip, o) for (_, o), skip in zip(ups, reversed(skips[:-1]), strict=True)
        )
        self.output = nn.Conv2d(w, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        h = features[-1]
        for up, block, skip in zip(self.ups, self.decoder_blocks, reversed(features[:-1]), strict=True):
            h = block(torch.cat((up(h), skip), dim=1))
        return self.output(h)


def initialise(network: nn.Module) -> None:
    """The code's `weights_init`: convolutions N(0, 0.02), batch-norm scales N(1, 0.02), shifts 0."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
