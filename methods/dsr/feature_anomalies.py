"""DSR's anomalies simulated in the quantised feature space (the paper's §3.2; train_dsr.py's
`generate_fake_anomalies_joined`, read for facts).

Inside a Perlin mask (common/perlin.py, max-pooled to the features' resolution) each quantised feature is
replaced by a codebook vector drawn at random among those near the continuous feature but not nearest to
it: the codes ranked 5 % to `strength`·K by distance (K codes), strength uniform in [0.2, 1) per image (the
code's `anom_par` 0.2). A small strength gives subtle anomalies, a large one anything.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_STRENGTH = 0.2  # anom_par
NEAREST_SKIPPED = 0.05  # the nearest 5 % of the codebook are never chosen: too close to be an anomaly


def random_strengths(count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.rand(count, generator=generator) * (1 - MIN_STRENGTH) + MIN_STRENGTH


def mask_at(masks: torch.Tensor, side: int) -> torch.Tensor:
    """(B, 1, S, S) image-resolution masks max-pooled to (B, 1, side, side): a cell is anomalous when any
    of its pixels is."""
    return F.max_pool2d(masks, masks.shape[-1] // side)


def distant_codes(
    features: torch.Tensor,
    codebook: torch.Tensor,
    strengths: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, D, h, w) continuous features -> (B, D, h, w) codebook vectors, each drawn uniformly among the
    codes ranked from 5 % to its image's strength·K by distance to the feature."""
    count = codebook.shape[0]
    replaced = []
    for feature_map, strength in zip(features, strengths, strict=True):
        flat = feature_map.flatten(1).t()  # (h·w, D)
        ranked_to = max(1, min(int(float(strength) * count) + 1, count - 1))
        nearest = torch.cdist(flat, codebook).topk(ranked_to, dim=1, largest=False).indices
        candidates = nearest[:, int(count * NEAREST_SKIPPED) :]
        picks = torch.randint(candidates.shape[1], (len(flat),), generator=generator).to(candidates.device)
        chosen = codebook[candidates[torch.arange(len(flat), device=candidates.device), picks]]
        replaced.append(chosen.t().reshape(feature_map.shape))
    return torch.stack(replaced)


def with_feature_anomalies(
    features: torch.Tensor,
    quantised: torch.Tensor,
    codebook: torch.Tensor,
    masks: torch.Tensor,
    strengths: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`quantised` with the cells under `masks` (image resolution) replaced by `distant_codes`."""
    cells = mask_at(masks, quantised.shape[-1]).to(quantised)
    return cells * distant_codes(features, codebook, strengths, generator) + (1 - cells) * quantised
