"""UTAD's perceptual measurement (eq. 8, Section 3.3): the distance of two images' features in an
ImageNet-trained VGG-19 at `conv1_2`, `conv2_2` and `conv3_4` (Section 4.1, Table 3), as a map.

Per layer, the features are normalised to unit length along their channels at every position (as LPIPS
does: without it the deeper layers' larger activations would decide alone) and the squared distance of
the two unit vectors is the layer's map, bilinearly resized to the images' side; the measurement is the
mean of the three maps. The layers' weights are the extraction's lost symbol in "set [·] in our
experiments"; equal weights are this package's choice. The `pixel` measurement (the paper's Table 3 row
of pixel-wise differences, and the departure used without the VGG-19 file) is the mean absolute
difference over the colour channels.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from adbench.weights.registry import VGG19_LAYERS

Measurement = Literal["vgg19", "pixel"]
WEIGHTS_NAME = "vgg19"
# Index in torchvision's `features` Sequential of each convolution whose output is compared.
LAYERS = {"conv1_2": 2, "conv2_2": 7, "conv3_4": 16}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_features(last: int = max(LAYERS.values())) -> nn.Sequential:
    """torchvision's VGG-19 `features` up to layer `last`, the same indices (its state dict's keys)."""
    layers: list[nn.Module] = []
    channels = 3
    for layer in VGG19_LAYERS:
        if isinstance(layer, str):
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, layer, 3, padding=1), nn.ReLU(inplace=False)]
            channels = layer
        if len(layers) > last:
            return nn.Sequential(*layers[: last + 1])
    raise ValueError(f"VGG-19 has no layer {last}")


class PerceptualDistance(nn.Module):
    """`forward(a, b)`: (B, S, S) maps of the perceptual distance between [0, 1] images a and b."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, weights: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.features = vgg19_features()
        if weights is not None:
            own = {key: weights[f"features.{key}"] for key in self.features.state_dict()}
            self.features.load_state_dict(own)
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _activations(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        h = (images - self.mean) / self.std
        found = []
        wanted = set(LAYERS.values())
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in wanted:
                found.append(F.normalize(h, dim=1))
        return found

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        side = a.shape[-2:]
        maps = [
            F.interpolate((fa - fb).square().sum(1, keepdim=True), side, mode="bilinear", align_corners=False)
            for fa, fb in zip(self._activations(a), self._activations(b), strict=True)
        ]
        return torch.cat(maps, dim=1).mean(1)


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, S, S): the mean absolute difference of [0, 1] images over their channels."""
    return (a - b).abs().mean(1)


def load_perceptual() -> PerceptualDistance:
    """The measurement with the stored ImageNet weights (adbench.weights; refused in one line when they
    are missing)."""
    from adbench.weights.store import load

    return PerceptualDistance(load(WEIGHTS_NAME))
