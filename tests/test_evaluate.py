"""`adbench evaluate` on maps written as another tool would write them."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from adbench.data.formats.mvtec_ad import read_category
from adbench.errors import AdbenchError
from adbench.evaluation.external_maps import evaluate_maps
from tests.helpers import adbench, one_line
from tests.test_metrics_pixel import brute_force_aupro


def _truth(root, name):
    files = read_category(root, name, "object")
    masks = []
    for item in files.test:
        size = Image.open(item.path).size
        mask = (
            np.zeros(size[::-1], np.uint8) if not item.masks else (np.asarray(Image.open(item.masks[0])) > 0)
        )
        masks.append(mask.astype(np.uint8))
    return files, np.stack(masks)


def write_maps(root, maps_root, name, suffix=".tiff", seed=0):
    """Maps that half-see the defects, quantised to a few levels so ties abound; returns (maps, masks)."""
    files, masks = _truth(root, name)
    rng = np.random.default_rng(seed)
    maps = np.round((0.6 * masks + rng.random(masks.shape)) * 4).astype(np.float32) / 4
    for item, anomaly_map in zip(files.test, maps, strict=True):
        path = maps_root / name / item.path.relative_to(root / name).with_suffix(suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".npy":
            np.save(path, anomaly_map)
        else:
            Image.fromarray(anomaly_map, mode="F").save(path)
    return maps, masks


@pytest.fixture
def maps_dir(tiny_root, tmp_path):
    maps_root = tmp_path / "maps"
    write_maps(tiny_root, maps_root, "washer", ".tiff", seed=1)
    write_maps(tiny_root, maps_root, "pin", ".npy", seed=2)
    return maps_root


def test_values_match_independent_implementations(tiny_root, tmp_path):
    maps_root = tmp_path / "maps"
    maps, masks = write_maps(tiny_root, maps_root, "washer")
    frame = evaluate_maps(tiny_root, maps_root, ["washer"], {}).set_index("metric")["value"]
    labels = masks.reshape(len(masks), -1).max(axis=1)
    assert frame["image_auroc"] == pytest.approx(roc_auc_score(labels, maps.reshape(len(maps), -1).max(1)))
    assert frame["pixel_auroc"] == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-9)
    assert frame["pixel_ap"] == pytest.approx(average_precision_score(masks.ravel(), maps.ravel()), abs=1e-9)
    assert frame["pixel_aupro_0.3"] == pytest.approx(brute_force_aupro(maps, masks, 0.3), abs=1e-6)


def test_cli_writes_the_csv_and_prints_the_means(tiny_root, maps_dir, tmp_path):
    out = tmp_path / "metrics.csv"
    result = _evaluate_cli(tiny_root, maps_dir, "washer,pin", str(out))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["category", "metric", "value"]
    required = {"image_auroc", "image_max_balanced_accuracy", "pixel_auroc", "pixel_ap", "pixel_aupro_0.3"}
    assert required <= set(table.metric) and set(table.category) == {"washer", "pin"}
    aupro = table[table.metric == "pixel_aupro_0.3"]["value"]
    assert f"{aupro.mean():.3f}" in result.stdout.split("pixel AU-PRO")[1].split("└")[0]
    again = _evaluate_cli(tiny_root, maps_dir, "pin", str(out))
    assert again.returncode == 2 and "never overwritten" in again.stderr


def _evaluate_cli(dataset, maps_dir, categories, out):
    return adbench(
        "evaluate", "--dataset", str(dataset), "--anomaly-maps", str(maps_dir),
        "--categories", categories, "--out", str(out),
    )  # fmt: skip


def _damage_first_map(maps_dir, damage):
    path = maps_dir / "washer" / "test" / "good" / "000.tiff"
    damage(path)
    return path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.unlink(), "missing anomaly map for"),
        (lambda p: Image.fromarray(np.zeros((10, 12), np.float32), mode="F").save(p), "map is 12x10 but its"),
        (
            lambda p: Image.fromarray(np.full((64, 64), np.nan, np.float32), mode="F").save(p),
            "NaN or infinite",
        ),
        (lambda p: p.write_bytes(b"garbage"), "unreadable anomaly map"),
        (lambda p: Image.new("RGB", (64, 64)).save(p), "expected one channel"),
        (
            lambda p: Image.fromarray(np.zeros((64, 64), np.float32), mode="F").save(p.with_name("999.tiff")),
            "999.tiff: a map for an image that is not in the dataset",
        ),
    ],
)
def test_bad_maps_give_one_line_naming_the_file(tiny_root, maps_dir, tmp_path, damage, message):
    _damage_first_map(maps_dir, damage)
    with pytest.raises(AdbenchError, match=message):
        evaluate_maps(tiny_root, maps_dir, ["washer"], {})
    result = _evaluate_cli(tiny_root, maps_dir, "washer", str(tmp_path / "m.csv"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert str(maps_dir / "washer" / "test" / "good") in result.stderr
    assert not (tmp_path / "m.csv").exists()


def test_without_categories_the_ones_that_have_maps_are_scored_and_the_others_named(
    tiny_root, maps_dir, tmp_path
):
    out = tmp_path / "metrics.csv"
    result = adbench(
        "evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(maps_dir), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert set(pd.read_csv(out).category) == {"washer", "pin"}
    assert f"note: no maps for sand, weave under {maps_dir}; scored the other categories" in " ".join(
        result.stderr.split()
    )
    named = _evaluate_cli(tiny_root, maps_dir, "washer,sand", str(tmp_path / "named.csv"))
    assert named.returncode == 2 and "no anomaly maps for category 'sand'" in named.stderr, (
        "asked for: required"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    none = adbench(
        "evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(empty), "--out", str(out) + "2"
    )
    assert none.returncode == 2 and "no folder of maps for any category" in one_line(none.stderr)
