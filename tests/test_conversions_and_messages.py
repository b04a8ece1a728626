"""Silent wrong input made a clear refusal or a documented conversion, and messages that name the right
fix: float images, parameter ranges, --kinds, baselines, map files, MVTec LOCO masks in `data info`,
read-only outputs and the staging folder of a killed report (issue #28, items 5 and 6)."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from adbench.atomic import STAGING_LOCK
from adbench.data.cache import describe, load_category, load_native_masks
from adbench.data.formats import read_dataset
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import CategorySpec, InputSpec
from adbench.errors import AdbenchError
from adbench_methods.autoencoder.detector import L2Autoencoder
from tests.helpers import adbench, one_line
from tests.layouts import LOCO_CONFIG, build_mvtec_loco
from tests.test_compare import _run as hand_made_run
from tests.test_evaluate import write_maps

SIZE = 64  # the tiny dataset's side: loading at it resizes nothing, so values compare exactly
TRAIN_IMAGE = "pin/train/good/000.png"


def _as_float_tiff(root: Path, scale: float, poison: float | None = None) -> Path:
    """The 8-bit TRAIN_IMAGE replaced by a float TIFF of its values × `scale` (one pixel `poison`)."""
    png = root / TRAIN_IMAGE
    values = np.asarray(Image.open(png), dtype=np.float32) * np.float32(scale)
    if poison is not None:
        values[0, 0] = poison
    png.unlink()
    tiff = png.with_suffix(".tiff")
    Image.fromarray(values, mode="F").save(tiff)
    assert Image.open(tiff).mode == "F", "the file must really be a float image"
    return tiff


# --- float images: [0, 1] scaled to 8 bits, other ranges refused by run and data info alike ----------


def test_a_float_image_in_0_1_loads_as_its_8_bit_original(dataset_copy):
    original = np.asarray(Image.open(dataset_copy / TRAIN_IMAGE))
    assert original.max() - original.min() > 100, "a real image, not a flat one"
    tiff = _as_float_tiff(dataset_copy, 1 / 255)
    files = read_category(dataset_copy, "pin", "object")
    tensors = load_category(files, describe(files), InputSpec(SIZE, 1))
    loaded = tensors.train[files.train.index(tiff)].numpy()[0]
    np.testing.assert_array_equal(loaded, original)  # not 0..1 of 255, nearly black
    info = adbench("data", "info", str(dataset_copy), "--categories", "pin", "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["channels"] == 1


@pytest.mark.parametrize(
    ("scale", "poison", "problem"),
    [
        (1.0, None, "are read as 0 (black) to 1 (white): scale it to [0, 1], or save it as an 8- or 16-bit"),
        (1 / 255, -0.5, "pixels from -0.5 to "),
        (1 / 255, np.nan, "NaN or infinite pixels"),
    ],
)
def test_a_float_image_outside_0_1_stops_run_and_data_info_with_the_same_line(
    dataset_copy, scale, poison, problem
):
    tiff = _as_float_tiff(dataset_copy, scale, poison)
    files = read_category(dataset_copy, "pin", "object")
    with pytest.raises(AdbenchError) as raised:
        load_category(files, describe(files), InputSpec(SIZE, 1))
    message = str(raised.value)
    assert message.startswith(f"{tiff}: float image with ") and problem in message, message
    info = adbench("data", "info", str(dataset_copy), "--categories", "pin")
    assert info.returncode == 2
    assert one_line(info.stderr) == f"error: {message}"


# --- parameters checked against each other, wherever they come from ---------------------------------


def _dry_run(tiny_root: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return adbench(
        "run", "--methods", "l2ae", "--categories", "pin", "--budget", "smoke", "--data", str(tiny_root),
        "--dry-run", *flags,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["l2ae.min_angle_deg=50.0", "l2ae.max_angle_deg=10.0"],
            "params.l2ae: min_angle_deg = 50.0 must be at most max_angle_deg = 10.0",
        ),
        (["l2ae.image_size=32"], "params.l2ae: patch_size = 64 must be at most image_size = 32"),
        (
            ["l2ae.patch_stride=65"],
            "params.l2ae: patch_stride = 65 must be at most patch_size = 64 (a wider stride leaves",
        ),
        (["l2ae.max_angle_deg=1e300"], "params.l2ae.max_angle_deg = 1e+300: must be in [-360, 360]"),
        (["l2ae.max_shift=5"], "params.l2ae.max_shift = 5: must be in [0, 1]"),
    ],
)
def test_inverted_or_absurd_ranges_given_by_set_are_one_line(tiny_root, sets, message):
    result = _dry_run(tiny_root, *[flag for item in sets for flag in ("--set", item)])
    assert result.returncode == 2
    assert message in one_line(result.stderr)


def test_an_inverted_range_in_a_grid_file_is_one_line_and_makes_no_run_folder(tiny_root, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'methods = ["l2ae"]\ncategories = ["pin"]\nbudget = "smoke"\ndata = "{tiny_root}"\n'
        "[params.l2ae]\nmin_angle_deg = 30\nmax_angle_deg = -30\n"
    )
    out = tmp_path / "runs"
    result = adbench("run", "--config", str(grid), "--out", str(out))
    assert result.returncode == 2
    assert "params.l2ae: min_angle_deg = 30.0 must be at most max_angle_deg = -30.0" in one_line(
        result.stderr
    )
    assert not out.exists() or not any(out.iterdir())


def test_a_checkpoint_with_an_inverted_range_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    detector = L2Autoencoder(L2Autoencoder.default_params(CategorySpec("pin", "object", 1), "smoke"))
    params = dataclasses.asdict(detector.params) | {"min_angle_deg": 50.0, "max_angle_deg": 10.0}
    path = tmp_path / "checkpoint.safetensors"
    tensors = {key: value.contiguous() for key, value in detector.state_tensors().items()}
    save_file(tensors, str(path), metadata={"method": "l2ae", "params": json.dumps(params)})

    def build(*args, **kwargs):
        raise AssertionError("built from params that were not checked against each other")

    monkeypatch.setattr(L2Autoencoder, "__init__", build)
    with pytest.raises(AdbenchError) as raised:
        L2Autoencoder.load(path)
    assert str(raised.value) == (
        f"{path}: checkpoint params min_angle_deg = 50.0 must be at most max_angle_deg = 10.0 "
        "(the low end of a range); retrain this cell"
    )


# --- --kinds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["info", "run"])
def test_kinds_naming_a_category_twice_is_one_line(tiny_root, command):
    flags = ("--kinds", "pin=object,pin=texture")
    result = (
        adbench("data", "info", str(tiny_root), *flags) if command == "info" else _dry_run(tiny_root, *flags)
    )
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "error: --kinds pin=object,pin=texture: pin is given twice; give each category one kind"
    )


def test_a_bad_kind_blames_the_option_not_categories_toml(tiny_root, tmp_path):
    assert (tiny_root / "categories.toml").is_file(), "the file that must not be blamed is there"
    expected = "error: --kinds pin=bogus: the kind must be 'texture' or 'object'"
    info = adbench("data", "info", str(tiny_root), "--kinds", "pin=bogus")
    assert info.returncode == 2 and one_line(info.stderr) == expected
    maps_root = tmp_path / "maps"
    write_maps(tiny_root, maps_root, "pin")
    evaluate = adbench(
        "evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(maps_root), "--categories", "pin",
        "--kinds", "pin=bogus", "--out", str(tmp_path / "m.csv"),
    )  # fmt: skip
    assert evaluate.returncode == 2 and one_line(evaluate.stderr) == expected


# --- baselines --------------------------------------------------------------------------------------


def _baseline(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A baseline written by --update, then edited by hand."""
    path = tmp_path / "smoke.json"
    update = adbench("compare", str(hand_made_run(tmp_path, "base")), "--baseline", str(path), "--update")
    assert update.returncode == 0, update.stderr
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    return path


