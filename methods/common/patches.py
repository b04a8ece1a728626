"""Splitting images into square patches and stitching per-patch maps back, for patch-based methods.

Positions run 0, stride, 2·stride, ... and always include `size - patch`, so the last row and column of
patches end exactly at the border and every pixel is covered (overlaps are averaged).
"""

from __future__ import annotations

import torch


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
    """Inverse of `extract_patches` for maps: (N * P, patch, patch) -> (N, S, S), overlaps averaged."""
    patch = patch_maps.shape[-1]
    positions = patch_positions(size, patch, stride)
    per_image = patch_maps.reshape(-1, len(positions) ** 2, patch, patch)
    total = patch_maps.new_zeros((per_image.shape[0], size, size))
    count = patch_maps.new_zeros((size, size))
    index = 0
    for y in positions:
        for x in positions:
            total[:, y : y + patch, x : x + patch] += per_image[:, index]
            count[y : y + patch, x : x + patch] += 1
            index += 1
    return total / count
