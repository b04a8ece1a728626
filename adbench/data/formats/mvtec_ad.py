"""MVTec AD (Bergmann et al., CVPR 2019) and MPDD (Jezek et al., 2021), which uses its layout:

    ROOT/<category>/train/good/*.png
    ROOT/<category>/test/<defect>/*.png                  ("good" = defect-free)
    ROOT/<category>/ground_truth/<defect>/<stem>_mask.png

Any folder in this layout is read as MVTec AD (custom data declares its kinds in categories.toml); one
whose categories are all MPDD's is MPDD. Neither has a validation split: a fixed share of train/good is
held out (adbench.data.layout.split_validation).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from adbench.data import mvtec
from adbench.data.formats.base import DatasetFormat, category_dirs
from adbench.data.formats.mvtec_loco import is_loco_category
from adbench.data.layout import (
    GOOD,
    CategoryFiles,
    check_test_labels,
    defect_free_images,
    find_mask,
    split_validation,
    test_images_by_folder,
)
from adbench.detector import CategoryKind
from adbench.errors import AdbenchError

# MPDD's six categories: metal parts, each photographed whole (objects).
MPDD_KINDS: dict[str, CategoryKind] = {
    name: "object"
    for name in ("bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes")
}


def is_mvtec_category(folder: Path) -> bool:
    """train/good and no sign of the formats that share it (MVTec AD 2's test_public, LOCO's config)."""
    return (
        (folder / "train" / GOOD).is_dir()
        and not (folder / "test_public").is_dir()
        and not is_loco_category(folder)
    )


def _mvtec_categories(root: Path) -> list[str]:
    return [folder.name for folder in category_dirs(root) if is_mvtec_category(folder)]


class MVTecAD(DatasetFormat):
    name = "mvtec_ad"
    title = "MVTec AD"
    expects = "ROOT/<category>/train/good/, test/<defect>/, ground_truth/<defect>/<stem>_mask.png"
    kinds: ClassVar = mvtec.KINDS
    rotation_invariant: ClassVar = frozenset(mvtec.ROTATION_INVARIANT)

    def recognises(self, root: Path) -> bool:
        names = _mvtec_categories(root)
        return bool(names) and not all(name in MPDD_KINDS for name in names)

    def read_category(self, root: Path, name: str, kind: CategoryKind) -> CategoryFiles:
        return read_category(root, name, kind)


class MPDD(MVTecAD):
    name = "mpdd"
    title = "MPDD"
    kinds: ClassVar = MPDD_KINDS

    def recognises(self, root: Path) -> bool:
        names = _mvtec_categories(root)
        return bool(names) and all(name in MPDD_KINDS for name in names)


def read_category(root: Path, name: str, kind: CategoryKind) -> CategoryFiles:
    """List and cross-check one MVTec AD-layout category's files."""
    folder = root / name
    train_good = defect_free_images(folder / "train" / GOOD)
    test_dir = folder / "test"
    if not test_dir.is_dir():
        raise AdbenchError(
            f"{test_dir}: missing; put test images in {test_dir}/<defect>/ and {test_dir}/good/"
        )
    test = test_images_by_folder(
        test_dir, lambda defect, image: (find_mask(folder / "ground_truth" / defect, image),)
    )
    check_test_labels(test_dir, test)
    train, validation = split_validation(train_good)
    return CategoryFiles(name, kind, root, tuple(train), tuple(validation), tuple(test))
