"""The dataset formats adbench reads, found from a folder's contents (`--format NAME` overrides).

Each format (one module each) reads its publisher's folder as distributed into `CategoryFiles`; the
cache, the metrics and the report see no difference between them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from adbench.data.formats.base import DatasetFormat, category_dirs
from adbench.data.formats.btad import BTAD
from adbench.data.formats.mvtec_ad import MPDD, MVTecAD
from adbench.data.formats.mvtec_ad2 import MVTecAD2
from adbench.data.formats.mvtec_loco import MVTecLOCO
from adbench.data.formats.visa import VisA
from adbench.data.layout import (
    CategoryFiles,
    check_names,
    check_override_names,
    check_places,
    order_categories,
    read_kinds,
    read_rotation_invariant,
    resolve_categories,
)
from adbench.errors import AdbenchError, unknown_name_message
from adbench.names import checked_name, refuse_same_folder

FORMATS: tuple[DatasetFormat, ...] = (MVTecAD(), MPDD(), MVTecAD2(), MVTecLOCO(), VisA(), BTAD())
FORMAT_NAMES = tuple(f.name for f in FORMATS)


def format_named(name: str) -> DatasetFormat:
    for dataset_format in FORMATS:
        if dataset_format.name == name:
            return dataset_format
    raise AdbenchError(unknown_name_message("format", name, list(FORMAT_NAMES)))


def detect_format(root: Path, requested: str | None = None) -> DatasetFormat:
    """The format of the dataset at `root`: `requested` when given, else the one its contents show."""
    if root.is_file():
        raise AdbenchError(f"{root}: a file, not a folder; pass --data the dataset's root folder (unpacked)")
    if not root.is_dir():
        raise AdbenchError(f"{root}: dataset folder not found; pass --data with a dataset's root folder")
    if (root / "train").is_dir() and any((root / test).is_dir() for test in ("test", "test_public")):
        raise AdbenchError(
            f"{root}: a category folder (it holds train/ and test/), not a dataset root; "
            f"pass its parent {root.parent} as --data, with --categories {root.name}"
        )
    if requested is not None:
        return format_named(requested)
    found = [dataset_format for dataset_format in FORMATS if dataset_format.recognises(root)]
    if len(found) == 1:
        return found[0]
    if not found and not category_dirs(root):
        raise AdbenchError(f"{root}: no category folders; expected {root}/<category>/train/good/*.png")
    candidates = found or FORMATS
    layouts = "; ".join(f"{f.name} ({f.title}: {f.expects})" for f in candidates)
    if found:
        raise AdbenchError(f"{root}: ambiguous, it looks like {layouts}; pass --format with the one it is")
    raise AdbenchError(f"{root}: not a dataset layout adbench reads; expected one of {layouts}")


@dataclass(frozen=True)
class Dataset:
    """The categories of a dataset that a command uses, found and cross-checked."""

    root: Path
    format: DatasetFormat
    files: dict[str, CategoryFiles]  # in grid order (textures first)


def read_dataset(
    root: Path,
    categories: Sequence[str] | None,
    kind_overrides: Mapping[str, str],
    format_name: str | None = None,
) -> Dataset:
    """Detect the format, resolve the categories (None: all) and their kinds, and read every one's
    files, so that a problem in any category fails before the slow part."""
    dataset_format = detect_format(root, format_name)
    available = dataset_format.categories(root)
    if not available:
        raise AdbenchError(f"{root}: no {dataset_format.title} categories; expected {dataset_format.expects}")
    names = resolve_categories(available, categories, root)
    check_override_names(kind_overrides, available, root)
    for name in names:
        checked_name(name, "category", root)
    refuse_same_folder(names, "categories", root)
    kinds = read_kinds(root, names, kind_overrides, dataset_format.kinds)
    rotating = read_rotation_invariant(root, names, dataset_format.rotation_invariant)
    files = {}
    for name in order_categories(names, kinds):
        category_files = dataset_format.read_category(root, name, kinds[name])
        category_files = dataclasses.replace(category_files, rotation_invariant=name in rotating)
        check_names(category_files)
        check_places(category_files)
        files[name] = category_files
    return Dataset(root, dataset_format, files)
