"""Tiny copies of each publisher's folder layout, built from the synthetic MVTec AD-layout dataset.

Real folder and file names (VisA's .JPG capitals and split CSV, BTAD's .bmp images beside .png masks,
MVTec AD 2's private splits, MVTec LOCO's folder of masks per image and its defects config), real
category names so that kinds are known by name, and no categories.toml. Each builder returns what it
wrote, so tests compare what adbench reads with what was built.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Built:
    """What a builder wrote, per category: counts by split, as `adbench data info --json` reports them."""

    root: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _source(source: Path, category: str) -> tuple[list[Path], list[Path], dict[str, list[Path]]]:
    """train/good, test/good and test/<defect> images of a synthetic category, sorted."""
    folder = source / category
    defects = {
        d.name: sorted(d.glob("*.png")) for d in sorted((folder / "test").iterdir()) if d.name != "good"
    }
    return (
        sorted((folder / "train" / "good").glob("*.png")),
        sorted((folder / "test" / "good").glob("*.png")),
        defects,
    )


def _mask_of(source: Path, image: Path) -> np.ndarray:
    category, defect = image.parts[-4], image.parent.name
    return np.asarray(Image.open(source / category / "ground_truth" / defect / f"{image.stem}_mask.png")) > 0


def _save(image: Path, out: Path, mode: str | None = None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    opened = Image.open(image)
    (opened.convert(mode) if mode else opened).save(out)


def _save_mask(mask: np.ndarray, out: Path, value: int = 255) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * np.uint8(value)).save(out)


def _count(train: int, validation: int, normal: int, anomalous: int, defect_types: int) -> dict[str, int]:
    return {
        "train": train,
        "validation": validation,
        "test_normal": normal,
        "test_anomalous": anomalous,
        "defect_types": defect_types,
    }


def held_out(count: int) -> int:
    """How many training images adbench holds out for validation where a format has no split of its own."""
    return max(1, round(0.1 * count))


def build_mpdd(source: Path, out: Path) -> Built:
    """MVTec AD layout under MPDD's category names."""
    built = Built(out)
    for new, old in (("bracket_black", "washer"), ("tubes", "pin")):
        shutil.copytree(source / old, out / new)
        train, good, defects = _source(source, old)
        anomalous = sum(len(images) for images in defects.values())
        built.counts[new] = _count(
            len(train) - held_out(len(train)), held_out(len(train)), len(good), anomalous, len(defects)
        )
    return built


def build_btad(source: Path, out: Path) -> Built:
    """train/ok, test/{ok,ko} as .bmp; masks in ground_truth/ko, .png for some and .bmp for others."""
    built = Built(out)
    for new, old in (("01", "washer"), ("03", "sand")):
        train, good, defects = _source(source, old)
        for image in train:
            _save(image, out / new / "train" / "ok" / f"{image.stem}.bmp")
        for image in good:
            _save(image, out / new / "test" / "ok" / f"{image.stem}.bmp")
        bad = [image for images in defects.values() for image in images]
        for number, image in enumerate(bad):
            _save(image, out / new / "test" / "ko" / f"{number:04d}.bmp")
            suffix = ".png" if number % 2 == 0 else ".bmp"
            _save_mask(_mask_of(source, image), out / new / "ground_truth" / "ko" / f"{number:04d}{suffix}")
        built.counts[new] = _count(
            len(train) - held_out(len(train)), held_out(len(train)), len(good), len(bad), 1
        )
    return built


