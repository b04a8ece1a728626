"""Files that lie, or that another tool wrote its own way (#15 items 6, 8, 9, 10, 12): masks of any bit
depth or mode, checkpoints and anomaly maps whose headers claim sizes that would allocate, params out of
range, baselines that would gate on nothing, a categories.toml whose kinds is not a table, and an AU-PRO
summed past 1. Every case is one line naming the file, before anything large is allocated."""

from __future__ import annotations

import dataclasses
import json
import math
import resource
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from adbench.data import mvtec
from adbench.data.cache import describe, load_category, load_native_masks
from adbench.data.formats.mvtec_ad import read_category
from adbench.data.layout import read_kinds
from adbench.detector import BUDGETS, CategorySpec, InputSpec
from adbench.errors import AdbenchError
from adbench.external_maps import evaluate_maps
from adbench.metrics.pixel import pixel_aupro, pixel_metrics
from adbench.params import checked_fields
from adbench.registry import load_method
from adbench.report.compare import read_baseline
from adbench.results import read_results, write_results
from adbench_methods.autoencoder.detector import L2Autoencoder
from tests.helpers import adbench
from tests.test_compare import _run
from tests.test_evaluate import write_maps


def _assert_one_line(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(path) in result.stderr


# --- masks: nonzero = defect, whatever the bit depth ------------------------------------------------


def _sixteen_bit_0_1(defect: np.ndarray) -> Image.Image:
    return Image.fromarray(defect.astype(np.uint16))  # I;16 holding 0 and 1


def _dark_blue_rgb(defect: np.ndarray) -> Image.Image:
    colour = np.zeros((*defect.shape, 3), np.uint8)
    colour[defect, 2] = 1  # a luminance of 0.1: gone in a conversion to 8-bit gray
    return Image.fromarray(colour)


def _palette_index_1(defect: np.ndarray) -> Image.Image:
    mask = Image.fromarray(defect.astype(np.uint8), "P")
    mask.putpalette([0, 0, 0, 1, 0, 0])  # index 1 is a red too dark to survive a conversion to gray
    return mask


def _white_on_transparent(defect: np.ndarray) -> Image.Image:
    # White everywhere, opaque only on the defect: dropping the alpha makes every pixel a defect.
    return Image.fromarray(np.dstack([np.full(defect.shape, 255, np.uint8), defect * np.uint8(255)]), "LA")


def _rewrite_masks(root: Path, category: str, write: Callable[[np.ndarray], Image.Image]) -> None:
    masks = sorted((root / category / "ground_truth").glob("*/*_mask.png"))
    assert masks
    for path in masks:
        defect = np.asarray(Image.open(path)) > 0
        write(defect).save(path)


@pytest.mark.parametrize("write", [_sixteen_bit_0_1, _dark_blue_rgb, _palette_index_1, _white_on_transparent])
def test_masks_of_any_mode_give_the_masks_of_the_8_bit_original(tiny_root, dataset_copy, write):
    _rewrite_masks(dataset_copy, "pin", write)
    spec = InputSpec(48, 1)  # not the images' 64 px: the resized path too
    expected, rewritten = (read_category(root, "pin", "object") for root in (tiny_root, dataset_copy))
    original = load_category(expected, describe(expected), spec)
    loaded = load_category(rewritten, describe(rewritten), spec)
    assert original.test_masks.sum() > 0
    assert torch.equal(loaded.test_masks, original.test_masks)
    assert np.array_equal(load_native_masks(rewritten).masks, load_native_masks(expected).masks)


def test_16_bit_0_1_masks_give_the_metrics_of_8_bit_0_255_ones(tiny_root, dataset_copy, tmp_path):
    _rewrite_masks(dataset_copy, "pin", _sixteen_bit_0_1)
    maps_root = tmp_path / "maps"
    write_maps(tiny_root, maps_root, "pin")
    original = evaluate_maps(tiny_root, maps_root, ["pin"], {})
    pd.testing.assert_frame_equal(evaluate_maps(dataset_copy, maps_root, ["pin"], {}), original)


# --- checkpoints: params checked before the detector is built ---------------------------------------


def _checkpoint(path: Path, genuine, **changes: object) -> Path:
    tensors, params = genuine
    save_file(tensors, str(path), metadata={"method": "l2ae", "params": json.dumps(params | changes)})
    return path


def test_checkpoint_claiming_a_huge_side_is_refused_before_anything_is_built(
    genuine_checkpoint, tmp_path, monkeypatch
):
    path = _checkpoint(
        tmp_path / "checkpoint.safetensors",
        genuine_checkpoint,
        image_size=100_000,
        patch_size=100_000,
        patch_stride=100_000,
    )

    def build(*args, **kwargs):
        raise AssertionError("the detector was built: its networks at 100000 px need hundreds of GiB")

    monkeypatch.setattr(L2Autoencoder, "__init__", build)
    with pytest.raises(AdbenchError) as raised:
        L2Autoencoder.load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and "image_size = 100000" in message and "at most 4096" in message
    assert "retrain" in message and "\n" not in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("image_size", "64"),  # a string where an int belongs
        ("channels", True),  # a bool is no channel count
        ("latent_dim", 0),
        ("patch_stride", -32),
        ("learning_rate", math.nan),
        ("weight_decay", math.inf),
    ],
)
def test_checkpoint_params_of_the_wrong_type_or_range_are_refused(genuine_checkpoint, tmp_path, key, value):
    path = _checkpoint(tmp_path / "checkpoint.safetensors", genuine_checkpoint, **{key: value})
    with pytest.raises(AdbenchError) as raised:
        L2Autoencoder.load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: checkpoint params {key} = {value!r}: ") and "retrain" in message


