"""Splitting images into square patches and stitching per-patch maps back, for patch-based methods.

Positions run 0, stride, 2·stride, ... and always include `size - patch`, so the last row and column of
patches end exactly at the border and every pixel is covered (overlaps are averaged).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from adbench.detector import Scores


def patch_positions(size: int, patch: int, stride: int) -> list[int]:
    """Top-left offsets along one axis."""
    if patch > size:
        raise ValueError(f"patch {patch} is larger than the image {size}")
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    positions = list(range(0, size - patch + 1, stride))
    if positions[-1] != size - patch:
        positions.append(size - patch)
    return positions


def extract_patches(images: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """(N, C, S, S) -> (N * P, C, patch, patch), patches of each image contiguous, row-major."""
    positions = patch_positions(images.shape[-1], patch, stride)
    tiles = [images[:, :, y : y + patch, x : x + patch] for y in positions for x in positions]
    return torch.stack(tiles, dim=1).flatten(0, 1)


def stitch_average(patch_maps: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Inverse of `extract_patches` for maps or images: (N * P, [C,] patch, patch) -> (N, [C,] S, S),
    overlaps averaged."""
    patch = patch_maps.shape[-1]
    positions = patch_positions(size, patch, stride)
    per_image = patch_maps.reshape(-1, len(positions) ** 2, *patch_maps.shape[1:])
    total = patch_maps.new_zeros((per_image.shape[0], *patch_maps.shape[1:-2], size, size))
    count = patch_maps.new_zeros((size, size))
    index = 0
    for y in positions:
        for x in positions:
            total[..., y : y + patch, x : x + patch] += per_image[:, index]
            count[y : y + patch, x : x + patch] += 1
            index += 1
    return total / count


# Scores one batch of patches: (B, C, p, p) -> a score per patch (B,) and a map per patch (B, p, p).
PatchScorer = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def score_tiled(
    images: torch.Tensor, patch: int, stride: int, batch_size: int, score_patches: PatchScorer
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score (N, C, S, S) images patch by patch: per-patch scores (N, P) and stitched maps (N, S, S).

    At most `batch_size` patches go through `score_patches` at once; images that are a single patch
    (whole objects) are batched together, tiled images are cut one group at a time to bound memory.
    """
    size = images.shape[-1]
    patches_per_image = len(patch_positions(size, patch, stride)) ** 2
    scores, maps = [], []
    for group in images.split(max(1, batch_size // patches_per_image)):
        parts = [score_patches(chunk) for chunk in extract_patches(group, patch, stride).split(batch_size)]
        scores.append(torch.cat([patch_scores for patch_scores, _ in parts]).view(len(group), -1))
        maps.append(stitch_average(torch.cat([patch_maps for _, patch_maps in parts]), size, stride))
    return torch.cat(scores), torch.cat(maps)


def reconstruct_tiled(
    images: torch.Tensor,
    patch: int,
    stride: int,
    batch_size: int,
    reconstruct_patches: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Reconstruct (N, C, S, S) images patch by patch: (B, C, p, p) -> (B, C', p, p) per batch, stitched
    into (N, C', S, S) with overlaps averaged, as `score_tiled` stitches maps."""

    def without_scores(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return patches.new_zeros(len(patches)), reconstruct_patches(patches)

    return score_tiled(images, patch, stride, batch_size, without_scores)[1]


def score_gan_tiled(
    images: torch.Tensor, device: torch.device, patch: int, batch_size: int, score_patches: PatchScorer
) -> Scores:
    """Score [0, 1] `images` in non-overlapping patches scaled to [−1, 1] (a tanh generator's range), without
    gradients: the image score is the largest patch score, the maps are stitched."""
    with torch.no_grad():
        patch_scores, maps = score_tiled(images.to(device) * 2 - 1, patch, patch, batch_size, score_patches)
    return Scores(patch_scores.amax(dim=1).double().cpu().numpy(), maps.float().cpu().numpy())


def reconstruct_gan_tiled(
    images: torch.Tensor,
    device: torch.device,
    patch: int,
    batch_size: int,
    reconstruct_patches: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """`reconstruct_tiled` of [0, 1] `images` through a generator of [−1, 1] patches, back in [0, 1]."""
    with torch.no_grad():
        reconstructions = reconstruct_tiled(
            images.to(device) * 2 - 1, patch, patch, batch_size, reconstruct_patches
        )
    return ((reconstructions + 1) / 2).cpu()