def build_visa(source: Path, out: Path) -> Built:
    """Data/Images/{Normal,Anomaly}/*.JPG, masks of value 1 in Data/Masks/Anomaly, split_csv/1cls.csv."""
    built = Built(out)
    rows = []
    for new, old in (("candle", "washer"), ("pcb1", "weave")):
        train, good, defects = _source(source, old)
        for number, image in enumerate([*train, *good]):
            relative = f"{new}/Data/Images/Normal/{number:04d}.JPG"
            _save(image, out / relative, "RGB")
            rows.append([new, "train" if number < len(train) else "test", "normal", relative, ""])
        bad = [image for group in defects.values() for image in group]
        for number, image in enumerate(bad):
            relative = f"{new}/Data/Images/Anomaly/{number:03d}.JPG"
            mask = f"{new}/Data/Masks/Anomaly/{number:03d}.png"
            _save(image, out / relative, "RGB")
            _save_mask(_mask_of(source, image), out / mask, value=1)
            rows.append([new, "test", "anomaly", relative, mask])
        built.counts[new] = _count(
            len(train) - held_out(len(train)), held_out(len(train)), len(good), len(bad), 1
        )
    (out / "split_csv").mkdir(parents=True)
    with (out / "split_csv" / "1cls.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["object", "split", "label", "image", "mask"])
        writer.writerows(rows)
    return built


PRIVATE_IMAGES = 2  # per private split and category


def build_mvtec_ad2(source: Path, out: Path) -> Built:
    """train/good, validation/good, test_public/{good,bad} with ground_truth/bad, and both private splits."""
    built = Built(out)
    for new, old in (("fabric", "weave"), ("can", "washer")):
        train, good, defects = _source(source, old)
        validation, train = train[:3], train[3:]
        folder = out / new
        for split, images in (
            ("train/good", train),
            ("validation/good", validation),
            ("test_public/good", good),
        ):
            for image in images:
                _save(image, folder / split / image.name)
        bad = [image for group in defects.values() for image in group]
        for number, image in enumerate(bad):
            _save(image, folder / "test_public" / "bad" / f"{number:03d}_bad.png")
            _save_mask(
                _mask_of(source, image),
                folder / "test_public" / "ground_truth" / "bad" / f"{number:03d}_bad_mask.png",
            )
        for split in ("test_private", "test_private_mixed"):
            for number, image in enumerate(bad[:PRIVATE_IMAGES]):
                _save(image, folder / split / f"{number:03d}_{split}.png")
        built.counts[new] = _count(len(train), len(validation), len(good), len(bad), 1)
    return built


# MVTec LOCO's config: one relative and one absolute saturation.
LOCO_CONFIG = [
    {
        "defect_name": "missing_part",
        "pixel_value": 255,
        "saturation_threshold": 1.0,
        "relative_saturation": True,
    },
    {"defect_name": "scratch", "pixel_value": 100, "saturation_threshold": 30, "relative_saturation": False},
]


def build_mvtec_loco(source: Path, out: Path) -> Built:
    """train/good, validation/good, test/{good,logical_anomalies,structural_anomalies}, a folder of masks per
    defective image (000.png, and a second defect 001.png for every other image), defects_config.json."""
    built = Built(out)
    for new, old in (("breakfast_box", "washer"), ("pushpins", "pin")):
        train, good, defects = _source(source, old)
        validation, train = train[:3], train[3:]
        folder = out / new
        for split, images in (("train/good", train), ("validation/good", validation), ("test/good", good)):
            for image in images:
                _save(image, folder / split / image.name)
        (folder / "defects_config.json").write_text(json.dumps(LOCO_CONFIG))
        anomalous = 0
        for anomaly_type, (_, images) in zip(
            ("logical_anomalies", "structural_anomalies"), defects.items(), strict=True
        ):
            for number, image in enumerate(images):
                _save(image, folder / "test" / anomaly_type / f"{number:03d}.png")
                mask = _mask_of(source, image)
                masks = folder / "ground_truth" / anomaly_type / f"{number:03d}"
                if number % 2:  # a second, overlapping defect: the left part of the first again
                    columns = np.flatnonzero(mask.any(axis=0))
                    half = mask.copy()
                    half[:, columns[len(columns) // 2] + 1 :] = False
                    _save_mask(half, masks / "001.png", value=100)
                _save_mask(mask, masks / "000.png", value=255)
                anomalous += 1
        built.counts[new] = _count(len(train), len(validation), len(good), anomalous, 2)
    return built


BUILDERS = {
    "mpdd": build_mpdd,
    "btad": build_btad,
    "visa": build_visa,
    "mvtec_ad2": build_mvtec_ad2,
    "mvtec_loco": build_mvtec_loco,
}
