"""`adbench data info`: what a dataset folder holds, per category, checked as `adbench run` checks it.

Every image and mask is opened and verified (Pillow's `verify`: the file's structure and checksums, no
pixel decoding), so an unreadable or truncated file, a mask of another size than its image and a split
file naming a missing image each stop it with one line naming the file, as they would stop a run. The
problems only pixels show are checked by the run's own helpers, decoding just the files that can have
them: a float image outside [0, 1] and a MVTec LOCO mask whose pixel value its defects config does not
list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from adbench.data.cache import check_listed_defect, describe
from adbench.data.decode import DECODE_ERRORS, check_pixel_range, mask_size_error, unreadable_image
from adbench.data.formats import read_dataset
from adbench.data.layout import CategoryFiles

# The keys of `--json`, one object per category.
JSON_KEYS = (
    "category",
    "format",
    "kind",
    "channels",
    "train",
    "validation",
    "test_normal",
    "test_anomalous",
    "defect_types",
)


@dataclass(frozen=True)
class CategoryInfo:
    category: str
    format: str
    kind: str
    channels: int
    train: int
    validation: int
    test_normal: int
    test_anomalous: int
    defect_types: int
    unlabeled: int  # MVTec AD 2's private test images
    sizes: tuple[str, ...]  # distinct image sizes, "WxH", most common first

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in JSON_KEYS}


def dataset_info(
    root: Path,
    categories: Sequence[str] | None,
    kinds: Mapping[str, str],
    data_format: str | None = None,
    on_file: Callable[[], None] | None = None,
) -> tuple[str, list[CategoryInfo], int]:
    """The detected format's title, each category's figures, and the number of files checked."""
    dataset = read_dataset(root, categories, kinds, data_format)
    infos, checked = [], 0
    for files in dataset.files.values():
        sizes = _checked_sizes(files, on_file)
        checked += len(files.all_paths())
        anomalous = [item for item in files.test if item.is_anomalous]
        counts: dict[str, int] = {}
        for size in sizes.values():
            counts[f"{size[0]}x{size[1]}"] = counts.get(f"{size[0]}x{size[1]}", 0) + 1
        infos.append(
            CategoryInfo(
                category=files.name,
                format=dataset.format.name,
                kind=files.kind,
                channels=describe(files, remember=False).channels,
                train=len(files.train),
                validation=len(files.validation),
                test_normal=len(files.test) - len(anomalous),
                test_anomalous=len(anomalous),
                defect_types=len({item.defect for item in anomalous}),
                unlabeled=len(files.unlabeled),
                sizes=tuple(sorted(counts, key=lambda size: -counts[size])),
            )
        )
    return dataset.format.title, infos, checked


def _checked_sizes(files: CategoryFiles, on_file: Callable[[], None] | None) -> dict[Path, tuple[int, int]]:
    """Every image's (width, height), each file verified; masks checked against their image's size and
    its defects config."""
    images = files.image_paths()
    sizes = {}
    for path in images:
        mode, sizes[path] = _verified_header(path)
        check_pixel_range(path, mode)
        if on_file:
            on_file()
    for item in files.test:
        for mask in item.masks:
            size = _verified_header(mask)[1]
            if size != sizes[item.path]:
                raise mask_size_error(mask, size, item.path, sizes[item.path])
            if files.defects_config is not None:
                check_listed_defect(files.defects_config, mask)
            if on_file:
                on_file()
    return sizes


def _verified_header(path: Path) -> tuple[str, tuple[int, int]]:
    """The file's mode and (width, height), its structure verified."""
    try:
        with Image.open(path) as image:
            mode, size = image.mode, image.size
            image.verify()
    except DECODE_ERRORS as error:
        raise unreadable_image(path, error) from None
    return mode, size
