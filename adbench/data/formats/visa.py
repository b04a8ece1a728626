"""VisA, the Visual Anomaly dataset (Zou et al., ECCV 2022), with its one-class split:

    ROOT/<object>/Data/Images/{Normal,Anomaly}/*.JPG
    ROOT/<object>/Data/Masks/Anomaly/<stem>.png        small nonzero values mark the defect
    ROOT/split_csv/1cls.csv                            object,split,label,image,mask

The split file decides everything: which images train and which test, and their labels; its paths are
relative to ROOT and stay inside their object's folder, ROOT/<object>/, as VisA distributes them (the
maps of --save-maps are laid out by the path below it); each image is listed once. A fixed share of the
training images is held out for validation. VisA names no defect types in its split, so defective images
are all "anomaly". Every VisA category shows one or more whole objects on a background, so all twelve
are objects.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar

from adbench.data.formats.base import DatasetFormat
from adbench.data.layout import (
    GOOD,
    CategoryFiles,
    TestImage,
    check_test_labels,
    split_validation,
)
from adbench.detector import CategoryKind
from adbench.errors import AdbenchError
from adbench.files import read_text_file
from adbench.names import checked_name

SPLIT_FILE = Path("split_csv") / "1cls.csv"
COLUMNS = ("object", "split", "label", "image", "mask")
ANOMALY = "anomaly"
VISA_KINDS: dict[str, CategoryKind] = {
    name: "object"
    for name in (
        "candle",
        "capsules",
        "cashew",
        "chewinggum",
        "fryum",
        "macaroni1",
        "macaroni2",
        "pcb1",
        "pcb2",
        "pcb3",
        "pcb4",
        "pipe_fryum",
    )
}


@dataclass(frozen=True)
class _Row:
    line: int
    category: str
    split: str  # train or test
    anomalous: bool
    image: Path
    mask: Path | None


class VisA(DatasetFormat):
    name = "visa"
    title = "VisA"
    expects = "ROOT/split_csv/1cls.csv and ROOT/<object>/Data/Images/{Normal,Anomaly}/"
    kinds: ClassVar = VISA_KINDS

    def recognises(self, root: Path) -> bool:
        return (root / SPLIT_FILE).is_file() or (root / SPLIT_FILE.parent).is_dir()

    def categories(self, root: Path) -> list[str]:
        return sorted({row.category for row in _read_split(root)})

    def read_category(self, root: Path, name: str, kind: CategoryKind) -> CategoryFiles:
        rows = [row for row in _read_split(root) if row.category == name]
        _check_present(root, rows)
        split_file = root / SPLIT_FILE
        train_rows = [row for row in rows if row.split == "train"]
        for row in train_rows:
            if row.anomalous:
                raise AdbenchError(
                    f"{split_file}: line {row.line} puts the anomalous image {row.image} in the training "
                    "split; training images must be defect-free"
                )
        train_images = [row.image for row in train_rows]
        if len(train_images) < 2:
            raise AdbenchError(
                f"{split_file}: {len(train_images)} training image(s) of {name}; a category needs at least 2"
            )
        test = [
            TestImage(row.image, ANOMALY if row.anomalous else GOOD, () if row.mask is None else (row.mask,))
            for row in rows
            if row.split == "test"
        ]
        check_test_labels(split_file, test)
        train, validation = split_validation(train_images)
        return CategoryFiles(name, kind, root, tuple(train), tuple(validation), tuple(test))


def _read_split(root: Path) -> list[_Row]:
    """The split file's rows, every path checked to stay inside `root`."""
    split_file = root / SPLIT_FILE
    hint = f"expected VisA's split file with the columns {','.join(COLUMNS)}"
    reader = csv.DictReader(io.StringIO(read_text_file(split_file, "split file", hint)))
    try:
        columns = tuple(reader.fieldnames or ())
        records = list(reader)
    except csv.Error as error:  # a field past the csv module's size limit, a NUL byte
        raise AdbenchError(f"{split_file}: line {reader.line_num}: {error}; {hint}") from None
    if columns[: len(COLUMNS)] != COLUMNS:
        raise AdbenchError(f"{split_file}: columns {','.join(columns)[:100]!r}; {hint}")
    rows = []
    listed: dict[Path, int] = {}  # each image's line
    for line, record in enumerate(records, start=2):
        split, label = record["split"], record["label"]
        if split not in ("train", "test") or label not in ("normal", ANOMALY):
            raise AdbenchError(
                f"{split_file}: line {line} has split {split!r} and label {label!r}; "
                "split must be train or test, label normal or anomaly"
            )
        category = checked_name(record["object"] or "", "object", f"{split_file}: line {line}")
        image = _inside(root, split_file, line, category, record["image"])
        mask = _inside(root, split_file, line, category, record["mask"]) if label == ANOMALY else None
        first = listed.setdefault(image, line)
        if first != line:
            raise AdbenchError(
                f"{split_file}: lines {first} and {line} both list {image.relative_to(root)}; an image "
                "belongs to one split once (a test image seen in training would inflate every metric)"
            )
        rows.append(_Row(line, category, split, label == ANOMALY, image, mask))
    if not rows:
        raise AdbenchError(f"{split_file}: no rows; {hint}")
    return rows


def _inside(root: Path, split_file: Path, line: int, category: str, relative: str | None) -> Path:
    """ROOT/relative, refused unless it names a place inside ROOT/<category>/ (a split file must not
    reach elsewhere); where links lead is checked with every format's files (layout.check_places)."""
    parts: Sequence[str] = PurePosixPath(relative or "").parts
    if not relative or PurePosixPath(relative).is_absolute() or ".." in parts or parts[:1] != (category,):
        raise AdbenchError(
            f"{split_file}: line {line} names {relative!r}; paths must be relative to {root}, inside "
            f"its object's folder {category}/"
        )
    return root.joinpath(*parts)


def _check_present(root: Path, rows: Sequence[_Row]) -> None:
    for row in rows:
        for path in (row.image, row.mask):
            if path is not None and not path.is_file():
                raise AdbenchError(
                    f"{root / SPLIT_FILE}: line {row.line} names {path.relative_to(root)}, which is missing "
                    f"({path}); restore it or remove the line"
                )
