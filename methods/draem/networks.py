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

from adbench_methods.common.blocks import PooledEncoder, UNet, double_conv, up_conv


class ReconstructiveNetwork(nn.Module):
    """x (with simulated anomalies) -> its defect-free reconstruction, same shape, no activation."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        w = width
        self.encoder = PooledEncoder(channels, [w, 2 * w, 4 * w, 8 * w, 8 * w])
        # (up-step in -> out, block out) per decoder stage, without skips; the block's first convolution
        # keeps the up-step's width, its second narrows it (the code's DecoderReconstructive)
        stages = [(8 * w, 8 * w, 4 * w), (4 * w, 4 * w, 2 * w), (2 * w, 2 * w, w), (w, w, w)]
        self.ups = nn.ModuleList(up_conv(i, m) for i, m, _ in stages)
        self.decoder_blocks = nn.ModuleList(double_conv(m, o, middle=m) for _, m, o in stages)
        self.output = nn.Conv2d(w, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)[-1]
        for up, block in zip(self.ups, self.decoder_blocks, strict=True):
            h = block(up(h))
        return self.output(h)


class DiscriminativeNetwork(UNet):
    """(reconstruction, input) concatenated -> 2-channel segmentation logits at the input's size."""

    def __init__(self, in_channels: int, width: int) -> None:
        w = width
        super().__init__(in_channels, [w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w], [8 * w, 4 * w, 2 * w, w, w], 2)


def initialise(network: nn.Module) -> None:
    """The code's `weights_init`: convolutions N(0, 0.02), batch-norm scales N(1, 0.02), shifts 0."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
