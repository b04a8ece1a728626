"""The built-in synthetic dataset: MVTec AD layout, generated deterministically from a seed.

Four categories, so that every code path runs without MVTec AD:

    weave   texture, RGB        two-colour woven grating       defects: cut, misweave
    sand    texture, grayscale  smooth mottled noise           defects: crack, stain
    washer  object,  RGB        a ring on a dark background    defects: chip, stain
    pin     object,  grayscale  a capsule with a label band    defects: notch, scratch

Defects are darker than their surroundings or use the colours and contrast of the category's normal
images, so the brightest pixels of an image say nothing about defects (an untrained autoencoder,
whose error is about the pixel value itself, scores at chance): a detector has to learn what normal
looks like locally. Every
defect image has a binary mask. The same seed gives byte-identical PNG files (Pillow writes no
timestamps into PNGs, and all randomness comes from seeded numpy generators).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from adbench.atomic import held_staging_folder
from adbench.data.layout import KINDS_FILE
from adbench.detector import CategoryKind
from adbench.errors import AdbenchError

# Bump when the generator's output changes, so the cached default dataset is regenerated.
SYNTH_VERSION = 1

Rng = np.random.Generator
Picture = np.ndarray  # (H, W, C) float64 in [0, 1]
Mask = np.ndarray  # (H, W) bool


@dataclass(frozen=True)
class SynthSize:
    image_size: int = 256
    train_good: int = 40
    test_good: int = 10
    test_per_defect: int = 8


@dataclass(frozen=True)
class _Category:
    name: str
    kind: CategoryKind
    channels: int
    normal: Callable[[Rng, int], Picture]
    defects: dict[str, Callable[[Picture, Rng], Mask]]


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(size) + 0.5) / size
    return np.meshgrid(coords, coords, indexing="ij")


def _smooth_noise(rng: Rng, size: int, cells: int) -> np.ndarray:
    """Bilinearly upsampled random grid: low-frequency noise in [0, 1]."""
    coarse = rng.random((cells + 1, cells + 1))
    pos = np.linspace(0, cells, size, endpoint=False)
    i = pos.astype(int)
    f = pos - i
    rows = coarse[i] * (1 - f)[:, None] + coarse[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _centre(rng: Rng, size: int, inside: Mask | None, span: float) -> tuple[float, float]:
    """A random point (fractions of the side): on a pixel of `inside`, else within span of the middle."""
    if inside is None:
        cy, cx = rng.uniform(0.5 - span, 0.5 + span, size=2)
        return float(cy), float(cx)
    candidates = np.argwhere(inside)
    cy, cx = (candidates[rng.integers(len(candidates))] + 0.5) / size
    return float(cy), float(cx)


def _blob(rng: Rng, size: int, radius: tuple[float, float], inside: Mask | None = None) -> Mask:
    """A random ellipse, centred inside `inside` when given (so object defects land on the object)."""
    y, x = _grid(size)
    cy, cx = _centre(rng, size, inside, span=0.25)
    ry, rx = rng.uniform(*radius, size=2)
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def _line(rng: Rng, size: int, width: float, inside: Mask | None = None) -> Mask:
    """A straight band of the given width (fraction of the side) through a random point."""
    y, x = _grid(size)
    cy, cx = _centre(rng, size, inside, span=0.2)
    angle = rng.uniform(0, np.pi)
    along = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    across = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    return (np.abs(across) <= width / 2) & (np.abs(along) <= rng.uniform(0.15, 0.3))


# --- weave: RGB texture ----------------------------------------------------------------------------
_WEAVE_DARK = np.array([0.25, 0.18, 0.40])
_WEAVE_LIGHT = np.array([0.85, 0.75, 0.45])


def _weave_colours(weight: np.ndarray, brightness: float) -> Picture:
    return brightness * (_WEAVE_DARK + weight[..., None] * (_WEAVE_LIGHT - _WEAVE_DARK))


def _weave_pattern(
    y: np.ndarray, x: np.ndarray, phase: np.ndarray, freq: float, amplitude: float
) -> np.ndarray:
    waves = np.sin(2 * np.pi * freq * y + phase[0]) + np.sin(2 * np.pi * freq * x + phase[1])
    return 0.5 + amplitude * waves


def _weave(rng: Rng, size: int) -> Picture:
    y, x = _grid(size)
    weight = _weave_pattern(y, x, rng.uniform(0, 2 * np.pi, 2), 4.0, 0.15)
    picture = _weave_colours(weight, rng.uniform(0.95, 1.05))
    return picture + rng.normal(0, 0.01, picture.shape)


def _brightness(picture: Picture) -> float:
    return float(picture.mean() / _weave_colours(np.full(1, 0.5), 1.0).mean())


def _weave_cut(picture: Picture, rng: Rng) -> Mask:
    mask = _line(rng, picture.shape[0], rng.uniform(0.015, 0.03))
    picture[mask] = 0.5 * _weave_colours(np.zeros(1), _brightness(picture))[0]
    return mask


def _weave_misweave(picture: Picture, rng: Rng) -> Mask:
    size = picture.shape[0]
    mask = _blob(rng, size, (0.08, 0.16))
    y, x = _grid(size)
    # A finer weave with the same colours and contrast: abnormal structure, no new intensity.
    weight = _weave_pattern(y, x, rng.uniform(0, 2 * np.pi, 2), 10.0, 0.15)
    picture[mask] = _weave_colours(weight, _brightness(picture))[mask]
    return mask


# --- sand: grayscale texture -----------------------------------------------------------------------
def _sand(rng: Rng, size: int) -> Picture:
    mottling = 0.7 * _smooth_noise(rng, size, 4) + 0.3 * _smooth_noise(rng, size, 12) - 0.5
    level = rng.uniform(0.5, 0.6) + 0.2 * mottling
    return (level + rng.normal(0, 0.01, (size, size)))[..., None]


def _sand_crack(picture: Picture, rng: Rng) -> Mask:
    mask = _line(rng, picture.shape[0], rng.uniform(0.015, 0.03))
    picture[mask] = 0.1
    return mask


def _sand_stain(picture: Picture, rng: Rng) -> Mask:
    mask = _blob(rng, picture.shape[0], (0.05, 0.1))
    picture[mask] = 0.2
    return mask


# --- washer: RGB object ----------------------------------------------------------------------------
_BACKGROUND = np.array([0.12, 0.12, 0.14])
_WASHER = np.array([0.75, 0.62, 0.30])


def _washer_mask(rng: Rng, size: int) -> tuple[Mask, np.ndarray]:
    y, x = _grid(size)
    cy, cx = 0.5 + rng.uniform(-0.01, 0.01, 2)
    radius = np.hypot(y - cy, x - cx)
    return (radius <= 0.36) & (radius >= 0.16), radius


def _washer(rng: Rng, size: int) -> Picture:
    ring, radius = _washer_mask(rng, size)
    shade = 0.85 + 0.15 * np.clip((radius - 0.16) / 0.2, 0, 1)  # lit from the outside edge
    colour = _WASHER * rng.uniform(0.95, 1.05)
    picture = np.where(ring[..., None], colour * shade[..., None], _BACKGROUND)
    return picture + rng.normal(0, 0.01, picture.shape)


def _object_mask(picture: Picture) -> Mask:
    return picture.mean(axis=2) > 0.3


def _washer_chip(picture: Picture, rng: Rng) -> Mask:
    ring = _object_mask(picture)
    mask = _blob(rng, picture.shape[0], (0.05, 0.09), inside=ring) & ring
    picture[mask] = _BACKGROUND
    return mask


def _washer_stain(picture: Picture, rng: Rng) -> Mask:
    ring = _object_mask(picture)
    mask = _blob(rng, picture.shape[0], (0.04, 0.08), inside=ring) & ring
    picture[mask] = 0.8 * _BACKGROUND + 0.2 * _WASHER  # a dark burn mark
    return mask


# --- pin: grayscale object -------------------------------------------------------------------------
def _pin(rng: Rng, size: int) -> Picture:
    y, x = _grid(size)
    cy, cx = 0.5 + rng.uniform(-0.01, 0.01, 2)
    half_length, half_width = 0.3, 0.09
    # A capsule: distance to the central segment below the half width.
    dx = np.clip(np.abs(x - cx) - half_length, 0, None)
    body = np.hypot(dx, y - cy) <= half_width
    band = body & (np.abs(x - (cx + 0.18)) <= 0.04)
    level = rng.uniform(0.75, 0.8)
    picture = np.where(body, level, 0.1)
    picture = np.where(band, 0.35, picture)
    return (picture + rng.normal(0, 0.01, (size, size)))[..., None]


def _pin_notch(picture: Picture, rng: Rng) -> Mask:
    body = picture[..., 0] > 0.2
    size = picture.shape[0]
    edge = body & ~np.roll(body, 3, axis=0) | body & ~np.roll(body, -3, axis=0)
    mask = _blob(rng, size, (0.04, 0.07), inside=edge) & body
    picture[mask] = 0.1
    return mask


def _pin_scratch(picture: Picture, rng: Rng) -> Mask:
    body = picture[..., 0] > 0.5
    mask = _line(rng, picture.shape[0], rng.uniform(0.02, 0.035), inside=body) & body
    picture[mask] = 0.15
    return mask


CATEGORIES: tuple[_Category, ...] = (
    _Category("weave", "texture", 3, _weave, {"cut": _weave_cut, "misweave": _weave_misweave}),
    _Category("sand", "texture", 1, _sand, {"crack": _sand_crack, "stain": _sand_stain}),
    _Category("washer", "object", 3, _washer, {"chip": _washer_chip, "stain": _washer_stain}),
    _Category("pin", "object", 1, _pin, {"notch": _pin_notch, "scratch": _pin_scratch}),
)


def _save_png(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.clip(np.round(values * 255), 0, 255).astype(np.uint8)
    Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array).save(path)


def _write_category(root: Path, index: int, category: _Category, seed: int, size: SynthSize) -> None:
    rng = np.random.default_rng([seed, index])
    folder = root / category.name
    for i in range(size.train_good):
        _save_png(folder / "train" / "good" / f"{i:03d}.png", category.normal(rng, size.image_size))
    for i in range(size.test_good):
        _save_png(folder / "test" / "good" / f"{i:03d}.png", category.normal(rng, size.image_size))
    for defect, apply_defect in category.defects.items():
        for i in range(size.test_per_defect):
            picture = category.normal(rng, size.image_size)
            mask = apply_defect(picture, rng)
            _save_png(folder / "test" / defect / f"{i:03d}.png", picture)
            _save_png(folder / "ground_truth" / defect / f"{i:03d}_mask.png", mask[..., None].astype(float))


def generate(out: Path, seed: int = 0, size: SynthSize = SynthSize()) -> Path:
    """Write the synthetic dataset to `out` (which must not exist yet) and return it.

    Written into a temporary sibling folder and renamed, so `out` never holds a partial dataset.
    """
    if not 0 <= seed < 2**32:  # the range of a run's --seeds; numpy refuses negative seeds
        raise AdbenchError(f"--seed {seed}: the seed must be an integer from 0 to {2**32 - 1}")
    if out.exists():
        raise FileExistsError(out)
    with held_staging_folder(out, "synth") as staging:
        tmp = staging / out.name
        for index, category in enumerate(CATEGORIES):
            _write_category(tmp, index, category, seed, size)
        kinds = "\n".join(f'{c.name} = "{c.kind}"' for c in CATEGORIES)
        (tmp / KINDS_FILE).write_text(f"# Synthetic adbench data, seed {seed}\n[kinds]\n{kinds}\n")
        os.replace(tmp, out)
    return out


DEFAULT_DATASET_NAME = f"synthetic-v{SYNTH_VERSION}-seed0"


def default_dataset(cache_dir: Path) -> Path:
    """The embedded default dataset (seed 0), generated once into the cache and reused."""
    root = cache_dir / DEFAULT_DATASET_NAME
    if not root.is_dir():
        with contextlib.suppress(FileExistsError):  # generated concurrently by another process
            generate(root, 0)
    return root