def test_a_baseline_whose_protocol_is_not_a_table_is_one_line(tmp_path):
    baseline = _baseline(tmp_path, lambda document: document.update(protocol="smoke"))
    result = adbench(
        "compare", str(hand_made_run(tmp_path, "other", budget="default")), "--baseline", str(baseline)
    )
    assert result.returncode == 2, "not compared without the protocol check"
    assert one_line(result.stderr) == (
        f'error: {baseline}: not an adbench baseline (protocol is "smoke", not an object); '
        "recreate it with --update"
    )


@pytest.mark.parametrize(
    ("metric", "problem"),
    [
        ("infer_ms_per_image", "metric 'infer_ms_per_image' is a timing, and timings are never gated"),
        (
            "image_aurok",
            "metric 'image_aurok' is not a quality metric the gate compares, perhaps 'image_auroc'",
        ),
    ],
)
def test_a_baseline_entry_the_gate_never_compares_is_named_not_counted_missing(tmp_path, metric, problem):
    entry = {"method": "l2ae", "category": "pin", "metric": metric, "value": 5.0}
    baseline = _baseline(tmp_path, lambda document: document["entries"].insert(0, entry))
    result = adbench("compare", str(hand_made_run(tmp_path, "same")), "--baseline", str(baseline))
    assert result.returncode == 2 and "missing" not in result.stdout
    assert one_line(result.stderr).startswith(
        f"error: {baseline}: not an adbench baseline (entry 0: {problem}"
    )


# --- map files whose pixels are no scores -----------------------------------------------------------


def _palette(path: Path) -> None:
    Image.new("P", (SIZE, SIZE)).save(path)


def _two_pages(path: Path) -> None:
    first, second = (Image.fromarray(np.full((SIZE, SIZE), v, np.float32), mode="F") for v in (0.0, 1.0))
    first.save(path, save_all=True, append_images=[second])
    assert Image.open(path).n_frames == 2


