"""UTAD's two networks (Sections 3.1, 3.2 and 4.1 of the paper; its authors published no code, so every
layer the text leaves open is a choice, named as such in detector.py's docstring).

- IE-Net (`IENet`): an encoder of inception blocks (GoogLeNet's module, the paper's [45]) each followed
  by 2×2 max pooling; a Gaussian latent whose mean and log-variance come from a three-layer MLP applied
  at every cell of the encoder's feature map (1×1 convolutions); a decoder of as many inception blocks
  each followed by ×2 nearest upsampling, then a 3×3 convolution with a sigmoid: the impression. The
  mutual-information discriminator is a four-layer MLP, also per cell, on a (feature, latent) pair.
- Expert-Net (`ExpertNet`, after MUNIT, the paper's [23]): a detail extractor (3 convolutions, adaptive
  average pooling) giving a detail vector; two content encoders (4 convolution blocks, 2 residual blocks),
  one for the impression and one for the image; two decoders (2 residual blocks normalised by AdaIN whose
  scales and shifts an MLP computes from a detail vector, then 4 convolution blocks, two of them after ×2
  upsampling, the last one the sigmoid output).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

ADAIN_EPS = 1e-5


class InceptionBlock(nn.Module):
    """Four branches side by side, concatenated: 1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3 max pool → 1×1; every
    convolution followed by batch norm and ReLU. Each branch gives a quarter of `out_channels`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"an inception block's width {out_channels} must be a multiple of 4")
        b = out_channels // 4
        self.branches = nn.ModuleList(
            [
                _conv_bn_relu(in_channels, b, 1),
                nn.Sequential(_conv_bn_relu(in_channels, b, 1), _conv_bn_relu(b, b, 3)),
                nn.Sequential(_conv_bn_relu(in_channels, b, 1), _conv_bn_relu(b, b, 5)),
                nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _conv_bn_relu(in_channels, b, 1)),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _cell_mlp(widths: list[int]) -> nn.Sequential:
    """Fully connected layers applied at every cell of a feature map (1×1 convolutions), ReLU between."""
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Conv2d(a, b, 1))
        if index < len(widths) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class IENet(nn.Module):
    """The impression extractor: `encode` gives the encoder's features and the latent's mean and
    log-variance; `decode` a latent's impression in [0, 1]; `mutual_information_logits` the
    discriminator's logits for (feature, latent) pairs."""

    def __init__(self, channels: int, width: int, latent: int, blocks: int) -> None:
        super().__init__()
        widths = [width * 2**level for level in range(blocks)]
        self.encoder = nn.Sequential(
            *(
                layer
                for a, b in zip([channels, *widths[:-1]], widths, strict=True)
                for layer in (InceptionBlock(a, b), nn.MaxPool2d(2))
            )
        )
        feature = widths[-1]
        self.latent_head = _cell_mlp([feature, feature, feature, 2 * latent])
        decoder_widths = widths[::-1]
        self.decoder = nn.Sequential(
            *(
                layer
                for a, b in zip([latent, *decoder_widths[:-1]], decoder_widths, strict=True)
                for layer in (InceptionBlock(a, b), nn.Upsample(scale_factor=2, mode="nearest"))
            ),
            nn.Conv2d(decoder_widths[-1], channels, 3, padding=1),
            nn.Sigmoid(),
        )
        self.discriminator = _cell_mlp([feature + latent, feature, feature, feature, 1])

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features, latent mean, latent log-variance), each (B, ·, S/2^blocks, S/2^blocks)."""
        features = self.encoder(images)
        mean, log_variance = self.latent_head(features).chunk(2, dim=1)
        return features, mean, log_variance

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents)

    def mutual_information_logits(self, features: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat((features, latents), dim=1))

    def impression(self, images: torch.Tensor) -> torch.Tensor:
        """The anomaly-free impression, decoded from the latent's mean."""
        return self.decode(self.encode(images)[1])


