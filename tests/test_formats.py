"""Every dataset format read as its publisher distributes it: counts, labels, masks, detection, and a
smoke run on each (tiny copies of each layout built by tests/layouts.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from adbench.data.cache import describe, load_category, load_native_masks
from adbench.data.formats import FORMAT_NAMES, detect_format, read_dataset
from adbench.detector import InputSpec
from adbench.errors import AdbenchError
from adbench.evaluation.metrics.catalogue import METRICS
from adbench.evaluation.metrics.spro import Defects
from adbench.run import options
from tests.helpers import adbench, one_line
from tests.layouts import BUILDERS, LOCO_CONFIG, PRIVATE_IMAGES, Built


@pytest.fixture(scope="module")
def built(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    out = tmp_path_factory.mktemp("layouts")
    return {name: build(tiny_root, out / name) for name, build in BUILDERS.items()}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_data_info_json_matches_what_was_built(built, name):
    result = adbench("data", "info", str(built[name].root), "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(
        list(row) == ["category", "format", "kind", "channels", "train", "validation", "test_normal",
                      "test_anomalous", "defect_types"]
        for row in rows
    )  # fmt: skip
    assert {row["category"]: {k: row[k] for k in built[name].counts[row["category"]]} for row in rows} == (
        built[name].counts
    )
    assert {row["format"] for row in rows} == {name}


def test_kinds_are_known_by_name(built):
    kinds = {
        name: {c: f.kind for c, f in read_dataset(b.root, None, {}).files.items()}
        for name, b in built.items()
    }
    assert kinds["btad"] == {"01": "object", "03": "texture"}
    assert kinds["mvtec_ad2"] == {"fabric": "texture", "can": "object"}
    assert kinds["visa"] == {"candle": "object", "pcb1": "object"}
    assert kinds["mpdd"] == {"bracket_black": "object", "tubes": "object"}
    # --kinds still overrides a format's own kinds
    overridden = read_dataset(built["btad"].root, None, {"01": "texture"}).files["01"]
    assert overridden.kind == "texture"


def test_every_format_is_named_in_the_help():
    assert options.FORMAT_NAMES == FORMAT_NAMES, "written out in adbench/run/options.py, which avoids torch"


def test_visa_labels_and_binarised_masks(built):
    files = read_dataset(built["visa"].root, ["candle"], {}).files["candle"]
    assert all(item.path.suffix == ".JPG" for item in files.test)
    anomalous = [item for item in files.test if item.is_anomalous]
    assert {item.defect for item in anomalous} == {"anomaly"}
    assert all("Anomaly" in item.path.parts and len(item.masks) == 1 for item in anomalous)
    stored = np.asarray(Image.open(anomalous[0].masks[0]))
    assert set(np.unique(stored)) == {0, 1}  # VisA's small nonzero values...
    native = load_native_masks(files)
    index = files.test.index(anomalous[0])
    assert np.array_equal(native.masks[index], stored != 0)  # ...are defect pixels
    assert native.labels.sum() == len(anomalous)


def test_btad_matches_bmp_images_with_png_and_bmp_masks(built):
    files = read_dataset(built["btad"].root, ["01"], {}).files["01"]
    masks = [item.masks[0] for item in files.test if item.is_anomalous]
    assert {mask.suffix for mask in masks} == {".png", ".bmp"}
    assert all(item.path.suffix == ".bmp" for item in files.test)
    assert all(mask.stem == item.path.stem for item in files.test for mask in item.masks)


def test_loco_reads_one_mask_per_defect_and_their_union(built):
    files = read_dataset(built["mvtec_loco"].root, ["breakfast_box"], {}).files["breakfast_box"]
    assert files.validation and all("validation" in path.parts for path in files.validation)
    assert {item.defect for item in files.test} == {"good", "logical_anomalies", "structural_anomalies"}
    assert sorted(len(item.masks) for item in files.test if item.is_anomalous) == [1] * 6 + [2] * 4
    native = load_native_masks(files)
    defects = native.defects
    assert isinstance(defects, Defects) and len(defects) == 14
    for d in range(len(defects)):
        image = files.test[defects.image[d]]
        mask = np.asarray(Image.open(image.masks[0 if d == 0 else _file_of(files, defects, d)]))
        assert mask.any()
    two = next(i for i, item in enumerate(files.test) if len(item.masks) == 2)
    union = np.zeros_like(native.masks[two], dtype=bool)
    for mask in files.test[two].masks:
        union |= np.asarray(Image.open(mask)) != 0
    assert np.array_equal(native.masks[two], union)
    # Saturation: relative 1.0 -> the defect's area; absolute 30 px, capped at the area.
    first = [d for d in range(len(defects)) if defects.image[d] == two]
    areas = [defects.offsets[d + 1] - defects.offsets[d] for d in first]
    assert defects.saturation[first[0]] == areas[0]
    assert defects.saturation[first[1]] == min(LOCO_CONFIG[1]["saturation_threshold"], areas[1])


def _file_of(files, defects, d):
    """Which of its image's mask files defect d came from (defects are stored file after file)."""
    return int(np.sum(defects.image[:d] == defects.image[d]))


