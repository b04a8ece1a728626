"""Training-time augmentation on tensors (torch only, no torchvision).

Both policies of MVTec AD §4.2 are one random affine resampling: textures get rotated square crops
that stay inside the image; objects get the whole image shifted and rotated, with the border pixels
extended into the gap. Randomness comes from torch's global RNG, which the harness seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentPolicy:
    crop_size: int  # side of the output; smaller than the image = random crops (textures)
    min_angle_deg: float
    max_angle_deg: float
    max_shift: float = 0.0  # objects: translation as a fraction of the image side
    mirror: bool = False  # random horizontal flips, where the category permits them


def random_thetas(count: int, policy: AugmentPolicy, image_size: int) -> torch.Tensor:
    """(count, 2, 3) affine maps from output to input coordinates (both normalised to [-1, 1])."""
    angles = torch.deg2rad(
        policy.min_angle_deg + (policy.max_angle_deg - policy.min_angle_deg) * torch.rand(count)
    )
    scale = policy.crop_size / image_size
    if scale < 1.0:
        # Keep the rotated crop's corners inside the image: its half-diagonal is scale·√2 (normalised).
        reach = max(0.0, 1.0 - scale * math.sqrt(2.0))
        shifts = (torch.rand(count, 2) * 2 - 1) * reach
    else:
        shifts = (torch.rand(count, 2) * 2 - 1) * 2 * policy.max_shift
    cos, sin = torch.cos(angles) * scale, torch.sin(angles) * scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shifts[:, 0]], 1), torch.stack([sin, cos, shifts[:, 1]], 1)], 1
    )
    if policy.mirror:
        flip = torch.rand(count) < 0.5
        theta[flip, :, 0] *= -1
    return theta


def random_views(images: torch.Tensor, count: int, policy: AugmentPolicy) -> torch.Tensor:
    """`count` augmented views of images drawn with replacement from (N, C, S, S)."""
    picks = torch.randint(len(images), (count,))
    theta = random_thetas(count, policy, images.shape[-1]).to(images.device, images.dtype)
    out_shape = (count, images.shape[1], policy.crop_size, policy.crop_size)
    grid = F.affine_grid(theta, list(out_shape), align_corners=False)
    return F.grid_sample(
        images[picks.to(images.device)], grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def partly_rotated_views(
    images: torch.Tensor, count: int, max_angle_deg: float, rotated_share: float
) -> torch.Tensor:
    """`count` images drawn with replacement from (N, C, S, S), a `rotated_share` of them replaced by views
    rotated uniformly within ±`max_angle_deg` (border extended); none rotated when the angle is 0. DRAEM's
    and DSR's training views."""
    views = images[torch.randint(len(images), (count,)).to(images.device)]
    rotated = torch.rand(count) < rotated_share
    if max_angle_deg > 0 and rotated.any():
        policy = AugmentPolicy(images.shape[-1], -max_angle_deg, max_angle_deg)
        views[rotated.to(images.device)] = random_views(images, int(rotated.sum()), policy)
    return views
