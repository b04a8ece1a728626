"""The networks of GANomaly (Akçay et al., ACCV 2018) and Skip-GANomaly (Akçay et al., IJCNN 2019), as the
authors' samet-akcay/ganomaly (lib/networks.py) and samet-akcay/skip-ganomaly (lib/models/networks.py)
build them. Every convolution is 4×4 and has no bias unless said otherwise; `width` is the code's
ngf = ndf (64), `latent` its nz (100); sides are multiples of 16.

- DCGAN encoder: convolution /2 to `width`, LeakyReLU 0.2; then convolutions /2 doubling the width, each
  with batch norm and LeakyReLU 0.2, down to 4×4; a final 4×4 valid convolution to `latent` × 1 × 1.
- DCGAN decoder: transposed convolution from `latent` × 1 × 1 to 4×4 at width · side / 8, batch norm,
  ReLU; transposed convolutions ×2 halving the width, each with batch norm and ReLU, up to side / 2; a
  transposed convolution ×2 to the image's channels, tanh.
- GANomaly: G = encoder G_E → decoder G_D → encoder E; D = a DCGAN encoder to 1 whose last convolution
  (and a sigmoid) is the classifier, the layers before it the features f(x) of the adversarial loss.
- Skip-GANomaly: G = the pix2pix U-Net of log2(side) down-samplings (widths d, 2d, 4d, 8d, then 8d), each
  decoder level concatenating its encoder level (batch norm, LeakyReLU 0.2 down, ReLU up, tanh out; the
  outermost transposed convolution has a bias); D = a DCGAN encoder to `latent` × 1 × 1 (the features,
  whose distance is the latent loss) and a 3×3 convolution to 1 with a sigmoid.
- Initialisation (the codes' weights_init / init_weights): convolution weights N(0, 0.02), biases 0,
  batch norm scales N(1, 0.02), offsets 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

LATENT_DIM = 100  # nz in both codes


def _check_side(side: int) -> None:
    if side < 16 or side % 16 or 2 ** int(math.log2(side)) != side:
        raise ValueError(f"image side {side}: these networks need a power of two of at least 16")


def dcgan_encoder(channels: int, side: int, width: int, latent: int) -> nn.Sequential:
    """The DCGAN encoder as one Sequential: its last module is the final 4×4 valid convolution."""
    _check_side(side)
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
    size, current = side // 2, width
    while size > 4:
        layers += [nn.Conv2d(current, current * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(current * 2)]
        layers.append(nn.LeakyReLU(0.2))
        current, size = current * 2, size // 2
    layers.append(nn.Conv2d(current, latent, 4, 1, 0, bias=False))
    return nn.Sequential(*layers)


def dcgan_decoder(channels: int, side: int, width: int, latent: int) -> nn.Sequential:
    _check_side(side)
    current = width * side // 8
    layers: list[nn.Module] = [nn.ConvTranspose2d(latent, current, 4, 1, 0, bias=False)]
    layers += [nn.BatchNorm2d(current), nn.ReLU()]
    size = 4
    while size < side // 2:
        layers += [
            nn.ConvTranspose2d(current, current // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(current // 2),
        ]
        layers.append(nn.ReLU())
        current, size = current // 2, size * 2
    layers += [nn.ConvTranspose2d(current, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def initialise(module: nn.Module) -> None:
    """The codes' initialisation, applied to every layer of `module`."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


class GANomalyGenerator(nn.Module):
    """x → G_E(x) = z → G_D(z) = x̂ → E(x̂) = ẑ."""

    def __init__(self, channels: int, side: int, width: int) -> None:
        super().__init__()
        self.encoder = dcgan_encoder(channels, side, width, LATENT_DIM)
        self.decoder = dcgan_decoder(channels, side, width, LATENT_DIM)
        self.reencoder = dcgan_encoder(channels, side, width, LATENT_DIM)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x̂, z and ẑ (both (N, latent))."""
        latent = self.encoder(x)
        reconstruction = self.decoder(latent)
        return reconstruction, latent.flatten(1), self.reencoder(reconstruction).flatten(1)


class GANomalyDiscriminator(nn.Module):
    def __init__(self, channels: int, side: int, width: int) -> None:
        super().__init__()
        layers = list(dcgan_encoder(channels, side, width, 1))
        self.features = nn.Sequential(*layers[:-1])
        self.classifier = layers[-1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """P(real) per image, and the features f(x) (N, 8d, 4, 4) before the classifier."""
        features = self.features(x)
        return torch.sigmoid(self.classifier(features)).flatten(), features


class _UNetLevel(nn.Module):
    """One level of the pix2pix U-Net: down-sample, the inner levels, up-sample, and (below the outermost)
    the input concatenated to the output."""

    def __init__(
        self,
        outer: int,
        inner: int,
        inside: nn.Module | None,
        outermost: bool = False,
        input_channels: int = 0,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        down_in = input_channels if outermost else outer
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
        down.append(nn.Conv2d(down_in, inner, 4, 2, 1, bias=False))
        if inside is not None and not outermost:
            down.append(nn.BatchNorm2d(inner))
        up_in = inner if inside is None else inner * 2
        up: list[nn.Module] = [nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=outermost)]
        up.append(nn.Tanh() if outermost else nn.BatchNorm2d(outer))
        self.model = nn.Sequential(*down, *([inside] if inside is not None else []), *up)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UNetGenerator(nn.Module):
    def __init__(self, channels: int, side: int, width: int) -> None:
        super().__init__()
        _check_side(side)
        if side < 32:
            raise ValueError(f"image side {side}: the U-Net's five fixed levels need at least 32")
        level = _UNetLevel(width * 8, width * 8, None)  # the innermost: 2×2 → 1×1 → 2×2
        for _ in range(int(math.log2(side)) - 5):
            level = _UNetLevel(width * 8, width * 8, level)
        for outer in (width * 4, width * 2, width):
            level = _UNetLevel(outer, outer * 2, level)
        self.model = _UNetLevel(channels, width, level, outermost=True, input_channels=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class SkipGANomalyDiscriminator(nn.Module):
    def __init__(self, channels: int, side: int, width: int) -> None:
        super().__init__()
        self.features = dcgan_encoder(channels, side, width, LATENT_DIM)
        self.classifier = nn.Conv2d(LATENT_DIM, 1, 3, 1, 1, bias=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """P(real) per image, and the features f(x) (N, latent, 1, 1)."""
        features = self.features(x)
        return torch.sigmoid(self.classifier(features)).flatten(), features
