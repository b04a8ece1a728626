"""DCGAN generator and discriminator (Radford et al. 2016), the networks of AnoGAN (Schlegl et al. 2017).

For a side S = 4·2^k and a base width w:

- G: z ∈ R^64 → 4×4 transposed conv to 2^(k−1)·w maps, then k − 1 stride-2 transposed convolutions
  halving the width (batch norm, ReLU), then one to the image channels and tanh: S×S in [−1, 1].
- D: the mirror image: k stride-2 convolutions doubling the width from w (LeakyReLU 0.2, batch norm
  from the second), then a 4×4 convolution to one logit. `features` (f_D of the latent search) is the
  last hidden layer, the 4×4 maps before the logit.

Weights start as DCGAN's: N(0, 0.02) for convolutions, N(1, 0.02) for batch-norm scales.
"""

from __future__ import annotations

import itertools

from torch import Tensor, nn

LATENT_DIM = 64
_SEED_SIDE = 4


def _doublings(image_size: int) -> int:
    doublings = (image_size // _SEED_SIDE).bit_length() - 1
    if doublings < 1 or _SEED_SIDE * 2**doublings != image_size:
        raise ValueError(f"AnoGAN image side {image_size} must be 4·2^k with k >= 1 (8, 16, ..., 128)")
    return doublings


def _dcgan_initialise(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, channels: int, image_size: int, width: int) -> None:
        super().__init__()
        doublings = _doublings(image_size)
        widths = [width * 2 ** (doublings - 1 - level) for level in range(doublings)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(LATENT_DIM, widths[0], _SEED_SIDE, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        for wide, narrow in itertools.pairwise(widths):
            layers += [
                nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False),
                nn.BatchNorm2d(narrow),
                nn.ReLU(),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        _dcgan_initialise(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int, image_size: int, width: int) -> None:
        super().__init__()
        doublings = _doublings(image_size)
        widths = [width * 2**level for level in range(doublings)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for narrow, wide in itertools.pairwise(widths):
            layers += [nn.Conv2d(narrow, wide, 4, 2, 1, bias=False), nn.BatchNorm2d(wide), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(widths[-1], 1, _SEED_SIDE, 1, 0)
        _dcgan_initialise(self)

    def forward(self, x: Tensor) -> Tensor:
        """One logit per image (real = high)."""
        return self.head(self.features(x)).flatten()