def test_loco_mask_value_missing_from_the_config_is_one_line(built, tmp_path):
    root = Path(shutil.copytree(built["mvtec_loco"].root, tmp_path / "loco"))
    config = root / "pushpins" / "defects_config.json"
    config.write_text(json.dumps(LOCO_CONFIG[:1]))
    files = read_dataset(root, ["pushpins"], {}).files["pushpins"]
    with pytest.raises(AdbenchError, match=r"001.png: its defect pixels are 100, which defects_config.json"):
        load_native_masks(files)


def test_ad2_uses_its_validation_split_and_keeps_private_images_unlabeled(built):
    files = read_dataset(built["mvtec_ad2"].root, ["can"], {}).files["can"]
    assert all("validation" in path.parts for path in files.validation) and len(files.validation) == 3
    assert len(files.unlabeled) == 2 * PRIVATE_IMAGES
    assert not any("test_private" in str(item.path) for item in files.test)
    tensors = load_category(files, describe(files), InputSpec(32, 3))
    assert tensors.unlabeled is not None and tensors.unlabeled.shape == (2 * PRIVATE_IMAGES, 3, 32, 32)


def test_dry_run_counts_the_private_images_that_save_maps_scores(built):
    def scored(*flags: str) -> int:
        dry = adbench(
            "run", "--methods", "l2ae", "--budget", "smoke", "--data", str(built["mvtec_ad2"].root),
            "--categories", "can", "--dry-run", "--json", *flags,
        )  # fmt: skip
        assert dry.returncode == 0, dry.stderr
        return json.loads(dry.stdout)["scored_images"]

    files = read_dataset(built["mvtec_ad2"].root, ["can"], {}).files["can"]
    assert scored() == len(files.test) + len(files.validation)
    assert scored("--save-maps") == scored() + 2 * PRIVATE_IMAGES


