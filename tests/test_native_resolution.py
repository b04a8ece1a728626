"""Pixel metrics at the ground truth's own size: upsampled maps, the original masks, exported maps."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from rich.console import Console

from adbench.data.cache import load_native_masks
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import BudgetName, CategorySpec, Scores
from adbench.evaluation.evaluate import upsample_maps
from adbench.evaluation.external_maps import read_map
from adbench.registry import load_method
from adbench.run import cell, runner
from adbench.run.config import RunConfig
from tests.helpers import adbench
from tests.test_sensitivity import TemplateDetector, _TemplateParams


def test_bilinear_upsampling_by_hand():
    # align_corners=False: output pixel x samples the source at (x + 0.5) / 2 - 0.5, clamped to the
    # edge: -0.25 -> 0, 0.25, 0.75, 1.25 -> 1. The source is 2 y + x, so each output is 2 yy + xx.
    source = np.array([[[0.0, 1.0], [2.0, 3.0]]], dtype=np.float32)
    steps = np.array([0.0, 0.25, 0.75, 1.0])
    expected = 2 * steps[:, None] + steps[None, :]
    upsampled = upsample_maps(source, (4, 4))
    assert upsampled.dtype == np.float32 and upsampled.shape == (1, 4, 4)
    np.testing.assert_allclose(upsampled[0], expected, atol=1e-7)
    # Non-square target: rows stay (2 -> 2), columns as above.
    np.testing.assert_allclose(upsample_maps(source, (2, 4))[0], 2 * np.arange(2)[:, None] + steps, atol=1e-7)
    assert upsample_maps(source, (2, 2)) is not None and np.array_equal(upsample_maps(source, (2, 2)), source)


class BrightnessDetector(TemplateDetector):
    """Its map is the image itself at a 16 px input: it finds bright defects and nothing else."""

    name = "brightness"

    @classmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> _TemplateParams:
        return _TemplateParams(category.channels, 16)

    def score(self, images: torch.Tensor) -> Scores:
        maps = images.mean(dim=1)
        return Scores(maps.flatten(1).amax(dim=1).double().numpy(), maps.numpy())


def _plate(root, rng):
    """64 px images: dark noise; each defective one has a bright 32 px square (in the mask, and found)
    and a 2 x 2 spot in the mask that the image does not show. A nearest resize to 16 px samples rows
    and columns 4k + 2, which miss the spot's rows 52-53: at the input size it does not exist."""

    def save(path, array):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array.astype(np.uint8)).save(path)

    def noise():
        return rng.integers(0, 20, (64, 64))

    for i in range(10):
        save(root / "plate" / "train" / "good" / f"{i:03d}.png", noise())
    for i in range(4):
        save(root / "plate" / "test" / "good" / f"{i:03d}.png", noise())
    for i in range(2):
        image = noise()
        image[16:48, 16:48] = 255
        mask = np.zeros((64, 64))
        mask[16:48, 16:48] = 255
        mask[52:54, 56:58] = 255
        save(root / "plate" / "test" / "spot" / f"{i:03d}.png", image)
        save(root / "plate" / "ground_truth" / "spot" / f"{i:03d}_mask.png", mask)
    return root


@pytest.fixture(scope="module")
def plate_root(tmp_path_factory):
    return _plate(tmp_path_factory.mktemp("plate"), np.random.default_rng(0))


def _run_brightness(plate_root, out, resolution, monkeypatch):
    def methods(name):
        return BrightnessDetector if name == "brightness" else load_method(name)

    monkeypatch.setattr(runner, "load_method", methods)
    monkeypatch.setattr(cell, "load_method", methods)
    config = RunConfig(
        methods=("brightness",),
        categories=("plate",),
        data=plate_root,
        kinds=(("plate", "object"),),
        out=out,
        run_name=resolution,
        timing_repeats=1,
        pixel_resolution=resolution,
    )
    outcome = runner.run(config, Console(file=io.StringIO()))
    metrics = outcome.results.set_index("metric")["value"]
    entry = json.loads((outcome.run_dir / "manifest.json").read_text())["cells"][0]
    return metrics, entry


