"""DRAEM's simulated anomalies: a Perlin-noise mask filled with an augmented texture image, blended into a
defect-free training image (Zavrtanik et al., ICCV 2021, §3.3; VitjanZ/DRAEM data_loader.py, whose image
stage DSR's data_loader.py repeats for its upsampling module).

- The texture: a random image of the anomaly source, resized to the image's side, changed by 3 distinct
  augmenters of the code's 10 (gamma contrast in [0.5, 2] per channel, brightness ×[0.8, 1.2] ±30/255,
  sharpness, hue and saturation ±50/255 per channel, solarisation above [32, 128]/255 half the time,
  posterisation to 1–8 bits, inversion, auto-contrast, equalisation, rotation in ±45°).
- The blend inside the mask M: (1 − β)·texture + β·image with the opacity β uniform in [0, 0.8); outside
  it the image is unchanged. Half of the views (uniformly, the code's `no_anomaly > 0.5`) are left
  defect-free with an empty mask.
- The source: DRAEM's paper and code use the DTD texture set (a folder, `FolderTextures`; DTD's
  `images/` as distributed works as it is). `ProceduralTextures` generates textures instead (coloured
  fractal Perlin noise, gratings and checkerboards) for runs without one: a departure, since the
  network then learns to find only what such textures look like.

Textures are RGB in [0, 1]; grayscale categories get their luminance after augmentation (the hue and
saturation augmenters need colour).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from kornia.color import hsv_to_rgb, rgb_to_grayscale, rgb_to_hsv
from kornia.enhance import equalize, posterize, sharpness
from kornia.geometry.transform import rotate
from PIL import Image

from adbench.data.decode import open_image, read_header
from adbench.errors import AdbenchError
from adbench_methods.common.perlin import perlin_noise

MAX_OPACITY = 0.8  # β < 0.8: the texture always shows through by at least 20 %
DEFECT_FREE_SHARE = 0.5
AUGMENTERS_PER_TEXTURE = 3
TEXTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class TextureSource(Protocol):
    def textures(self, count: int, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(count, 3, size, size) RGB textures in [0, 1]."""


class FolderTextures:
    """Images of a folder and its subfolders (DTD's `images/` holds one folder per texture class)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = texture_files(folder)

    def textures(self, count: int, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        picks = torch.randint(len(self.files), (count,), generator=generator)
        return torch.stack([_read_texture(self.files[int(i)], size) for i in picks])


def texture_files(folder: Path) -> list[Path]:
    """The texture images under `folder`, sorted; AdbenchError naming it when it holds none, or naming the
    first file whose header cannot be read."""
    if not folder.is_dir():
        raise AdbenchError(
            f"{folder}: no such folder of anomaly-source textures; give a folder of images (DTD's "
            "images/ as distributed) or leave anomaly_source empty for the built-in procedural textures"
        )
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in TEXTURE_SUFFIXES and p.is_file())
    for path in files:  # headers only: an unreadable file stops the run before training, not during it
        read_header(path)
    if not files:
        raise AdbenchError(
            f"{folder}: holds no images ({', '.join(TEXTURE_SUFFIXES)}) to use as anomaly-source textures; "
            "point anomaly_source at a folder of images, or leave it empty for the procedural textures"
        )
    return files


def _read_texture(path: Path, size: int) -> torch.Tensor:
    with open_image(path) as image:
        rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        array = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


class ProceduralTextures:
    """Textures generated on the fly: coloured fractal Perlin noise, gratings or checkerboards, with two
    to three random colours and Perlin-noise shading, so that no two are alike."""

    def textures(self, count: int, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        makers = (_fractal, _grating, _checkerboard)
        kinds = torch.randint(len(makers), (count,), generator=generator)
        return torch.stack([_colourise(makers[int(k)](size, generator), generator) for k in kinds])


def _rand(generator: torch.Generator | None, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _fractal(size: int, generator: torch.Generator | None) -> torch.Tensor:
    cells = 2 ** int(torch.randint(1, 4, (), generator=generator))
    octaves = int(torch.randint(1, 5, (), generator=generator))
    noise = sum(
        0.5**octave * perlin_noise(size, size, (cells * 2**octave,) * 2, generator)
        for octave in range(octaves)
    )
    assert isinstance(noise, torch.Tensor)
    return (noise - noise.min()) / (noise.max() - noise.min()).clamp_min(1e-6)


def _phase_field(size: int, generator: torch.Generator | None) -> torch.Tensor:
    """2π·f·(x cos θ + y sin θ) + φ over the image, f cycles per side."""
    angle, frequency = _rand(generator, 0, math.pi), _rand(generator, 2, 16)
    coords = (torch.arange(size) + 0.5) / size
    y, x = coords[:, None], coords[None, :]
    return 2 * math.pi * frequency * (x * math.cos(angle) + y * math.sin(angle)) + _rand(generator, 0, 6.3)


def _grating(size: int, generator: torch.Generator | None) -> torch.Tensor:
    return (_phase_field(size, generator).sin() + 1) / 2


def _checkerboard(size: int, generator: torch.Generator | None) -> torch.Tensor:
    across, along = _phase_field(size, generator), _phase_field(size, generator)
    return ((across.sin() * along.sin()) > 0).float()


def _colourise(pattern: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(S, S) pattern in [0, 1] -> (3, S, S): blended between random colours, shaded by Perlin noise."""
    colours = torch.rand(int(torch.randint(2, 4, (), generator=generator)), 3, generator=generator)
    position = pattern * (len(colours) - 1)
    low = position.floor().long().clamp(max=len(colours) - 2)
    weight = (position - low)[None]
    rgb = colours[low].permute(2, 0, 1) * (1 - weight) + colours[low + 1].permute(2, 0, 1) * weight
    shade = perlin_noise(*pattern.shape, (4, 4), generator) * _rand(generator, 0, 0.3)
    return (rgb + shade).clamp(0, 1)


