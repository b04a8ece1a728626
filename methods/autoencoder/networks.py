"""The convolutional autoencoder of Bergmann et al. (VISAPP 2019), as used in MVTec AD §4.1.2.

Encoder for a 128×128 input (LeakyReLU 0.2 after every layer but the last):

    conv 32 4×4/2, 32 4×4/2, 32 3×3/1, 64 4×4/2, 64 3×3/1, 128 4×4/2, 64 3×3/1, 32 3×3/1,
    then `latent` filters k×k valid -> 1×1×latent   (k = 8 at 128 px)

The decoder mirrors it with transposed convolutions and ends in a linear layer (images are in [0, 1]
and the losses need no squashing), or, as a parameter, in a sigmoid (which rebuilt photographs into one
flat image under the SSIM loss: ssim.py). For
256×256 objects one more stride-2 layer of 32 filters leads
the encoder (and closes the decoder). Other sides divisible by 16 (32 with the extra layer) work the
same way with k = side / 16, which the smoke budget uses for small images.

Initialisation (measured, because torch's default starves the latent): every layer draws its weights
He-uniform for LeakyReLU 0.2 with zero biases, the fan-in of a stride-s transposed convolution counted
as the (k/s)² taps that reach each output pixel. With torch's default (a third of He's variance, and
transposed fan-ins counted as k²), a 128 px batch of random images reached the latent with a spread over
inputs of 1e-4 and the reconstruction with 2e-9; the encoder's weight gradients were 1e-12, below Adam's
ε and the weight-decay term, so training drove the encoder to zero and every input decoded to one
template. Glorot-uniform (a Keras CAE's start) gives 2e-3 and 1e-6; this scheme 0.14 and 0.12.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn

# (out_channels, kernel, stride) of the encoder body after the optional extra layer.
_ENCODER_BODY = (
    (32, 4, 2),
    (32, 4, 2),
    (32, 3, 1),
    (64, 4, 2),
    (64, 3, 1),
    (128, 4, 2),
    (64, 3, 1),
    (32, 3, 1),
)
_EXTRA_LAYER = (32, 4, 2)


_SLOPE = 0.2


def _act() -> nn.Module:
    return nn.LeakyReLU(_SLOPE)


def bottleneck_kernel(image_size: int, extra_layer: bool) -> int:
    downsampling = 32 if extra_layer else 16
    if image_size % downsampling:
        raise ValueError(f"autoencoder input side {image_size} must be divisible by {downsampling}")
    return image_size // downsampling


def _he_uniform(layer: nn.Conv2d | nn.ConvTranspose2d, fan_in: int) -> None:
    bound = math.sqrt(3.0 * 2.0 / (1.0 + _SLOPE**2) / fan_in)
    nn.init.uniform_(layer.weight, -bound, bound)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _taps_per_output(layer: nn.Conv2d | nn.ConvTranspose2d) -> int:
    """Kernel taps that reach one output pixel: k² for a convolution, (k/s)² for a transposed one."""
    height, width = layer.kernel_size
    if isinstance(layer, nn.ConvTranspose2d):
        height, width = max(1, height // layer.stride[0]), max(1, width // layer.stride[1])
    return height * width


class ConvAutoencoder(nn.Module):
    def __init__(
        self, channels: int, image_size: int, latent_dim: int, extra_layer: bool, sigmoid_output: bool = False
    ) -> None:
        super().__init__()
        layers = ((_EXTRA_LAYER,) if extra_layer else ()) + _ENCODER_BODY
        kernel = bottleneck_kernel(image_size, extra_layer)
        encoder: list[nn.Module] = []
        in_channels = channels
        for out_channels, size, stride in layers:
            encoder += [
                nn.Conv2d(in_channels, out_channels, size, stride, padding=1 if size > 1 else 0),
                _act(),
            ]
            in_channels = out_channels
        encoder.append(nn.Conv2d(in_channels, latent_dim, kernel))
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, in_channels, kernel), _act()]
        # Each decoder layer maps its encoder twin's output channels back to that twin's input channels.
        twin_inputs = [channels, *(c for (c, _, _) in layers[:-1])]
        for (_, size, stride), out_channels in zip(reversed(layers), reversed(twin_inputs), strict=True):
            decoder += [nn.ConvTranspose2d(in_channels, out_channels, size, stride, padding=1), _act()]
            in_channels = out_channels
        decoder.pop()  # the output layer is linear, or squashed into [0, 1] by `sigmoid_output`
        if sigmoid_output:
            decoder.append(nn.Sigmoid())
        self.decoder = nn.Sequential(*decoder)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
                _he_uniform(layer, layer.in_channels * _taps_per_output(layer))
        # The decoder's first layer reads the 1×1 latent: one tap per output pixel, whatever its kernel.
        _he_uniform(cast(nn.ConvTranspose2d, self.decoder[0]), latent_dim)
        # Channels-last convolutions: a training step at 256 px took 0.32 s instead of 0.44 s on 2 CPU cores
        # (3 channels, batch 16), texture patches 10-20 % less; the numbers change only in rounding.
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it

    def forward(self, images: Tensor) -> Tensor:
        return self.decoder(self.encoder(images.contiguous(memory_format=torch.channels_last)))
