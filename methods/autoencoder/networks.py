"""The convolutional autoencoder of Bergmann et al. (VISAPP 2019), as used in MVTec AD §4.1.2.

Encoder for a 128×128 input (LeakyReLU 0.2 after every layer but the last):

    conv 32 4×4/2, 32 4×4/2, 32 3×3/1, 64 4×4/2, 64 3×3/1, 128 4×4/2, 64 3×3/1, 32 3×3/1,
    then `latent` filters k×k valid -> 1×1×latent   (k = 8 at 128 px)

The decoder mirrors it with transposed convolutions and ends in a linear layer (images are in [0, 1]
and the L2 loss needs no squashing). For 256×256 objects one more stride-2 layer of 32 filters leads
the encoder (and closes the decoder). Other sides divisible by 16 (32 with the extra layer) work the
same way with k = side / 16, which the smoke budget uses for small images.
"""

from __future__ import annotations

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


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2)


def bottleneck_kernel(image_size: int, extra_layer: bool) -> int:
    downsampling = 32 if extra_layer else 16
    if image_size % downsampling:
        raise ValueError(f"autoencoder input side {image_size} must be divisible by {downsampling}")
    return image_size // downsampling


class ConvAutoencoder(nn.Module):
    def __init__(self, channels: int, image_size: int, latent_dim: int, extra_layer: bool) -> None:
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
        decoder.pop()  # the output layer stays linear
        self.decoder = nn.Sequential(*decoder)

    def forward(self, images: Tensor) -> Tensor:
        return self.decoder(self.encoder(images))