@pytest.mark.parametrize(
    ("write", "problem"),
    [(_palette, "a palette image, whose pixels are colour indices"), (_two_pages, "a file of several pages")],
)
def test_palette_and_multi_page_maps_are_refused_in_one_line(tiny_root, tmp_path, write, problem):
    maps_root = tmp_path / "maps"
    write_maps(tiny_root, maps_root, "pin")
    path = maps_root / "pin" / "test" / "good" / "000.tiff"
    write(path)
    out = tmp_path / "m.csv"
    result = adbench(
        "evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(maps_root), "--categories", "pin",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 2 and one_line(result.stderr).startswith(f"error: {path}: {problem}")
    assert not out.exists()


# --- MVTec LOCO: a mask value its config does not list stops data info as it stops a run ---------------


def test_data_info_refuses_an_unlisted_loco_mask_value_with_the_runs_line(tiny_root, tmp_path):
    root = build_mvtec_loco(tiny_root, tmp_path / "loco").root
    assert adbench("data", "info", str(root)).returncode == 0, "every value listed: it passes"
    (root / "pushpins" / "defects_config.json").write_text(json.dumps(LOCO_CONFIG[:1]))  # 100 unlisted
    files = read_dataset(root, ["pushpins"], {}).files["pushpins"]
    with pytest.raises(AdbenchError) as raised:
        load_native_masks(files)
    assert "its defect pixels are 100" in str(raised.value)
    info = adbench("data", "info", str(root), "--categories", "pushpins")
    assert info.returncode == 2 and one_line(info.stderr) == f"error: {raised.value}"


# --- read-only outputs: each command's own fix, no --resume where there is none ----------------------


def _read_only(*args: object, **kwargs: object) -> object:
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(kwargs.get("dir")))


def _main(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    from adbench.cli import main

    monkeypatch.setattr(sys, "argv", ["adbench", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code), one_line(capsys.readouterr().err)


def test_a_read_only_evaluate_out_says_to_choose_another_place(tiny_root, tmp_path, monkeypatch, capsys):
    maps_root = tmp_path / "maps"
    write_maps(tiny_root, maps_root, "pin")
    out = tmp_path / "m.csv"
    monkeypatch.setattr(tempfile, "mkstemp", _read_only)
    code, line = _main(
        monkeypatch, capsys, "evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(maps_root),
        "--categories", "pin", "--out", str(out),
    )  # fmt: skip
    assert code == 2
    assert line == (
        f"error: {out}: not written, read-only file system; choose a place on a writable disk, "
        "then run the command again"
    ), "no --resume (evaluate has none) and no previous version (there was none)"


def test_a_read_only_synth_out_says_to_choose_another_place(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "mkdtemp", _read_only)
    code, line = _main(monkeypatch, capsys, "data", "synth", "--out", str(tmp_path / "synthetic"))
    assert code == 2
    assert line == (
        f"error: {tmp_path}: read-only file system; choose a place on a writable disk, "
        "then run the command again"
    )


# --- report: the staging folder of a killed report is removed by the next one ------------------------


def _killed_report(out: Path) -> Path:
    """The staging folder a report killed (SIGKILL) while writing `out` left behind."""
    script = (
        "import os, signal, sys\nfrom pathlib import Path\nfrom adbench.atomic import held_staging_folder\n"
        "with held_staging_folder(Path(sys.argv[1]), 'report') as folder:\n"
        "    (folder / 'half.png').write_bytes(b'half a figure')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True)
    assert killed.returncode == -9, killed.stderr
    [left] = out.parent.glob(".adbench-report-*")
    return left


def test_the_next_report_removes_a_killed_reports_staging_folder_and_nothing_else(one_cell_run, tmp_path):
    out = tmp_path / "reports" / "r.md"
    out.parent.mkdir()
    abandoned = _killed_report(out)
    live = out.parent / ".adbench-report-live"  # a report still writing: its lock is held
    live.mkdir()
    lock = open(live / STAGING_LOCK, "w")  # noqa: SIM115 - held across the report below
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / STAGING_LOCK).write_text("")
    (out.parent / ".adbench-report-link").symlink_to(elsewhere)  # never followed
    other_kind = out.parent / ".r.md-cache"
    other_kind.mkdir()
    (other_kind / STAGING_LOCK).write_text("")
    try:
        result = adbench("report", str(one_cell_run), "--out", str(out))
    finally:
        lock.close()
    assert result.returncode == 0, result.stderr
    assert out.is_file() and not abandoned.exists()
    assert live.is_dir() and (elsewhere / STAGING_LOCK).is_file() and other_kind.is_dir()
    assert sorted(p.name for p in out.parent.glob(".*")) == [
        ".adbench-report-link",
        ".adbench-report-live",
        ".r.md-cache",
    ]
