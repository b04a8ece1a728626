"""What every dataset format yields: a category's files by split, and the harness's rules for them.

A format (adbench/data/formats/) reads a publisher's folder into `CategoryFiles`: training, validation
and test images, each test image with its label, defect type and mask files. This module holds those
types and what is the same for every format: the held-out validation share, the categories' kinds
(texture or object; the format knows its own by name, `ROOT/categories.toml` and --kinds override) and
their order. It only looks at names and folders; decoding and checking pixels is the cache's job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adbench.detector import CategoryKind
from adbench.errors import AdbenchError, unknown_name_message
from adbench.files import parse_toml, read_text_file
from adbench.names import checked_name

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GOOD = "good"
KINDS_FILE = "categories.toml"
ROTATION_TABLE = "rotation_invariant"
ROTATION_HINT = "expected a [rotation_invariant] table of lines like candle = true"
# Share of the training images held out for the threshold protocol (MVTec AD §4.3) where a format has
# no validation split of its own; fixed, not a run seed, so every method and seed sees the same split.
VALIDATION_FRACTION = 0.1
VALIDATION_SPLIT_SEED = 20_191_016


@dataclass(frozen=True)
class TestImage:
    path: Path
    defect: str  # the format's name for its defect type; GOOD for defect-free images
    masks: tuple[Path, ...] = ()  # one file, or one per defect (MVTec LOCO); none for defect-free images

    @property
    def is_anomalous(self) -> bool:
        return self.defect != GOOD


@dataclass(frozen=True)
class Saturation:
    """How much of one defect a detector must mark for it to count as found (MVTec LOCO's sPRO)."""

    defect_name: str
    threshold: float
    relative: bool  # threshold is a share of the defect's area; else a pixel count at the mask's size


@dataclass(frozen=True)
class DefectsConfig:
    """MVTec LOCO's defects_config.json: each mask's pixel value names its defect and saturation."""

    path: Path
    by_pixel_value: Mapping[int, Saturation]


@dataclass(frozen=True)
class CategoryFiles:
    """The files of one category, validated for structure (not yet decoded)."""

    name: str
    kind: CategoryKind
    root: Path
    train: tuple[Path, ...]
    validation: tuple[Path, ...]  # defect-free images disjoint from train: the format's own, or held out
    test: tuple[TestImage, ...]
    # Test images without labels (MVTec AD 2's private splits): scored for submission, never measured.
    unlabeled: tuple[Path, ...] = ()
    defects_config: DefectsConfig | None = field(default=None)
    rotation_invariant: bool = False  # adbench.detector.CategorySpec's; set by read_rotation_invariant

    def image_paths(self) -> list[Path]:
        """Every image of the category (no masks): train, validation, test, unlabeled."""
        return [*self.train, *self.validation, *(item.path for item in self.test), *self.unlabeled]

    def all_paths(self) -> list[Path]:
        """Every file the category's tensors are decoded from, in split order."""
        masks = [mask for item in self.test for mask in item.masks]
        return [*self.train, *self.validation, *(item.path for item in self.test), *masks, *self.unlabeled]

    def fingerprinted_paths(self) -> list[Path]:
        """`all_paths` and the files that say what the masks mean."""
        return self.all_paths() + ([self.defects_config.path] if self.defects_config else [])


def check_names(files: CategoryFiles) -> None:
    """The test images' defect types and every file's name are each one plain component (adbench.names):
    defect types and test image names become parts of the paths --save-maps writes, and every name is
    written to UTF-8 files (the cache's fingerprint and index, manifests, results). AdbenchError naming
    where each was read otherwise."""
    for item in files.test:
        checked_name(item.defect, "defect type", item.path.parent)
    for path in files.fingerprinted_paths():
        checked_name(path.name, "file name", path.parent)


def check_places(files: CategoryFiles) -> None:
    """Every file of the category resolves (links followed) inside the dataset's root, and no image is
    used twice (one image in train and test, listed twice, or two links to one file).

    Links inside a dataset may point anywhere inside its root (a category that links its masks to a
    shared folder reads as it looks); a link that leaves the root is refused, so that a dataset never
    reads another dataset's files or anything else it does not hold."""
    root = files.root.resolve()
    seen: dict[Path, Path] = {}
    images = set(files.image_paths())
    for path in files.fingerprinted_paths():
        target = path.resolve()
        if not target.is_relative_to(root):
            raise AdbenchError(
                f"{path}: leads to {target}, outside the dataset {root}; adbench reads only files inside "
                "the dataset's folder (links inside it may point anywhere inside it): copy the file in"
            )
        if path in images and (first := seen.setdefault(target, path)) != path:
            raise AdbenchError(
                f"{path}: the same image as {first}; each image belongs to one split once (a test image "
                f"seen in training would inflate every metric): remove one of them from {files.name}"
            )


def images_in(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name; other files are not the dataset's images."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def images_if_any(folder: Path) -> list[Path]:
    """`images_in(folder)`, or none where a format's optional folder is absent."""
    return images_in(folder) if folder.is_dir() else []


def find_mask(mask_dir: Path, image: Path, tail: str = "_mask") -> Path:
    """`mask_dir/<image stem><tail>` in any image format (datasets mix .png and .bmp), or AdbenchError."""
    for suffix in IMAGE_SUFFIXES:
        candidate = mask_dir / f"{image.stem}{tail}{suffix}"
        if candidate.is_file():
            return candidate
    raise AdbenchError(
        f"{image}: defect image without its mask; expected {mask_dir / (image.stem + tail)}.png"
    )


def resolve_categories(available: Sequence[str], requested: Sequence[str] | None, root: Path) -> list[str]:
    """The requested categories (checked to exist, duplicates dropped), or all of them when None."""
    if requested is None:
        return list(available)
    if not requested:
        raise AdbenchError(f"no categories given; valid: {', '.join(available)}")
    for name in requested:
        if name not in available:
            raise AdbenchError(unknown_name_message("category", name, list(available), where=str(root)))
    return list(dict.fromkeys(requested))


def read_kinds(
    root: Path,
    categories: Sequence[str],
    overrides: Mapping[str, str],
    known: Mapping[str, CategoryKind],
) -> dict[str, CategoryKind]:
    """Texture or object for each category: command-line overrides, then categories.toml, then the
    format's `known` kinds by name."""
    check_kind_overrides(overrides)
    kinds_file = root / KINDS_FILE
    declared = _declared_kinds(kinds_file) if kinds_file.exists() else {}  # a folder there is refused
    declared |= dict(overrides)
    kinds: dict[str, CategoryKind] = {}
    for name in categories:
        kind = declared.get(name, known.get(name))
        if kind not in ("texture", "object"):
            source = f"{kinds_file} says {kind!r}" if kind else "its kind is not declared"
            key = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)  # a TOML key
            raise AdbenchError(
                f'{root / name}: {source}; add `{key} = "texture"` (or "object") under [kinds] in '
                f"{kinds_file}, or pass --kinds {name}=texture"
            )
        kinds[name] = kind
    return kinds


def check_override_names(overrides: Mapping[str, str], available: Sequence[str], root: Path) -> None:
    """AdbenchError for the first --kinds category the dataset does not have (a typo would otherwise
    leave the category it meant at its declared kind, silently)."""
    for name, kind in overrides.items():
        if name not in available:
            message = unknown_name_message("category", name, list(available), where=str(root))
            raise AdbenchError(f"--kinds {name}={kind}: {message}")


def check_kind_overrides(overrides: Mapping[str, str]) -> None:
    """AdbenchError for the first --kinds value that is no kind (blamed on --kinds, not on a file)."""
    for name, kind in overrides.items():
        if kind not in ("texture", "object"):
            raise AdbenchError(f"--kinds {name}={kind}: the kind must be 'texture' or 'object'")


def _declared_kinds(kinds_file: Path) -> dict[str, Any]:
    """categories.toml's [kinds] table (empty when it has none); its values are checked by the caller."""
    return _declared_table(kinds_file, "kinds", 'expected a [kinds] table of lines like pin = "object"')


def _declared_table(kinds_file: Path, table: str, hint: str) -> dict[str, Any]:
    """categories.toml's `table` (empty when it has none); `hint` says what was expected."""
    try:
        found = parse_toml(read_text_file(kinds_file, "TOML file", hint)).get(table, {})
    except ValueError as error:
        raise AdbenchError(f"{kinds_file}: not valid TOML ({error}); {hint}") from None
    if not isinstance(found, dict):
        raise AdbenchError(f"{kinds_file}: {table} = {found!r:.40} is not a table; {hint}")
    return found


def read_rotation_invariant(root: Path, categories: Sequence[str], known: frozenset[str]) -> set[str]:
    """The categories whose images stay defect-free when rotated: categories.toml's [rotation_invariant]
    table (name = true or false), then the format's `known` names."""
    kinds_file = root / KINDS_FILE
    declared = _declared_table(kinds_file, ROTATION_TABLE, ROTATION_HINT) if kinds_file.exists() else {}
    for name, value in declared.items():
        if not isinstance(value, bool):
            raise AdbenchError(
                f"{kinds_file}: {ROTATION_TABLE}.{name} = {value!r:.40} is not true or false; {ROTATION_HINT}"
            )
    return {name for name in categories if declared.get(name, name in known)}


def order_categories(names: Sequence[str], kinds: Mapping[str, CategoryKind]) -> list[str]:
    """Textures first, then objects, as the paper tables are laid out; alphabetical within each."""
    return sorted(names, key=lambda name: (kinds[name] != "texture", name))


def test_images_by_folder(
    test_dir: Path, masks_of: Callable[[str, Path], tuple[Path, ...]]
) -> list[TestImage]:
    """The images of each folder under `test_dir`, named by it (GOOD = defect-free, without masks);
    `masks_of(folder name, image)` finds a defective image's masks."""
    test = []
    for defect_dir in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        for image in images_in(defect_dir):
            masks = () if defect_dir.name == GOOD else masks_of(defect_dir.name, image)
            test.append(TestImage(image, defect_dir.name, masks))
    return test


def good_and_bad_images(
    test_dir: Path, good: str, bad: str, mask_of: Callable[[Path], Path]
) -> list[TestImage]:
    """A test folder of two subfolders, `good` (defect-free, labelled GOOD) and `bad` (one defect type,
    named so) as BTAD and MVTec AD 2 lay theirs out; `mask_of(image)` finds a defective image's mask.
    Checked as `check_test_labels` checks every test set."""
    if not test_dir.is_dir():
        raise AdbenchError(f"{test_dir}: missing; expected {test_dir}/{good}/ and {test_dir}/{bad}/")
    test = [TestImage(image, GOOD) for image in images_if_any(test_dir / good)]
    test += [TestImage(image, bad, (mask_of(image),)) for image in images_if_any(test_dir / bad)]
    check_test_labels(test_dir, test)
    return test


def check_test_labels(test_dir: Path, test: Sequence[TestImage]) -> None:
    """Refuse a test set that the metrics cannot score: empty, or without both labels."""
    if not test:
        raise AdbenchError(f"{test_dir}: no test images; expected {test_dir}/<defect>/*.png")
    if not any(item.is_anomalous for item in test) or all(item.is_anomalous for item in test):
        raise AdbenchError(
            f"{test_dir}: needs both defect-free and defective test images to compute the metrics"
        )


def defect_free_images(folder: Path, least: int = 2) -> list[Path]:
    """The images of a split of defect-free images (train/good, validation/good), at least `least`."""
    if not folder.is_dir():
        raise AdbenchError(f"{folder}: missing; every category needs defect-free images there")
    images = images_in(folder)
    if len(images) < least:
        raise AdbenchError(f"{folder}: {len(images)} image(s); a category needs at least {least} there")
    return images


def validation_count(train_good: int) -> int:
    """How many of `train_good` defect-free training images `split_validation` holds out."""
    return max(1, round(VALIDATION_FRACTION * train_good))


def split_validation(train_good: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Hold out a fixed, seeded share of the defect-free training images (at least one)."""
    count = validation_count(len(train_good))
    order = np.random.default_rng(VALIDATION_SPLIT_SEED).permutation(len(train_good))
    held_out = set(order[:count].tolist())
    train = [path for i, path in enumerate(train_good) if i not in held_out]
    validation = [path for i, path in enumerate(train_good) if i in held_out]
    return train, validation
