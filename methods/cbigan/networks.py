"""CBiGAN's encoder E: X→Z, generator G: Z→X and discriminator D(x, z) → R (CBiGAN paper, Fig. 3).

All three are built from one residual block (channel multiplier 3, no normalisation, LeakyReLU 0.2):

    [×2 bilinear upsample] → 3×3 conv → act → 3×3 conv → act → 1×1 conv,  plus a 1×1-conv skip;
    add → act → [2×2 average pool]

- G: Dense(64 → 192) → 2×2×48 → blocks of 48, 24, 12, 9, 6, 3 filters, each doubling the side
  (2 → 128 px for objects; at 64 px the first block keeps 2×2) → 1×1 conv to the image channels → tanh.
- E: blocks of 3, 6, 9, 12, 24 filters, each followed by pooling, then 48 unpooled → flatten →
  Dense 48 + LeakyReLU → Dense 64.
- D: the same image trunk as E, flattened; a latent path of 3 × (Dense 512 + LeakyReLU); both
  concatenated → Dense 48 + LeakyReLU → Dense 1 (a linear critic). `features` returns f_D, an
  intermediate activation of the image path (by default the output of its first 3×3 convolution).

At 128 px this gives about 83k parameters in G, 88k in E and 666k in D, as the authors' code.

Weights start as the authors' Keras layers start: Glorot-uniform kernels and zero biases. PyTorch's
default initialisation has a third of that variance; through G's eighteen unnormalised convolutions
the signal then nearly vanishes, G starts by drawing a flat image, and training takes several times
as many steps to draw the object (measured at 64 px: the defect maps separated pin defects at
100-150 steps with Glorot, not within 200 without).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

LATENT_DIM = 64
_SLOPE = 0.2
_TRUNK_FILTERS = (3, 6, 9, 12, 24, 48)  # E and D image paths; all but the last are pooled
_GENERATOR_FILTERS = (48, 24, 12, 9, 6, 3)
_GENERATOR_SEED_SIDE = 2


def _act() -> nn.LeakyReLU:
    return nn.LeakyReLU(_SLOPE)


def keras_initialise(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every convolution and dense layer (Keras' defaults)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _fusable(x: Tensor) -> bool:
    """Inference in float32 on a CPU with oneDNN: the case `ResidualBlock` runs fused."""
    return (
        not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and not torch.is_autocast_enabled("cpu")
    )


def _fused_conv(
    x: Tensor, conv: nn.Conv2d, other: Tensor | None = None, slope: float | None = None
) -> Tensor:
    """conv(x) [+ other] [then LeakyReLU] in one oneDNN call (the kernel torch.compile emits on CPU)."""
    padding = [conv.kernel_size[0] // 2] * 2
    geometry = (padding, [1, 1], [1, 1], 1)
    if other is not None:
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, conv.weight, conv.bias, *geometry, "add", None, None, [], None
        )
    if slope is None:
        return torch.ops.mkldnn._convolution_pointwise(x, conv.weight, conv.bias, *geometry, "none", [], "")
    return torch.ops.mkldnn._convolution_pointwise(
        x, conv.weight, conv.bias, *geometry, "leaky_relu", [slope], ""
    )


class ResidualBlock(nn.Module):
    """With `fuse_inference`, inference on CPU runs each convolution together with its activation or
    the skip addition in one oneDNN call instead of separate passes over memory. The maps at 128 px have
    3 to 6 channels, so these passes, not the arithmetic, dominate: scoring at 128 px is 1.2-1.3×
    faster at batch 32 and 1.05-1.2× at batch 128 (interleaved A/B runs, 2 threads; with the one-conv
    f_D difference of `Discriminator.feature_difference`), with identical outputs. Forward hooks on
    the convolutions do not fire on that path, so D, whose f_D is read by a hook, does not fuse.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        upsample: bool = False,
        pool: bool = False,
        fuse_inference: bool = True,
    ) -> None:
        super().__init__()
        self.fuse_inference = fuse_inference
        self.upsample = (
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False) if upsample else None
        )
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv3 = nn.Conv2d(out_channels, out_channels, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1)
        self.act = _act()
        self.pool = nn.AvgPool2d(2) if pool else None

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample is not None:
            x = self.upsample(x)
        if self.fuse_inference and _fusable(x):
            hidden = _fused_conv(_fused_conv(x, self.conv1, slope=_SLOPE), self.conv2, slope=_SLOPE)
            out = nn.functional.leaky_relu_(
                _fused_conv(hidden, self.conv3, other=_fused_conv(x, self.skip)), _SLOPE
            )
        else:
            main = self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))
            out = self.act(main + self.skip(x))
        return self.pool(out) if self.pool is not None else out


