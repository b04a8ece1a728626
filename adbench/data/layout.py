"""Reading an MVTec AD-style folder: which files belong to which category, split and defect.

Layout (real MVTec AD works unchanged):

    ROOT/<category>/train/good/*.png
    ROOT/<category>/test/<defect>/*.png                  ("good" = defect-free)
    ROOT/<category>/ground_truth/<defect>/<stem>_mask.png

Whether a category is a texture or an object is known by name for MVTec AD; other data declares it in
`ROOT/categories.toml` (`[kinds]` table, `name = "texture"` or `"object"`) or on the command line.
This module only looks at names and folders; decoding and checking pixels is the cache's job.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adbench.data import mvtec
from adbench.detector import CategoryKind
from adbench.errors import AdbenchError, unknown_name_message
from adbench.files import read_text_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GOOD = "good"
KINDS_FILE = "categories.toml"
# Share of train/good held out for the threshold protocol (MVTec AD §4.3); fixed, not a run seed, so
# every method and seed sees the same split.
VALIDATION_FRACTION = 0.1
VALIDATION_SPLIT_SEED = 20_191_016


@dataclass(frozen=True)
class TestImage:
    path: Path
    defect: str  # folder name under test/, "good" for defect-free images
    mask: Path | None  # None for defect-free images

    @property
    def is_anomalous(self) -> bool:
        return self.defect != GOOD


@dataclass(frozen=True)
class CategoryFiles:
    """The files of one category, validated for structure (not yet decoded)."""

    name: str
    kind: CategoryKind
    root: Path
    train: tuple[Path, ...]
    validation: tuple[Path, ...]  # held-out defect-free images, disjoint from train
    test: tuple[TestImage, ...]

    def all_paths(self) -> list[Path]:
        masks = [item.mask for item in self.test if item.mask is not None]
        return [*self.train, *self.validation, *(item.path for item in self.test), *masks]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_categories(root: Path) -> list[str]:
    """Category folders under `root`, sorted; MVTec AD's file entries (license.txt, ...) are skipped."""
    if root.is_file():
        raise AdbenchError(f"{root}: a file, not a folder; pass --data the dataset's root folder (unpacked)")
    if not root.is_dir():
        raise AdbenchError(f"{root}: dataset folder not found; pass --data with an MVTec AD-style root")
    if (root / "train").is_dir() and (root / "test").is_dir():
        raise AdbenchError(
            f"{root}: a category folder (it holds train/ and test/), not a dataset root; "
            f"pass its parent {root.parent} as --data, with --categories {root.name}"
        )
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise AdbenchError(f"{root}: no category folders; expected {root}/<category>/train/good/*.png")
    return names


def resolve_categories(root: Path, requested: Sequence[str] | None) -> list[str]:
    """The requested categories (checked to exist, duplicates dropped), or all of them when None."""
    available = list_categories(root)
    if requested is None:
        return available
    if not requested:
        raise AdbenchError(f"no categories given; valid: {', '.join(available)}")
    for name in requested:
        if name not in available:
            raise AdbenchError(unknown_name_message("category", name, available, where=str(root)))
    return list(dict.fromkeys(requested))


def read_kinds(
    root: Path, categories: Sequence[str], overrides: Mapping[str, str]
) -> dict[str, CategoryKind]:
    """Texture or object for each category: command-line overrides, then categories.toml, then MVTec names."""
    kinds_file = root / KINDS_FILE
    declared = _declared_kinds(kinds_file) if kinds_file.is_file() else {}
    declared |= dict(overrides)
    kinds: dict[str, CategoryKind] = {}
    for name in categories:
        kind = declared.get(name, mvtec.KINDS.get(name))
        if kind not in ("texture", "object"):
            source = f"{kinds_file} says {kind!r}" if kind else "its kind is not declared"
            key = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)  # a TOML key
            raise AdbenchError(
                f'{root / name}: {source}; add `{key} = "texture"` (or "object") under [kinds] in '
                f"{kinds_file}, or pass --kinds {name}=texture"
            )
        kinds[name] = kind
    return kinds


def _declared_kinds(kinds_file: Path) -> dict[str, Any]:
    """categories.toml's [kinds] table (empty when it has none); its values are checked by the caller."""
    hint = 'expected a [kinds] table of lines like pin = "object"'
    try:
        kinds = tomllib.loads(read_text_file(kinds_file, "TOML file", hint)).get("kinds", {})
    except tomllib.TOMLDecodeError as error:
        raise AdbenchError(f"{kinds_file}: not valid TOML ({error}); {hint}") from None
    if not isinstance(kinds, dict):
        raise AdbenchError(f"{kinds_file}: kinds = {kinds!r:.40} is not a table; {hint}")
    return kinds


def order_categories(names: Sequence[str], kinds: Mapping[str, CategoryKind]) -> list[str]:
    """Textures first, then objects, as the paper tables are laid out; alphabetical within each."""
    return sorted(names, key=lambda name: (kinds[name] != "texture", name))


def read_category(root: Path, name: str, kind: CategoryKind) -> CategoryFiles:
    """List and cross-check one category's files; raise AdbenchError naming the first problem."""
    folder = root / name
    train_dir = folder / "train" / GOOD
    if not train_dir.is_dir():
        raise AdbenchError(f"{train_dir}: missing; every category needs defect-free training images there")
    train_good = _images_in(train_dir)
    if len(train_good) < 2:
        raise AdbenchError(
            f"{train_dir}: {len(train_good)} image(s); a category needs at least 2 defect-free "
            "training images"
        )
    test_dir = folder / "test"
    if not test_dir.is_dir():
        raise AdbenchError(
            f"{test_dir}: missing; put test images in {test_dir}/<defect>/ and {test_dir}/good/"
        )
    test: list[TestImage] = []
    for defect_dir in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        for image in _images_in(defect_dir):
            mask = None
            if defect_dir.name != GOOD:
                mask = _find_mask(folder, defect_dir.name, image)
            test.append(TestImage(image, defect_dir.name, mask))
    if not test:
        raise AdbenchError(f"{test_dir}: no test images; expected {test_dir}/<defect>/*.png")
    if not any(item.is_anomalous for item in test) or all(item.is_anomalous for item in test):
        raise AdbenchError(
            f"{test_dir}: needs both defect-free (good/) and defective test images to compute the metrics"
        )
    train, validation = split_validation(train_good)
    return CategoryFiles(name, kind, root, tuple(train), tuple(validation), tuple(test))


def _find_mask(folder: Path, defect: str, image: Path) -> Path:
    mask_dir = folder / "ground_truth" / defect
    for suffix in IMAGE_SUFFIXES:
        candidate = mask_dir / f"{image.stem}_mask{suffix}"
        if candidate.is_file():
            return candidate
    raise AdbenchError(
        f"{image}: defect image without its mask; expected {mask_dir / (image.stem + '_mask.png')}"
    )


def split_validation(train_good: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Hold out a fixed, seeded share of the defect-free training images (at least one)."""
    count = max(1, round(VALIDATION_FRACTION * len(train_good)))
    order = np.random.default_rng(VALIDATION_SPLIT_SEED).permutation(len(train_good))
    held_out = set(order[:count].tolist())
    train = [path for i, path in enumerate(train_good) if i not in held_out]
    validation = [path for i, path in enumerate(train_good) if i in held_out]
    return train, validation
