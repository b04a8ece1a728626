"""AnoGAN's DCGAN generator and discriminator, with the figures of the public LeeDoYup/AnoGAN
implementation that MVTec AD §4.1.1 evaluated.

For a side S divisible by 16 and a base width w (64 in that implementation):

- G: z ∈ R^64 → linear → (S/16)×(S/16)×8w → batch norm, ReLU → four 5×5 stride-2 transposed
  convolutions to 4w, 2w, w and the image channels (batch norm and ReLU after all but the last),
  tanh: S×S in [−1, 1]. At S = 128: linear → 8×8×512 → 256, 128, 64, channels.
- D: four 5×5 stride-2 convolutions to w, 2w, 4w, 8w (64 → 512 at w = 64), batch norm from the second,
  LeakyReLU 0.2, then a linear logit on the flattened (S/16)×(S/16)×8w map. `features` (f_D of the
  latent search) is that last convolutional feature map, after its batch norm and LeakyReLU.

Every layer has a bias (TF's conv2d, deconv2d and linear of that code add one, batch norm or not).
Weights start as there: N(0, 0.02) for convolutions (truncated at 2σ in D, as TF's
truncated_normal_initializer), transposed convolutions and linear layers; zero biases; batch-norm scale
1 and shift 0; batch-norm momentum 0.9 in TF's convention (0.1 in torch's) and ε 1e-5.

Parameters at 128 px, 3 channels, w = 64: G 6,437,891 and D 4,341,121 (tests/test_anogan.py).
"""

from __future__ import annotations

import itertools

from torch import Tensor, nn

LATENT_DIM = 64
_KERNEL = 5
_STAGES = 4  # stride-2 layers in G and in D: the side shrinks by 16


def _seed_side(image_size: int) -> int:
    if image_size < 16 or image_size % 16:
        raise ValueError(f"AnoGAN image side {image_size} must be a multiple of 16 (16, 32, ..., 128)")
    return image_size // 16


def _initialise(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.trunc_normal_(layer.weight, 0.0, 0.02, a=-0.04, b=0.04)
        elif isinstance(layer, nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.02)
        elif isinstance(layer, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(layer.weight)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def _up(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """5×5 stride-2 transposed convolution that doubles the side (TF's 'SAME' deconv2d)."""
    return nn.ConvTranspose2d(in_channels, out_channels, _KERNEL, 2, padding=2, output_padding=1)


def _down(in_channels: int, out_channels: int) -> nn.Conv2d:
    """5×5 stride-2 convolution that halves the side (TF's 'SAME' conv2d)."""
    return nn.Conv2d(in_channels, out_channels, _KERNEL, 2, padding=2)


class DCGANGenerator(nn.Module):
    def __init__(self, channels: int, image_size: int, width: int) -> None:
        super().__init__()
        self.seed_side = _seed_side(image_size)
        self.seed_channels = 8 * width
        self.project = nn.Linear(LATENT_DIM, self.seed_channels * self.seed_side**2)
        widths = [8 * width, 4 * width, 2 * width, width]
        layers: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for wide, narrow in itertools.pairwise(widths):
            layers += [_up(wide, narrow), nn.BatchNorm2d(narrow), nn.ReLU()]
        layers += [_up(widths[-1], channels), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        _initialise(self)

    def forward(self, z: Tensor) -> Tensor:
        seed = self.project(z).view(-1, self.seed_channels, self.seed_side, self.seed_side)
        return self.layers(seed)


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int, image_size: int, width: int) -> None:
        super().__init__()
        side = _seed_side(image_size)
        widths = [width * 2**level for level in range(_STAGES)]
        layers: list[nn.Module] = [_down(channels, widths[0]), nn.LeakyReLU(0.2)]
        for narrow, wide in itertools.pairwise(widths):
            layers += [_down(narrow, wide), nn.BatchNorm2d(wide), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1] * side**2, 1)
        _initialise(self)

    def forward(self, x: Tensor) -> Tensor:
        """One logit per image (real = high)."""
        return self.head(self.features(x).flatten(1)).flatten()