def _trunk(channels: int, fuse_inference: bool = True) -> nn.Sequential:
    filters = (channels, *_TRUNK_FILTERS)
    last = len(_TRUNK_FILTERS) - 1
    return nn.Sequential(
        *(
            ResidualBlock(filters[i], filters[i + 1], pool=i < last, fuse_inference=fuse_inference)
            for i in range(len(_TRUNK_FILTERS))
        )
    )


def _trunk_features(image_size: int) -> int:
    pooled_side = image_size // 2 ** (len(_TRUNK_FILTERS) - 1)
    if pooled_side < 1 or image_size % 2 ** (len(_TRUNK_FILTERS) - 1):
        raise ValueError(f"CBiGAN image side {image_size} must be a multiple of 32")
    return _TRUNK_FILTERS[-1] * pooled_side**2


class Encoder(nn.Module):
    def __init__(self, channels: int, image_size: int) -> None:
        super().__init__()
        self.trunk = _trunk(channels)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(_trunk_features(image_size), 48), _act(), nn.Linear(48, LATENT_DIM)
        )
        keras_initialise(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


class Generator(nn.Module):
    def __init__(self, channels: int, image_size: int) -> None:
        super().__init__()
        doublings = (image_size // _GENERATOR_SEED_SIDE).bit_length() - 1
        if _GENERATOR_SEED_SIDE * 2**doublings != image_size or doublings > len(_GENERATOR_FILTERS):
            raise ValueError(f"CBiGAN image side {image_size} must be 2^k with 4 <= side <= 128")
        self.seed = nn.Linear(LATENT_DIM, _GENERATOR_FILTERS[0] * _GENERATOR_SEED_SIDE**2)
        # The last `doublings` blocks upsample; at 64 px the first block stays at 2×2.
        first_upsampling = len(_GENERATOR_FILTERS) - doublings
        blocks = []
        in_channels = _GENERATOR_FILTERS[0]
        for i, out_channels in enumerate(_GENERATOR_FILTERS):
            blocks.append(ResidualBlock(in_channels, out_channels, upsample=i >= first_upsampling))
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Conv2d(in_channels, channels, 1)
        keras_initialise(self)

    def forward(self, z: Tensor) -> Tensor:
        seed = self.seed(z).view(-1, _GENERATOR_FILTERS[0], _GENERATOR_SEED_SIDE, _GENERATOR_SEED_SIDE)
        return self.to_image(self.blocks(seed)).tanh()


class Discriminator(nn.Module):
    def __init__(self, channels: int, image_size: int, feature_layer: str = "trunk.0.conv1") -> None:
        super().__init__()
        self.trunk = _trunk(channels, fuse_inference=False)
        self.latent = nn.Sequential(
            nn.Linear(LATENT_DIM, 512), _act(), nn.Linear(512, 512), _act(), nn.Linear(512, 512), _act()
        )
        self.joint = nn.Sequential(nn.Linear(_trunk_features(image_size) + 512, 48), _act(), nn.Linear(48, 1))
        image_path = {f"trunk.{name}" for name, _ in self.trunk.named_modules() if name}
        if feature_layer not in image_path:
            valid = ", ".join(sorted(name for name in image_path if name.count(".") == 2))
            raise ValueError(f"unknown discriminator feature layer {feature_layer!r}; valid: {valid}")
        self.feature_layer = feature_layer
        keras_initialise(self)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        joint = torch.cat((self.trunk(x).flatten(1), self.latent(z)), dim=1)
        return self.joint(joint).squeeze(1)

    def feature_difference(self, x: Tensor, y: Tensor) -> Tensor:
        """f_D(x) − f_D(y). A convolution reading the image directly is linear, so its difference is its
        kernel applied to x − y without bias: one convolution instead of two (exact up to rounding)."""
        if self.feature_layer in _IMAGE_CONVOLUTIONS:
            layer = cast(nn.Conv2d, self.get_submodule(self.feature_layer))
            return nn.functional.conv2d(x - y, layer.weight, padding=layer.padding)
        return self.features(x) - self.features(y)

    def features(self, x: Tensor) -> Tensor:
        """f_D: the activation of `feature_layer` on the image path (it does not depend on z).

        The forward pass stops at that layer: the default, D's first convolution, is a fifth of the
        first block's cost.
        """

        def stop(_module: nn.Module, _inputs: object, output: Tensor) -> None:
            raise _FeatureReached(output)

        handle = self.get_submodule(self.feature_layer).register_forward_hook(stop)
        try:
            self.trunk(x)
        except _FeatureReached as reached:
            return reached.output
        finally:
            handle.remove()
        raise AssertionError(f"{self.feature_layer} is not on the image path")  # excluded by __init__


_IMAGE_CONVOLUTIONS = ("trunk.0.conv1", "trunk.0.skip")  # D's first block does not upsample


class _FeatureReached(Exception):
    def __init__(self, output: Tensor) -> None:
        super().__init__()
        self.output = output
