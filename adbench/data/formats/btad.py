"""BTAD, the beanTech Anomaly Detection dataset (Mishra et al., 2021):

    ROOT/<category>/train/ok/*.bmp
    ROOT/<category>/test/{ok,ko}/*.bmp
    ROOT/<category>/ground_truth/ko/<stem>.png

Images and masks mix .bmp and .png, so a mask is found by its image's stem. Defect-free test images are
named "good" in the results, as in every format; defective ones "ko". A fixed share of train/ok is held
out for validation. The publisher gives no texture/object split; adbench calls product 01 (one part,
photographed whole) an object and 02 and 03 (surfaces that fill the frame) textures.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from adbench.data.formats.base import DatasetFormat, category_dirs
from adbench.data.layout import (
    CategoryFiles,
    defect_free_images,
    find_mask,
    good_and_bad_images,
    split_validation,
)
from adbench.detector import CategoryKind

BTAD_KINDS: dict[str, CategoryKind] = {"01": "object", "02": "texture", "03": "texture"}
OK, KO = "ok", "ko"


class BTAD(DatasetFormat):
    name = "btad"
    title = "BTAD"
    expects = "ROOT/<category>/train/ok/, test/{ok,ko}/, ground_truth/ko/<stem>.png"
    kinds: ClassVar = BTAD_KINDS

    def recognises(self, root: Path) -> bool:
        return any((folder / "train" / OK).is_dir() for folder in category_dirs(root))

    def read_category(self, root: Path, name: str, kind: CategoryKind) -> CategoryFiles:
        folder = root / name
        train_ok = defect_free_images(folder / "train" / OK)
        test = good_and_bad_images(
            folder / "test", OK, KO, lambda image: find_mask(folder / "ground_truth" / KO, image, tail="")
        )
        train, validation = split_validation(train_ok)
        return CategoryFiles(name, kind, root, tuple(train), tuple(validation), tuple(test))
