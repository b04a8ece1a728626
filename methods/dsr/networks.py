"""DSR's networks on top of the VQ-VAE (VitjanZ/DSR_anomaly_detection, dsr_model.py, read for its layer
table). Every normalisation is instance norm without learnt scales; blocks are methods/common/blocks.py's.

- Subspace restriction module (one per level): an encoder of 3 blocks (e, 2e, 4e channels for codes of
  dimension e, 2 poolings) and a decoder of 2 up-steps (4e → 2e, 2e → e), each followed by a block, without
  skip connections, then a 3×3 convolution back to e; its output is quantised with that level's
  codebook. It maps possibly anomalous codes to the nearest normal appearance.
- Object-specific decoder: from [up(Q'_lo), Q'_hi] (2e channels): blocks to 4e and 8e channels with two
  poolings, a 1×1 convolution to 64 channels (`bottleneck`), two ×2 transposed 4×4 convolutions with ReLU,
  a 3×3 convolution to h, a residual stack and the two transposed convolutions of the VQ-VAE's decoder.
- Anomaly detection module: a U-Net (blocks of w, 2w, 4w, 4w channels, w = 64) on the two decoders'
  images side by side (6 channels), 2 output channels.
- Upsampling module: the same U-Net on the two images and the detection module's softmax (8 channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adbench_methods.common.blocks import PooledEncoder, UNet, double_conv, up_conv
from adbench_methods.dsr.vqvae import Quantiser, ResidualStack, VQSizes


class SubspaceRestriction(nn.Module):
    def __init__(self, code_dim: int) -> None:
        super().__init__()
        e = code_dim
        self.encoder = PooledEncoder(e, [e, 2 * e, 4 * e], nn.InstanceNorm2d)
        self.ups = nn.ModuleList(
            [up_conv(4 * e, 2 * e, nn.InstanceNorm2d), up_conv(2 * e, e, nn.InstanceNorm2d)]
        )
        self.decoder_blocks = nn.ModuleList(
            [double_conv(2 * e, 2 * e, nn.InstanceNorm2d), double_conv(e, e, nn.InstanceNorm2d)]
        )
        self.output = nn.Conv2d(e, e, 3, padding=1)

    def forward(self, codes: torch.Tensor, quantiser: Quantiser) -> tuple[torch.Tensor, torch.Tensor]:
        """(the restored features, their quantisation with `quantiser`'s codebook)."""
        h = self.encoder(codes)[-1]
        for up, block in zip(self.ups, self.decoder_blocks, strict=True):
            h = block(up(h))
        restored = self.output(h)
        return restored, quantiser(restored)[0]


class ObjectDecoder(nn.Module):
    """DSR's object-specific appearance decoder (the code's ImageReconstructionNetwork)."""

    def __init__(self, sizes: VQSizes, bottleneck: int) -> None:
        super().__init__()
        c, h = 2 * sizes.code_dim, sizes.hidden
        self.blocks = nn.ModuleList(
            [
                double_conv(c, 2 * c, nn.InstanceNorm2d, middle=c),
                double_conv(2 * c, 4 * c, nn.InstanceNorm2d, 2 * c),
            ]
        )
        self.pool = nn.MaxPool2d(2)
        self.squeeze = nn.Conv2d(4 * c, bottleneck, 1)
        self.expand_1 = nn.ConvTranspose2d(bottleneck, bottleneck, 4, stride=2, padding=1)
        self.expand_2 = nn.ConvTranspose2d(bottleneck, bottleneck, 4, stride=2, padding=1)
        self.conv = nn.Conv2d(bottleneck, h, 3, padding=1)
        self.residual = ResidualStack(h, sizes.residual_hidden, sizes.residual_layers)
        self.up_1 = nn.ConvTranspose2d(h, h // 2, 4, stride=2, padding=1)
        self.up_2 = nn.ConvTranspose2d(h // 2, 3, 4, stride=2, padding=1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(self.pool(self.blocks[1](self.pool(self.blocks[0](codes)))))
        x = self.conv(F.relu(self.expand_2(F.relu(self.expand_1(x)))))
        return self.up_2(F.relu(self.up_1(self.residual(x))))


def detection_unet(in_channels: int, width: int) -> UNet:
    """The anomaly detection and upsampling modules' U-Net: 2 output channels (normal, anomalous)."""
    w = width
    return UNet(in_channels, [w, 2 * w, 4 * w, 4 * w], [4 * w, 2 * w, w], 2, nn.InstanceNorm2d)


def initialise(network: nn.Module) -> None:
    """The code's `weights_init` for the detection module and the object decoder: convolutions N(0, 0.02)
    (transposed ones too: their class names contain 'Conv'); the instance norms have no weights."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
