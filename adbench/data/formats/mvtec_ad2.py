"""MVTec AD 2 (Heckler-Kram et al., 2025):

    ROOT/<category>/train/good/*.png
    ROOT/<category>/validation/good/*.png                     the validation split
    ROOT/<category>/test_public/{good,bad}/*.png
    ROOT/<category>/test_public/ground_truth/bad/<stem>_mask.png
    ROOT/<category>/test_private/*.png, test_private_mixed/*.png   no labels

The private test sets are scored for the publisher's evaluation server only: never in a metric, and with
`--save-maps` written as its submission expects (adbench.evaluation.external_maps.write_submission).
The publisher
gives no texture/object split; adbench calls the surfaces that fill the frame with no fixed layout
(fabric, rice, sheet_metal) textures and the rest objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from adbench.data.formats.base import DatasetFormat, category_dirs
from adbench.data.layout import (
    GOOD,
    CategoryFiles,
    defect_free_images,
    find_mask,
    good_and_bad_images,
    images_if_any,
)
from adbench.detector import CategoryKind

TEXTURES = ("fabric", "rice", "sheet_metal")
OBJECTS = ("can", "fruit_jelly", "vial", "wallplugs", "walnuts")
AD2_KINDS: dict[str, CategoryKind] = {
    name: "texture" if name in TEXTURES else "object" for name in (*TEXTURES, *OBJECTS)
}
PUBLIC = "test_public"
PRIVATE = ("test_private", "test_private_mixed")
BAD = "bad"


class MVTecAD2(DatasetFormat):
    name = "mvtec_ad2"
    title = "MVTec AD 2"
    expects = (
        "ROOT/<category>/train/good/, validation/good/, test_public/{good,bad}/, "
        "test_public/ground_truth/bad/<stem>_mask.png"
    )
    kinds: ClassVar = AD2_KINDS

    def recognises(self, root: Path) -> bool:
        return any((folder / PUBLIC).is_dir() for folder in category_dirs(root))

    def read_category(self, root: Path, name: str, kind: CategoryKind) -> CategoryFiles:
        folder = root / name
        train = defect_free_images(folder / "train" / GOOD)
        validation = defect_free_images(folder / "validation" / GOOD, least=1)
        public = folder / PUBLIC
        test = good_and_bad_images(
            public, GOOD, BAD, lambda image: find_mask(public / "ground_truth" / BAD, image)
        )
        unlabeled = [image for split in PRIVATE for image in images_if_any(folder / split)]
        return CategoryFiles(name, kind, root, tuple(train), tuple(validation), tuple(test), tuple(unlabeled))