def test_a_spot_lost_at_the_input_size_counts_at_the_masks_size(plate_root, tmp_path, monkeypatch):
    native_masks = load_native_masks(read_category(plate_root, "plate", "object"))
    assert native_masks.regions.count == 4, "two regions per defective image at 64 px"

    native, native_entry = _run_brightness(plate_root, tmp_path, "native", monkeypatch)
    at_input, input_entry = _run_brightness(plate_root, tmp_path, "input", monkeypatch)
    # At 16 px only the squares exist, and the map finds them at FPR 0: AU-PRO 1. At 64 px the spots
    # are half the regions and are found only when every defect-free pixel is too: AU-PRO halves.
    assert at_input["pixel_aupro_0.3"] == pytest.approx(1.0, abs=0.02)
    assert native["pixel_aupro_0.3"] == pytest.approx(0.5, abs=0.03)
    assert native["pixel_aupro_0.01"] < 0.55
    assert native_entry["pixel_resolution"] == "native: 64x64, the masks' size"
    assert input_entry["pixel_resolution"] == "input: 16x16, the detector's input size"
    # The minimum defect area of the threshold protocol is in pixels of the size scored at.
    assert native_entry["validation_threshold"]["min_defect_area"] == 4  # 0.001 x 64 x 64, rounded
    assert input_entry["validation_threshold"]["min_defect_area"] == 1


def test_saved_maps_scored_by_evaluate_equal_the_runs_pixel_metrics(tiny_root, tmp_path):
    result = adbench(
        "run", "--methods", "l2ae", "--categories", "washer", "--budget", "smoke", "--data", str(tiny_root),
        "--out", str(tmp_path), "--name", "r", "--save-maps", "--repeats", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cell_dir = tmp_path / "r" / "cells" / "l2ae" / "washer" / "seed0"
    files = read_category(tiny_root, "washer", "object")
    for item in files.test:  # the MVTec evaluation layout, one float32 map per test image at its size
        path = cell_dir / "maps" / "washer" / item.path.relative_to(tiny_root / "washer").with_suffix(".tiff")
        assert read_map(path, Image.open(item.path).size[::-1]).dtype == np.float32
    evaluated = tmp_path / "evaluated.csv"
    scored = adbench(
        "evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(cell_dir / "maps"),
        "--categories", "washer", "--out", str(evaluated),
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    expected = pd.read_csv(evaluated).set_index("metric")["value"]
    stored = pd.read_csv(tmp_path / "r" / "results.csv").set_index("metric")["value"]
    pixel = [metric for metric in expected.index if metric.startswith("pixel_")]
    assert {"pixel_auroc", "pixel_ap", "pixel_f1_max", "pixel_aupro_0.05", "pixel_aupimo"} <= set(pixel)
    for metric in pixel:
        assert stored[metric] == pytest.approx(expected[metric], abs=1e-6, nan_ok=True), metric

    # The tiny set's 8 defect-free test images hold 32,768 pixels: AUPIMO cannot reach FPR 1e-5.
    pimo = pd.read_csv(cell_dir / "pimo.csv")
    assert list(pimo.columns) == ["image", "defect", "aupimo"] and len(pimo) == sum(
        item.is_anomalous for item in files.test
    )
    assert pimo["aupimo"].isna().all() and np.isnan(stored["pixel_aupimo"])
    entry = json.loads((tmp_path / "r" / "manifest.json").read_text())["cells"][0]
    assert any(
        "pixel_aupimo undefined" in warning and "32,768 pixels" in warning for warning in entry["warnings"]
    )


def test_a_run_from_before_the_option_resumes_at_the_input_size(one_cell_run, tmp_path):
    run_dir = tmp_path / "old"
    shutil.copytree(one_cell_run, run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["pixel_resolution"] == "native", "new runs record their resolution"
    del manifest["config"]["pixel_resolution"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert RunConfig.from_manifest(run_dir).pixel_resolution == "input"


def test_mixed_test_image_sizes_are_refused_before_training_with_the_way_out(dataset_copy, tmp_path):
    image = next((dataset_copy / "pin" / "test" / "good").glob("*.png"))
    Image.open(image).resize((48, 48)).save(image)
    result = adbench(
        "run", "--methods", "l2ae", "--categories", "pin", "--budget", "smoke", "--data", str(dataset_copy),
        "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    assert result.returncode == 2 and "--pixel-resolution input" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists(), "refused before the run folder exists"
    at_input = adbench(
        "run", "--methods", "l2ae", "--categories", "pin", "--budget", "smoke", "--data", str(dataset_copy),
        "--out", str(tmp_path / "runs"), "--pixel-resolution", "input", "--repeats", "1",
    )  # fmt: skip
    assert at_input.returncode == 0, at_input.stderr