@pytest.mark.parametrize("method", ["l2ae", "ssimae", "cbigan", "egbad", "anogan"])
def test_every_default_passes_the_checks_a_checkpoint_gets(method):
    detector = load_method(method)
    for budget in BUDGETS:
        for kind in ("texture", "object"):
            for channels in (1, 3):
                params = detector.default_params(CategorySpec("x", kind, channels), budget)
                assert checked_fields(type(params), dataclasses.asdict(params)) == dataclasses.asdict(params)


# --- grid files: out-of-range params stop the run before its folder exists --------------------------


@pytest.mark.parametrize(
    "line", ["image_size = -64", "latent_dim = 0", "learning_rate = nan", "image_size = 100000"]
)
def test_out_of_range_grid_params_are_one_line_and_make_no_run_folder(tiny_root, tmp_path, line):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'methods = ["l2ae"]\ncategories = ["pin"]\nbudget = "smoke"\ndata = "{tiny_root}"\n'
        f"[params.l2ae]\n{line}\n"
    )
    out = tmp_path / "runs"
    result = adbench("run", "--config", str(grid), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"params.l2ae.{line.split(' = ')[0]} = " in result.stderr
    assert not out.exists() or not any(out.iterdir())


# --- anomaly maps: the header's size is checked against the mask's before any pixel is read ---------

_MEMORY_CAP = 2 * 2**30  # `adbench evaluate` on the tiny dataset needs a few hundred MiB


def _evaluate_under_memory_cap(dataset: Path, maps_root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`adbench evaluate` with its address space capped: an allocation the file asks for fails loudly."""
    return subprocess.run(
        [sys.executable, "-c", "from adbench.cli import main; main()", "evaluate", "--dataset", str(dataset),
         "--anomaly-maps", str(maps_root), "--categories", "pin", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_CAP, _MEMORY_CAP)),
    )  # fmt: skip


def _first_map(tiny_root: Path, maps_root: Path, suffix: str) -> Path:
    write_maps(tiny_root, maps_root, "pin", suffix)
    path = maps_root / "pin" / "test" / "good" / f"000{suffix}"
    assert path.is_file()
    return path


def _npy_claiming_3_6_tib(path: Path) -> None:
    """A 128-byte .npy whose header says 10^12 float32 values follow, and none do."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (1_000_000, 1_000_000)}
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
    assert path.stat().st_size < 200


def _complex_npy(path: Path) -> None:
    np.save(path, np.zeros((64, 64), np.complex64))  # astype(float32) would drop the imaginary part


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (_npy_claiming_3_6_tib, "map is 1000000x1000000 but its ground truth is 64x64"),
        (_complex_npy, "anomaly map of dtype complex64; expected plain numbers"),
    ],
)
def test_npy_map_whose_header_does_not_fit_is_one_line_without_allocating(
    tiny_root, tmp_path, write, message
):
    maps_root = tmp_path / "maps"
    path = _first_map(tiny_root, maps_root, ".npy")
    write(path)
    result = _evaluate_under_memory_cap(tiny_root, maps_root, tmp_path / "metrics.csv")
    _assert_one_line(result, path)
    assert message in result.stderr
    assert not (tmp_path / "metrics.csv").exists()


def _tiff_header_only(path: Path, width: int, height: int) -> None:
    """A float32 TIFF's header claiming width × height pixels, followed by no pixels."""
    shorts = {258: 32, 259: 1, 262: 1, 277: 1, 339: 3}  # 32 bits, uncompressed, gray, 1 sample, float
    longs = {256: width, 257: height, 273: 8 + 2 + 12 * 10 + 4, 278: height, 279: width * height * 4}
    entries = [struct.pack("<HHIHH", tag, 3, 1, value, 0) for tag, value in shorts.items()]
    entries += [struct.pack("<HHII", tag, 4, 1, value) for tag, value in longs.items()]
    entries.sort(key=lambda entry: struct.unpack("<H", entry[:2])[0])  # TIFF wants the tags ascending
    path.write_bytes(
        b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)) + b"".join(entries) + bytes(4)
    )