def shuffled_latents(latents: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The negatives of the mutual-information discriminator: the batch's latents rolled by a random
    offset in 1..B−1, a permutation of the batch that pairs no image's features with its own latent."""
    count = len(latents)
    if count < 2:
        raise ValueError("the mutual-information negatives need a batch of at least 2 images")
    offset = int(torch.randint(1, count, (1,), generator=generator))
    return latents.roll(offset, dims=0)


def adain(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Adaptive instance normalisation (eq. 7): each channel of each image normalised to zero mean and
    unit standard deviation over its positions, then given `scale` as its standard deviation and `shift`
    as its mean ((B, C) each)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + ADAIN_EPS).sqrt()
    return scale[:, :, None, None] * (x - mean) / std + shift[:, :, None, None]


class _ResidualBlock(nn.Module):
    """Two 3×3 convolutions with a skip connection; instance norm, or AdaIN when given parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.conv_2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.channels = channels

    def forward(self, x: torch.Tensor, adain_parameters: torch.Tensor | None = None) -> torch.Tensor:
        """`adain_parameters` (B, 4C): scale and shift of the first normalisation, then of the second."""
        if adain_parameters is None:
            h = F.relu(F.instance_norm(self.conv_1(x)))
            return x + F.instance_norm(self.conv_2(h))
        s1, b1, s2, b2 = adain_parameters.split(self.channels, dim=1)
        h = F.relu(adain(self.conv_1(x), s1, b1))
        return x + adain(self.conv_2(h), s2, b2)


def _conv_block(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, padding_mode="reflect"),
        nn.InstanceNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ContentEncoder(nn.Module):
    """MUNIT's content encoder: a 7×7 convolution, two 4×4 stride-2 ones doubling the width, a 3×3 one
    (4 blocks, instance norm), then residual blocks; (B, 4w, S/4, S/4)."""

    def __init__(self, channels: int, width: int, residual_blocks: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            _conv_block(channels, width, 7),
            _down_block(width, 2 * width),
            _down_block(2 * width, 4 * width),
            _conv_block(4 * width, 4 * width, 3),
        )
        self.residual = nn.ModuleList(_ResidualBlock(4 * width) for _ in range(residual_blocks))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.convs(images)
        for block in self.residual:
            h = block(h)
        return h


def _down_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 4, 2, padding=1, padding_mode="reflect"),
        nn.InstanceNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Decoder(nn.Module):
    """MUNIT's decoder: residual blocks normalised by AdaIN (parameters from a three-layer MLP on a detail
    vector), then ×2 nearest upsampling and a 5×5 convolution twice (halving the width), a 3×3 convolution
    and a 7×7 one with a sigmoid: an image in [0, 1]."""

    def __init__(self, channels: int, width: int, residual_blocks: int, detail: int, mlp_width: int) -> None:
        super().__init__()
        content = 4 * width
        self.residual = nn.ModuleList(_ResidualBlock(content) for _ in range(residual_blocks))
        self.mlp = nn.Sequential(
            nn.Linear(detail, mlp_width),
            nn.ReLU(inplace=True),
            nn.Linear(mlp_width, mlp_width),
            nn.ReLU(inplace=True),
            nn.Linear(mlp_width, 4 * content * residual_blocks),
        )
        self.convs = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv_block(content, 2 * width, 5),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv_block(2 * width, width, 5),
            _conv_block(width, width, 3),
            nn.Conv2d(width, channels, 7, padding=3, padding_mode="reflect"),
            nn.Sigmoid(),
        )

    def adain_parameters(self, detail: torch.Tensor) -> list[torch.Tensor]:
        """Per residual block, (B, 4C): scales and shifts of its two AdaIN layers. The scales are
        1 + the MLP's output, so that an untrained MLP leaves the normalised activations as they are."""
        parameters = self.mlp(detail).chunk(len(self.residual), dim=1)
        return [_one_plus_scales(p) for p in parameters]

    def forward(self, content: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
        h = content
        for block, parameters in zip(self.residual, self.adain_parameters(detail), strict=True):
            h = block(h, parameters)
        return self.convs(h)


def _one_plus_scales(parameters: torch.Tensor) -> torch.Tensor:
    s1, b1, s2, b2 = parameters.chunk(4, dim=1)
    return torch.cat((1 + s1, b1, 1 + s2, b2), dim=1)


class DetailExtractor(nn.Module):
    """Three convolutions (7×7, then two 4×4 of stride 2), ReLU between, then adaptive average pooling:
    (B, detail)."""

    def __init__(self, channels: int, width: int, detail: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(channels, width, 7, padding=3, padding_mode="reflect"),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, padding=1, padding_mode="reflect"),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, detail, 4, 2, padding=1, padding_mode="reflect"),
            nn.AdaptiveAvgPool2d(1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.convs(images).flatten(1)


class ExpertNet(nn.Module):
    """`reconstruct(impression, image)`: the high-fidelity reconstruction, the impression's content
    decoded with the image's details; `naive_impression(image, impression)`: the image's content decoded
    with the impression's details."""

    def __init__(self, channels: int, width: int, residual_blocks: int, detail: int, mlp_width: int) -> None:
        super().__init__()
        self.details = DetailExtractor(channels, width, detail)
        self.impression_encoder = ContentEncoder(channels, width, residual_blocks)
        self.image_encoder = ContentEncoder(channels, width, residual_blocks)
        self.image_decoder = Decoder(channels, width, residual_blocks, detail, mlp_width)
        self.impression_decoder = Decoder(channels, width, residual_blocks, detail, mlp_width)

    def reconstruct(self, impression: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
        return self.image_decoder(self.impression_encoder(impression), detail)

    def naive_impression(self, image: torch.Tensor, impression_detail: torch.Tensor) -> torch.Tensor:
        return self.impression_decoder(self.image_encoder(image), impression_detail)