# DRAEM's augmenters on one (3, S, S) texture; each draws its own strength.
Augmenter = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def _gamma_contrast(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    gamma = 0.5 + 1.5 * torch.rand(3, 1, 1, generator=g)
    return t.clamp_min(0).pow(gamma)


def _brightness(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return (t * _rand(g, 0.8, 1.2) + _rand(g, -30, 30) / 255).clamp(0, 1)


def _sharpness(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return sharpness(t[None], _rand(g, 0.0, 2.0))[0]


def _hue_saturation(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    hsv = rgb_to_hsv(t[None])[0]
    hue = (hsv[0] + _rand(g, -50, 50) / 255 * 2 * math.pi) % (2 * math.pi)
    saturation = (hsv[1] + _rand(g, -50, 50) / 255).clamp(0, 1)
    return hsv_to_rgb(torch.stack((hue, saturation, hsv[2]))[None])[0].clamp(0, 1)


def _solarize(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    if _rand(g) >= 0.5:
        return t
    threshold = _rand(g, 32, 128) / 255
    return torch.where(t >= threshold, 1 - t, t)


def _posterize(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return posterize(t[None], int(torch.randint(1, 9, (), generator=g)))[0]


def _invert(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return 1 - t


def _autocontrast(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """Each channel stretched to [0, 1] after cutting up to 20 % of its darkest and brightest pixels."""
    cutoff = _rand(g, 0.0, 0.2)
    flat = t.flatten(1)
    low = flat.quantile(cutoff / 2, dim=1)[:, None, None]
    high = flat.quantile(1 - cutoff / 2, dim=1)[:, None, None]
    return ((t - low) / (high - low).clamp_min(1e-6)).clamp(0, 1)


def _equalize(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return equalize(t[None])[0]


def _rotate(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    angle = torch.tensor([_rand(g, -45, 45)])
    return rotate(t[None], angle, padding_mode="zeros")[0]


AUGMENTERS: tuple[Augmenter, ...] = (
    _gamma_contrast,
    _brightness,
    _sharpness,
    _hue_saturation,
    _solarize,
    _posterize,
    _invert,
    _autocontrast,
    _equalize,
    _rotate,
)


def augment_textures(textures: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each (3, S, S) texture through 3 distinct augmenters in random order, as DRAEM's `randAugmenter`."""
    out = []
    for texture in textures:
        chosen = torch.randperm(len(AUGMENTERS), generator=generator)[:AUGMENTERS_PER_TEXTURE]
        for index in chosen:
            texture = AUGMENTERS[int(index)](texture, generator)
        out.append(texture)
    return torch.stack(out)


def in_channels(textures: torch.Tensor, channels: int) -> torch.Tensor:
    """RGB textures as the images' channels: unchanged for colour, their luminance for grayscale."""
    return textures if channels == 3 else rgb_to_grayscale(textures)


def blend_anomalies(
    images: torch.Tensor,
    textures: torch.Tensor,
    masks: torch.Tensor,
    generator: torch.Generator | None = None,
    max_opacity: float = MAX_OPACITY,
    defect_free_share: float = DEFECT_FREE_SHARE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images with simulated anomalies, their masks): inside each (N, 1, S, S) mask the texture blended
    at a random opacity β; a `defect_free_share` of the images unchanged with empty masks."""
    count = len(images)
    opacity = (torch.rand(count, generator=generator) * max_opacity).view(-1, 1, 1, 1).to(images)
    anomalous = (torch.rand(count, generator=generator) >= defect_free_share).view(-1, 1, 1, 1).to(images)
    masks = masks.to(images) * anomalous
    filled = (1 - opacity) * textures.to(images) + opacity * images
    return images * (1 - masks) + filled * masks, masks