@pytest.mark.parametrize(
    ("side", "message"),
    [
        (20_000, "exceeds limit"),  # Pillow's decompression-bomb error
        (10_000, "map is 10000x10000 but its ground truth is 64x64"),  # only a warning from Pillow
    ],
)
def test_tiff_map_claiming_a_huge_size_is_one_line(tiny_root, tmp_path, monkeypatch, side, message):
    maps_root = tmp_path / "maps"
    path = _first_map(tiny_root, maps_root, ".tiff")
    _tiff_header_only(path, side, side)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # here only, to see what the header claims
    with Image.open(path) as claimed:
        assert claimed.size == (side, side)
    result = _evaluate_under_memory_cap(tiny_root, maps_root, tmp_path / "metrics.csv")
    _assert_one_line(result, path)
    assert message in result.stderr


# --- baselines: the gate never passes on nothing ----------------------------------------------------


def _entry(**changes: object) -> dict[str, object]:
    return {"method": "l2ae", "category": "pin", "metric": "image_auroc", "value": 0.8} | changes


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "no entries"),
        ({"l2ae": 0.8}, "not a list"),
        ([{k: v for k, v in _entry().items() if k != "value"}], "expected an object with keys"),
        ([_entry(value=math.nan)], "value nan is not a finite number"),
        ([_entry(value=None)], "value None is not a finite number"),
        ([_entry(value="0.8")], "value '0.8' is not a finite number"),
        ([_entry(value=True)], "value True is not a finite number"),
        ([{**_entry(), "metrc": "image_auroc"}], "expected an object with keys"),
        ([_entry(), _entry(value=0.9)], "l2ae/pin/image_auroc listed more than once"),
    ],
)
def test_baselines_that_gate_on_nothing_are_one_line(tmp_path, entries, message):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"format": 1, "runs": ["r"], "entries": entries}))
    with pytest.raises(AdbenchError) as raised:
        read_baseline(path)
    assert str(raised.value).startswith(f"{path}: not an adbench baseline (") and message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("kind", ["no entries", "a folder", "not UTF-8"])
def test_compare_against_an_unusable_baseline_exits_2(tmp_path, kind):
    path = tmp_path / "baseline.json"
    if kind == "no entries":
        path.write_text('{"format": 1, "runs": [], "entries": []}')
    elif kind == "a folder":
        path.mkdir()
    else:
        path.write_bytes(b'{"format": 1, "runs": ["caf\xe9"], "entries": []}')  # Latin-1
    _assert_one_line(adbench("compare", str(_run(tmp_path, "run")), "--baseline", str(path)), path)


def test_a_run_without_quality_metrics_writes_no_baseline(tmp_path):
    run_dir = _run(tmp_path, "timed")  # as `adbench time` leaves it: timings only
    results = read_results(run_dir)
    write_results(run_dir, results[results.metric == "infer_ms_per_image"])
    path = tmp_path / "baseline.json"
    _assert_one_line(adbench("compare", str(run_dir), "--baseline", str(path), "--update"), path)
    assert not path.exists()


# --- categories.toml ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["kinds = 3\n", 'kinds = "x"\n', 'kinds = [["pin", "object"]]\n'])
def test_kinds_that_is_not_a_table_is_one_line(dataset_copy, text):
    (dataset_copy / "categories.toml").write_text(text)
    with pytest.raises(AdbenchError, match="is not a table") as raised:
        read_kinds(dataset_copy, ["pin"], {}, mvtec.KINDS)
    assert str(raised.value).startswith(f"{dataset_copy / 'categories.toml'}: kinds = ")


def test_categories_file_that_is_not_utf_8_is_one_line(dataset_copy):
    (dataset_copy / "categories.toml").write_bytes(b'[kinds]\npin = "obj\xe9ct"\n')
    with pytest.raises(AdbenchError, match="not UTF-8") as raised:
        read_kinds(dataset_copy, ["pin"], {}, mvtec.KINDS)
    assert str(raised.value).startswith(str(dataset_copy / "categories.toml"))


# --- AU-PRO ---------------------------------------------------------------------------------------


def test_aupro_of_a_perfect_map_is_1_not_more():
    """Three 1-pixel regions found before any defect-free pixel: PRO is 1 at every FPR, but the sums of
    1/3 and of the FPR steps round to 1.0000000000000002 unless clipped."""
    masks = np.zeros((1, 8, 8), np.uint8)
    masks[0, 0, [0, 2, 4]] = 1
    maps = np.where(masks > 0, 2.0, np.arange(64).reshape(1, 8, 8) / 64).astype(np.float32)
    assert pixel_aupro(maps, masks, 0.3) == 1.0
    assert pixel_metrics(maps, masks)["pixel_aupro_0.3"] == 1.0
