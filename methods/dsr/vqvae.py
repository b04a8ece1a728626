"""DSR's discrete feature space: a two-level VQ-VAE (VQ-VAE-2 style) whose codebooks K_hi and K_lo the
anomaly simulation and the subspace restriction work in (VitjanZ/DSR_anomaly_detection, discrete_model.py,
read for its layer table).

- Encoder_hi: 4×4 stride-2 convolution to h/2 channels, ReLU, 4×4 stride-2 to h, ReLU, 3×3 to h, a
  residual stack: a quarter of the image's side. Encoder_lo on top of it: 4×4 stride-2 to h, ReLU, 3×3,
  ReLU, a residual stack: an eighth of the side.
- A residual stack holds `layers` units ReLU(x) + conv1×1(ReLU(conv3×3(ReLU(x)))) (no biases, r hidden
  channels; the skip's ReLU is what the code computes, see `ResidualStack`), then a ReLU.
- F_lo = 1×1(Encoder_lo) is quantised with K_lo; Q_lo is upsampled ×2 by a 4×4 transposed convolution
  and concatenated to Encoder_hi's output; F_hi = 1×1(that) is quantised with K_hi. The general appearance
  decoder maps [up(Q_lo), Q_hi] back to an RGB image: 3×3 convolution to h, a residual stack, two 4×4
  stride-2 transposed convolutions (h/2 channels, ReLU between).
- Quantisers: nearest codebook vector by Euclidean distance, straight-through gradients, commitment cost
  0.25; the codebook follows exponential moving averages of its assigned features (decay 0.99, Laplace
  smoothing ε = 1e-5) while training, instead of a codebook loss.
- The paper's sizes: h = 128, r = 64, 2 residual units, 128-dimensional codes, 4,096 of them per level.

The authors publish this VQ-VAE trained on ImageNet (`vq_model_pretrained_128_4096.pckl`): `PUBLISHED_NAMES`
translates our tensor names into that file's, so that it can be imported (adbench/weights) and loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

COMMITMENT_COST = 0.25
EMA_DECAY = 0.99
EMA_EPSILON = 1e-5
# A code whose EMA count of assignments per batch falls below this is unused (`Quantiser.restart_unused`).
UNUSED_BELOW = 0.03


@dataclass(frozen=True)
class VQSizes:
    hidden: int = 128  # h
    residual_hidden: int = 64  # r
    residual_layers: int = 2
    code_dim: int = 128
    codes: int = 4096  # per level


class ResidualStack(nn.Module):
    def __init__(self, channels: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.units = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(channels, hidden, 3, padding=1, bias=False),
                nn.ReLU(),
                nn.Conv2d(hidden, channels, 1, bias=False),
            )
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.units:
            # The skip carries ReLU(x), not x: the authors' unit opens with an in-place ReLU, which
            # rectifies x itself before their `x + block(x)` adds it, and their weights were trained so.
            x = F.relu(x) + unit(x)
        return F.relu(x)


class EncoderHi(nn.Module):
    def __init__(self, sizes: VQSizes) -> None:
        super().__init__()
        h = sizes.hidden
        self.down_1 = nn.Conv2d(3, h // 2, 4, stride=2, padding=1)
        self.down_2 = nn.Conv2d(h // 2, h, 4, stride=2, padding=1)
        self.conv = nn.Conv2d(h, h, 3, padding=1)
        self.residual = ResidualStack(h, sizes.residual_hidden, sizes.residual_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(self.conv(F.relu(self.down_2(F.relu(self.down_1(x))))))


class EncoderLo(nn.Module):
    def __init__(self, sizes: VQSizes) -> None:
        super().__init__()
        h = sizes.hidden
        self.down = nn.Conv2d(h, h, 4, stride=2, padding=1)
        self.conv = nn.Conv2d(h, h, 3, padding=1)
        self.residual = ResidualStack(h, sizes.residual_hidden, sizes.residual_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(F.relu(self.conv(F.relu(self.down(x)))))


class GeneralDecoder(nn.Module):
    """[up(Q_lo), Q_hi] -> RGB image; DSR's general appearance decoder."""

    def __init__(self, sizes: VQSizes) -> None:
        super().__init__()
        h = sizes.hidden
        self.conv = nn.Conv2d(2 * sizes.code_dim, h, 3, padding=1)
        self.residual = ResidualStack(h, sizes.residual_hidden, sizes.residual_layers)
        self.up_1 = nn.ConvTranspose2d(h, h // 2, 4, stride=2, padding=1)
        self.up_2 = nn.ConvTranspose2d(h // 2, 3, 4, stride=2, padding=1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.up_2(F.relu(self.up_1(self.residual(self.conv(codes)))))


class Quantiser(nn.Module):
    """Nearest-codebook-vector quantisation with an EMA-updated codebook."""

    def __init__(self, codes: int, code_dim: int) -> None:
        super().__init__()
        self.codebook = nn.Embedding(codes, code_dim)
        nn.init.normal_(self.codebook.weight)
        # EMA state: assignments per code and the running sum of the features assigned to each.
        self.register_buffer("cluster_size", torch.zeros(codes))
        self.register_buffer("feature_sums", torch.randn(codes, code_dim))
        self.codebook.weight.requires_grad_(False)

    def nearest(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N,) index of each one's nearest codebook vector."""
        return torch.cdist(features, self.codebook.weight).argmin(dim=1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D, h, w) features -> (their codebook vectors with straight-through gradients, the commitment
        loss). In training mode the codebook moves towards the features assigned to it."""
        flat = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
        indices = self.nearest(flat.detach())
        quantised_flat = self.codebook.weight[indices].clone()  # the codes as they were, before the update
        if self.training:
            self._update(flat.detach(), indices)
        commitment = COMMITMENT_COST * F.mse_loss(flat, quantised_flat.detach())
        quantised = flat + (quantised_flat - flat).detach()
        shape = (features.shape[0], features.shape[2], features.shape[3], features.shape[1])
        return quantised.view(shape).permute(0, 3, 1, 2).contiguous(), commitment

    @torch.no_grad()
    def restart_unused(self, features: torch.Tensor, below: float = UNUSED_BELOW) -> int:
        """Move the codes whose EMA assignment count is `below` onto features drawn from (B, D, h, w)
        `features`; the number moved. Only for training the VQ-VAE here (`dsr`'s self-trained departure):
        from a random codebook most features share their nearest code, and EMA alone never moves the rest
        (measured: 1 code of 256 used after 300 steps)."""
        cluster_size: torch.Tensor = self.cluster_size  # type: ignore[assignment]
        unused = torch.nonzero(cluster_size < below).flatten()
        if not len(unused):
            return 0
        flat = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
        picks = flat[torch.randint(len(flat), (len(unused),)).to(flat.device)]
        self.codebook.weight[unused] = picks
        sums: torch.Tensor = self.feature_sums  # type: ignore[assignment]
        sums[unused] = picks
        cluster_size[unused] = 1.0
        return len(unused)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        assigned = F.one_hot(indices, self.codebook.num_embeddings).to(flat.dtype)
        cluster_size: torch.Tensor = self.cluster_size  # type: ignore[assignment]
        sums: torch.Tensor = self.feature_sums  # type: ignore[assignment]
        cluster_size.mul_(EMA_DECAY).add_(assigned.sum(0), alpha=1 - EMA_DECAY)
        total = cluster_size.sum()
        smoothed = (cluster_size + EMA_EPSILON) / (total + len(cluster_size) * EMA_EPSILON) * total
        cluster_size.copy_(smoothed)
        sums.mul_(EMA_DECAY).add_(assigned.t() @ flat, alpha=1 - EMA_DECAY)
        self.codebook.weight.copy_(sums / cluster_size[:, None])


class VQVAE(nn.Module):
    def __init__(self, sizes: VQSizes) -> None:
        super().__init__()
        self.encoder_hi = EncoderHi(sizes)
        self.encoder_lo = EncoderLo(sizes)
        self.to_lo = nn.Conv2d(sizes.hidden, sizes.code_dim, 1)
        self.to_hi = nn.Conv2d(sizes.hidden + sizes.code_dim, sizes.code_dim, 1)
        self.quantiser_lo = Quantiser(sizes.codes, sizes.code_dim)
        self.quantiser_hi = Quantiser(sizes.codes, sizes.code_dim)
        self.upsample_lo = nn.ConvTranspose2d(sizes.code_dim, sizes.code_dim, 4, stride=2, padding=1)
        self.decoder = GeneralDecoder(sizes)

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Encoder_hi's output, F_lo) of [0, 1] RGB images."""
        encoded_hi = self.encoder_hi(images)
        return encoded_hi, self.to_lo(self.encoder_lo(encoded_hi))

    def f_hi(self, encoded_hi: torch.Tensor, q_lo: torch.Tensor) -> torch.Tensor:
        return self.to_hi(torch.cat((encoded_hi, self.upsample_lo(q_lo)), dim=1))

    def decode(self, q_lo: torch.Tensor, q_hi: torch.Tensor) -> torch.Tensor:
        """The general appearance decoder's image of the two levels' codes."""
        return self.decoder(torch.cat((self.upsample_lo(q_lo), q_hi), dim=1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, the two commitment losses summed, Q_lo, Q_hi)."""
        encoded_hi, f_lo = self.features(images)
        q_lo, commitment_lo = self.quantiser_lo(f_lo)
        q_hi, commitment_hi = self.quantiser_hi(self.f_hi(encoded_hi, q_lo))
        return self.decode(q_lo, q_hi), commitment_lo + commitment_hi, q_lo, q_hi


# Our tensor names -> the authors' (their module names, then their parameter names inside).
_PUBLISHED_PREFIXES = (
    ("encoder_hi.", "_encoder_b."),
    ("encoder_lo.", "_encoder_t."),
    ("to_lo.", "_pre_vq_conv_top."),
    ("to_hi.", "_pre_vq_conv_bot."),
    ("quantiser_lo.", "_vq_vae_top."),
    ("quantiser_hi.", "_vq_vae_bot."),
    ("upsample_lo.", "upsample_t."),
    ("decoder.", "_decoder_b."),
)
_PUBLISHED_PARTS = (
    (r"_encoder_b\.down_1\.", "_encoder_b._conv_1."),
    (r"_encoder_b\.down_2\.", "_encoder_b._conv_2."),
    (r"_encoder_b\.conv\.", "_encoder_b._conv_3."),
    (r"_encoder_t\.down\.", "_encoder_t._conv_1."),
    (r"_encoder_t\.conv\.", "_encoder_t._conv_2."),
    (r"_decoder_b\.conv\.", "_decoder_b._conv_1."),
    (r"_decoder_b\.up_1\.", "_decoder_b._conv_trans_1."),
    (r"_decoder_b\.up_2\.", "_decoder_b._conv_trans_2."),
    (r"\.residual\.units\.(\d+)\.", r"._residual_stack._layers.\1._block."),
    (r"\.codebook\.weight$", "._embedding.weight"),
    (r"\.cluster_size$", "._ema_cluster_size"),
    (r"\.feature_sums$", "._ema_w"),
)


def published_name(name: str) -> str:
    """Our VQ-VAE's tensor `name` as the authors' checkpoint names it."""
    for ours, theirs in _PUBLISHED_PREFIXES:
        if name.startswith(ours):
            name = theirs + name[len(ours) :]
            break
    for pattern, replacement in _PUBLISHED_PARTS:
        name = re.sub(pattern, replacement, name)
    return name


def published_shapes(sizes: VQSizes = VQSizes()) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of the authors' pretrained VQ-VAE file (for the weights registry)."""
    return {published_name(k): tuple(v.shape) for k, v in VQVAE(sizes).state_dict().items()}


def from_published(tensors: dict[str, torch.Tensor], sizes: VQSizes = VQSizes()) -> dict[str, torch.Tensor]:
    """The authors' tensors under our names (the inverse of `published_name`)."""
    ours = {published_name(k): k for k in VQVAE(sizes).state_dict()}
    return {ours[k]: v for k, v in tensors.items()}