@pytest.mark.parametrize(("name", "category"), [(n, c) for n, c in [
    ("mpdd", "tubes"), ("btad", "01"), ("visa", "pcb1"), ("mvtec_ad2", "can"), ("mvtec_loco", "pushpins")
]])  # fmt: skip
def test_smoke_run_on_each_format(built, tmp_path, name, category):
    result = adbench(
        "run", "--methods", "l2ae", "--budget", "smoke", "--data", str(built[name].root),
        "--categories", category, "--out", str(tmp_path), "--name", "r", "--repeats", "1", "--save-maps",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = tmp_path / "r"
    results = pd.read_csv(run / "results.csv")
    assert 0 <= results.loc[results.metric == "pixel_auroc", "value"].item() <= 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["dataset_format"] == name
    report = adbench("report", str(run))
    assert report.returncode == 0, report.stderr
    text = (run / "report.md").read_text()
    assert f"{name}" in text and str(built[name].root.resolve()) in text
    metrics = set(results.metric)
    assert metrics <= set(METRICS), f"written but not in the catalogue: {sorted(metrics - set(METRICS))}"
    assert ("pixel_auspro_0.05_logical" in metrics) == (name == "mvtec_loco")
    if name == "mvtec_loco":
        spro = results[results.metric.str.startswith("pixel_auspro")]
        assert ((spro.ci_low <= spro.value) & (spro.value <= spro.ci_high)).all(), "AU-sPRO has intervals"
        baseline = tmp_path / "baseline.json"
        assert adbench("compare", str(run), "--baseline", str(baseline), "--update").returncode == 0
        document = json.loads(baseline.read_text())
        (entries,) = (one["entries"] for one in document["baselines"])  # this machine's CPU vendor's
        gated = {entry["metric"] for entry in entries}
        assert {m for m in metrics if m.startswith("pixel_auspro")} <= gated, "AU-sPRO is gated"
        for entry in entries:
            if entry["metric"] == "pixel_auspro_0.3_logical":
                entry["value"] += 0.1  # the run now falls 0.1 below it
        baseline.write_text(json.dumps(document))
        dropped = adbench("compare", str(run), "--baseline", str(baseline))
        assert dropped.returncode == 1 and "pixel_auspro_0.3_logical" in dropped.stdout + dropped.stderr
    cell = run / "cells" / "l2ae" / category / "seed0"
    if name == "mvtec_ad2":
        submission = sorted((cell / "anomaly_images" / category).rglob("*.tiff"))
        assert [p.relative_to(cell).as_posix() for p in submission] == [
            f"anomaly_images/{category}/{split}/{n:03d}_{split}.tiff"
            for split in ("test_private", "test_private_mixed")
            for n in range(PRIVATE_IMAGES)
        ]
        written = tifffile.imread(submission[0])
        source = built[name].root / category / "test_private" / "000_test_private.png"
        assert written.dtype == np.float16 and written.shape == Image.open(source).size[::-1]
        assert np.isfinite(written).all() and written.std() > 0
    else:
        assert not (cell / "anomaly_images").exists()


def test_detection_picks_each_format(built):
    for name, layout in built.items():
        assert detect_format(layout.root).name == name


def test_ambiguous_folder_is_one_line(built, tiny_root, tmp_path):
    root = tmp_path / "mixed"
    shutil.copytree(tiny_root / "washer", root / "washer")
    shutil.copytree(built["btad"].root / "01", root / "01")
    result = adbench("data", "info", str(root))
    line = one_line(result.stderr)
    assert result.returncode == 2
    assert (
        "ambiguous" in line and "mvtec_ad (MVTec AD" in line and "btad (BTAD" in line and "--format" in line
    )
    forced = adbench("data", "info", str(root), "--format", "btad", "--categories", "01", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["format"] == "btad"


def test_unrecognised_folder_names_every_format(tmp_path):
    (tmp_path / "parts" / "images").mkdir(parents=True)
    with pytest.raises(AdbenchError) as raised:
        detect_format(tmp_path)
    message = str(raised.value)
    assert "not a dataset layout" in message and all(f"{name} (" in message for name in FORMAT_NAMES)


def test_split_file_naming_a_missing_image_is_one_line(built, tmp_path):
    root = Path(shutil.copytree(built["visa"].root, tmp_path / "visa"))
    (root / "candle" / "Data" / "Images" / "Anomaly" / "003.JPG").unlink()
    result = adbench("data", "info", str(root))
    line = one_line(result.stderr)
    assert "1cls.csv: line" in line and "candle/Data/Images/Anomaly/003.JPG, which is missing" in line


def test_split_file_cannot_reach_outside_the_root(built, tmp_path):
    root = Path(shutil.copytree(built["visa"].root, tmp_path / "visa"))
    split = root / "split_csv" / "1cls.csv"
    split.write_text(split.read_text().replace("candle/Data/Images/Normal/0000.JPG", "../../etc/passwd", 1))
    with pytest.raises(AdbenchError, match=r"names '\.\./\.\./etc/passwd'; paths must be relative"):
        read_dataset(root, None, {})


def test_unreadable_image_in_data_info_is_one_line(built, tmp_path):
    root = Path(shutil.copytree(built["btad"].root, tmp_path / "btad"))
    (root / "03" / "train" / "ok" / "004.bmp").write_bytes(b"BM not really")
    result = adbench("data", "info", str(root))
    assert "03/train/ok/004.bmp: unreadable or truncated image" in one_line(result.stderr)


def _max_angles(root: Path, category: str) -> dict[str, float]:
    """Each method's training rotation for `category`, as the dry run plans it (the contract's view)."""
    result = adbench("run", "--methods", "l2ae,cbigan,anogan", "--categories", category, "--data", str(root),
                     "--dry-run", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    cells = [json.loads(line) for line in result.stdout.splitlines()]
    return {cell["method"]: cell["params"]["max_angle_deg"] for cell in cells}


def test_a_category_declared_rotation_invariant_in_categories_toml_is_rotated(built, tmp_path):
    root = Path(shutil.copytree(built["visa"].root, tmp_path / "visa"))
    assert set(_max_angles(root, "candle").values()) == {0.0}
    (root / "categories.toml").write_text("[rotation_invariant]\ncandle = true\n")
    assert set(_max_angles(root, "candle").values()) == {45.0}
    assert read_dataset(root, ["candle"], {}).files["candle"].rotation_invariant
    (root / "categories.toml").write_text('[rotation_invariant]\ncandle = "yes"\n')
    refused = adbench("data", "info", str(root))
    assert "rotation_invariant.candle = 'yes' is not true or false" in one_line(refused.stderr)


def test_mvtec_ads_rotation_invariant_objects_rotate_unless_categories_toml_says_otherwise(
    tiny_root, tmp_path
):
    root = Path(shutil.copytree(tiny_root, tmp_path / "data"))
    shutil.copytree(root / "pin", root / "bottle")  # an MVTec AD name: an object photographed in any turn
    assert set(_max_angles(root, "bottle").values()) == {45.0}
    assert set(_max_angles(root, "pin").values()) == {0.0}
    with (root / "categories.toml").open("a") as kinds:
        kinds.write("\n[rotation_invariant]\nbottle = false\n")
    assert set(_max_angles(root, "bottle").values()) == {0.0}
