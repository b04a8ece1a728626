"""A small dataset of real photographs in MVTec AD layout, from the pictures scikit-image ships.

The synthetic set has textures of very low or very regular contrast; the autoencoders behaved differently
on photographs (issue 29). Categories, each cut from one photograph:

    brick    texture, grayscale  skimage.data.brick (512×512)
    gravel   texture, grayscale  skimage.data.gravel
    ihc      texture, RGB        skimage.data.immunohistochemistry (stained tissue)
    coffee   object,  RGB        skimage.data.coffee (a cup on a saucer), jittered by a few pixels

Textures are crops at random places and scales (0.9 to 1.1 of the side); training crops come from the
upper 70 % of the photograph, test crops from the rest, so that no test pixel was trained on. Defects,
the same for every category:
- `patch`: an ellipse of another photograph (grass) pasted in, its brightness matched to the
  surroundings' mean, so that only its texture differs;
- `scratch`: a 2 to 3 pixel line, darker or lighter than its surroundings by 0.25.
The same seed gives the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as photos
from skimage.transform import resize

Rng = np.random.Generator


@dataclass(frozen=True)
class PhotoSize:
    image_size: int = 128
    train_good: int = 70  # the harness holds a share out for validation, as MVTec AD has no such split
    test_good: int = 12
    test_per_defect: int = 10


def _float(picture: np.ndarray) -> np.ndarray:
    picture = picture.astype(np.float64) / 255.0
    return picture[..., None] if picture.ndim == 2 else picture


_SOURCES = {
    "brick": ("texture", lambda: _float(photos.brick())),
    "gravel": ("texture", lambda: _float(photos.gravel())),
    "ihc": ("texture", lambda: _float(photos.immunohistochemistry())),
    "coffee": ("object", lambda: _float(photos.coffee())),
}


def _texture_crop(photo: np.ndarray, rng: Rng, size: int, test: bool) -> np.ndarray:
    height, width = photo.shape[:2]
    side = round(size * rng.uniform(0.9, 1.1))
    split = int(height * 0.7)
    top = rng.integers(split, height - side + 1) if test else rng.integers(0, split - side + 1)
    left = rng.integers(0, width - side + 1)
    return resize(photo[top : top + side, left : left + side], (size, size), anti_aliasing=True)


def _object_view(photo: np.ndarray, rng: Rng, size: int) -> np.ndarray:
    height, width = photo.shape[:2]
    side = min(height, width) - 16
    top = (height - side) // 2 + rng.integers(-6, 7)
    left = (width - side) // 2 + rng.integers(-6, 7)
    view = resize(photo[top : top + side, left : left + side], (size, size), anti_aliasing=True)
    return np.clip(view * rng.uniform(0.95, 1.05), 0, 1)


def _ellipse(rng: Rng, size: int) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size]
    centre = rng.uniform(0.25, 0.75, 2) * size
    radii = rng.uniform(0.07, 0.14, 2) * size
    return ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1


def _patch(picture: np.ndarray, rng: Rng, foreign: np.ndarray) -> np.ndarray:
    size = picture.shape[0]
    mask = _ellipse(rng, size)
    top, left = rng.integers(0, foreign.shape[0] - size, 2)
    pasted = foreign[top : top + size, left : left + size]
    pasted = pasted - pasted[mask].mean() + picture[mask].mean(axis=0)
    picture[mask] = np.clip(pasted[mask], 0, 1)
    return mask


def _scratch(picture: np.ndarray, rng: Rng, foreign: np.ndarray) -> np.ndarray:
    size = picture.shape[0]
    rows, cols = np.mgrid[0:size, 0:size]
    start, end = rng.uniform(0.2, 0.8, (2, 2)) * size
    direction = (end - start) / max(np.linalg.norm(end - start), 1.0)
    along = (rows - start[0]) * direction[0] + (cols - start[1]) * direction[1]
    across = np.abs((rows - start[0]) * direction[1] - (cols - start[1]) * direction[0])
    length = np.linalg.norm(end - start)
    mask = (across <= rng.uniform(1.0, 1.5)) & (along >= 0) & (along <= max(length, size * 0.3))
    picture[mask] = np.clip(picture[mask] + rng.choice([-0.25, 0.25]), 0, 1)
    return mask


_DEFECTS = {"patch": _patch, "scratch": _scratch}


def _save(path: Path, picture: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(values[..., 0] if values.shape[-1] == 1 else values).save(path)


def write_photo_dataset(root: Path, seed: int = 0, size: PhotoSize = PhotoSize()) -> Path:
    """MVTec AD layout under `root`, with categories.toml; returns root."""
    foreign = _float(photos.grass())
    kinds = []
    for index, (name, (kind, load)) in enumerate(_SOURCES.items()):
        rng = np.random.default_rng([seed, index])
        photo = load()
        channels = photo.shape[-1]
        pasted = foreign if channels == 1 else np.repeat(foreign, 3, axis=-1)

        def view(test: bool, photo=photo, kind=kind, rng=rng) -> np.ndarray:
            if kind == "object":
                return _object_view(photo, rng, size.image_size)
            return _texture_crop(photo, rng, size.image_size, test)

        folder = root / name
        for i in range(size.train_good):
            _save(folder / "train" / "good" / f"{i:03d}.png", view(False))
        for i in range(size.test_good):
            _save(folder / "test" / "good" / f"{i:03d}.png", view(True))
        for defect, draw in _DEFECTS.items():
            for i in range(size.test_per_defect):
                picture = view(True)
                mask = draw(picture, rng, pasted)
                _save(folder / "test" / defect / f"{i:03d}.png", picture)
                _save(folder / "ground_truth" / defect / f"{i:03d}_mask.png", mask[..., None].astype(float))
        kinds.append(f'{name} = "{kind}"')
    (root / "categories.toml").write_text("[kinds]\n" + "\n".join(kinds) + "\n")
    return root
