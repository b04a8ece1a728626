"""MVTec LOCO AD (Bergmann et al., IJCV 2022): logical and structural anomalies, one mask per defect.

    ROOT/<category>/train/good/*.png
    ROOT/<category>/validation/good/*.png                        the validation split
    ROOT/<category>/test/{good,logical_anomalies,structural_anomalies}/*.png
    ROOT/<category>/ground_truth/<type>/<stem>/000.png, 001.png, ...   one file per defect
    ROOT/<category>/defects_config.json

Each mask file holds one defect, its pixels set to the defect's `pixel_value`; defects_config.json gives,
per pixel value, the defect's name and its saturation (`saturation_threshold`, a pixel count or, with
`relative_saturation`, a share of the defect's area), which the dataset's sPRO metric needs. AU-PRO
and the other pixel metrics read the union of an image's masks. All five categories are objects.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, cast

from adbench.data.formats.base import DatasetFormat, category_dirs
from adbench.data.layout import (
    GOOD,
    CategoryFiles,
    DefectsConfig,
    Saturation,
    check_test_labels,
    defect_free_images,
    images_in,
    test_images_by_folder,
)
from adbench.detector import CategoryKind
from adbench.errors import AdbenchError
from adbench.files import parse_json, read_text_file

CONFIG_FILE = "defects_config.json"
ANOMALY_TYPES = ("logical_anomalies", "structural_anomalies")
LOCO_KINDS: dict[str, CategoryKind] = {
    name: "object"
    for name in ("breakfast_box", "juice_bottle", "pushpins", "screw_bag", "splicing_connectors")
}
_CONFIG_HINT = (
    "expected a JSON list of objects with defect_name, pixel_value, saturation_threshold and "
    "relative_saturation, as MVTec LOCO ships it"
)


def is_loco_category(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() or any(
        (folder / "test" / kind).is_dir() for kind in ANOMALY_TYPES
    )


class MVTecLOCO(DatasetFormat):
    name = "mvtec_loco"
    title = "MVTec LOCO AD"
    expects = (
        "ROOT/<category>/train/good/, validation/good/, test/{logical,structural}_anomalies/, "
        "ground_truth/<type>/<stem>/000.png, defects_config.json"
    )
    kinds: ClassVar = LOCO_KINDS

    def recognises(self, root: Path) -> bool:
        return any(is_loco_category(folder) for folder in category_dirs(root))

    def read_category(self, root: Path, name: str, kind: CategoryKind) -> CategoryFiles:
        folder = root / name
        train = defect_free_images(folder / "train" / GOOD)
        validation = defect_free_images(folder / "validation" / GOOD, least=1)
        test_dir = folder / "test"
        if not test_dir.is_dir():
            raise AdbenchError(f"{test_dir}: missing; expected {test_dir}/good/ and {test_dir}/<type>/")
        test = test_images_by_folder(test_dir, lambda kind, image: _masks_of(folder, kind, image))
        check_test_labels(test_dir, test)
        config = read_defects_config(folder / CONFIG_FILE)
        return CategoryFiles(
            name, kind, root, tuple(train), tuple(validation), tuple(test), defects_config=config
        )


def _masks_of(folder: Path, anomaly_type: str, image: Path) -> tuple[Path, ...]:
    mask_dir = folder / "ground_truth" / anomaly_type / image.stem
    masks = tuple(images_in(mask_dir)) if mask_dir.is_dir() else ()
    if not masks:
        raise AdbenchError(
            f"{image}: defect image without its masks; expected {mask_dir}/000.png (one file per defect)"
        )
    return masks


def read_defects_config(path: Path) -> DefectsConfig:
    """The saturation of each defect, keyed by the pixel value its masks use."""
    try:
        entries = parse_json(read_text_file(path, "defects config", _CONFIG_HINT))
    except ValueError as error:
        raise AdbenchError(f"{path}: not valid JSON ({error}); {_CONFIG_HINT}") from None
    if not isinstance(entries, list) or not entries:
        raise AdbenchError(f"{path}: {_CONFIG_HINT}")
    by_value: dict[int, Saturation] = {}
    for number, entry in enumerate(entries, start=1):
        saturation = _saturation(entry)
        if saturation is None:
            raise AdbenchError(f"{path}: entry {number} is {json.dumps(entry)[:80]}; {_CONFIG_HINT}")
        value = int(entry["pixel_value"])
        if value in by_value:
            raise AdbenchError(f"{path}: pixel_value {value} is given twice; give each defect its own")
        by_value[value] = saturation
    return DefectsConfig(path, by_value)


def _saturation(entry: Any) -> Saturation | None:
    """The entry's saturation, or None when it is not a well-formed config entry."""
    if not isinstance(entry, dict):
        return None
    value, threshold = entry.get("pixel_value"), entry.get("saturation_threshold")
    relative, name = entry.get("relative_saturation"), entry.get("defect_name")
    numbers_ok = (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 < value < 65536
        and isinstance(threshold, int | float)
        and not isinstance(threshold, bool)
        and math.isfinite(threshold)
        and threshold > 0
    )
    if not numbers_ok or not isinstance(relative, bool) or not isinstance(name, str):
        return None
    threshold = cast(float, threshold)
    if relative and threshold > 1:  # a share of the defect's area
        return None
    return Saturation(name, float(threshold), relative)
