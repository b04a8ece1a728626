"""Silent wrong input made a clear refusal or a documented conversion, and messages that name the right
fix: float images, parameter ranges, --kinds, baselines, map files, MVTec LOCO masks in `data info`,
read-only outputs and the staging folder of a killed report (issue #28, items 5 and 6)."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image
from safetensors.torch import save_file

from adbench.atomic import STAGING_LOCK
from adbench.data.cache import describe, load_category, load_native_masks
from adbench.data.formats import read_dataset
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import CategorySpec, InputSpec
from adbench.errors import AdbenchError
from adbench.evaluation import external_maps
from adbench.evaluation.external_maps import write_maps as export_maps
from adbench_methods.autoencoder.detector import L2Autoencoder
from tests.helpers import adbench, one_line
from tests.layouts import LOCO_CONFIG, build_mvtec_loco
from tests.test_evaluate import write_maps
from tests.test_gate import _run as hand_made_run

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


# --- integer images: scaled from the range their file states, never from their pixels ---------------


def _replace_train_image(root: Path, suffix: str, write: Callable[[Path, np.ndarray], None]) -> Path:
    """TRAIN_IMAGE replaced by a file of `suffix` that `write` fills with its values × 257 (16 bits)."""
    png = root / TRAIN_IMAGE
    values = np.asarray(Image.open(png), dtype=np.int64) * 257
    png.unlink()
    path = png.with_suffix(suffix)
    write(path, values)
    return path


def test_a_dark_16_bit_tiff_loads_as_its_8_bit_original_not_rescaled_by_its_maximum(dataset_copy):
    original = np.asarray(Image.open(dataset_copy / TRAIN_IMAGE))
    path = _replace_train_image(
        dataset_copy, ".tiff", lambda p, v: tifffile.imwrite(p, (v // 16).astype(np.uint16))
    )
    files = read_category(dataset_copy, "pin", "object")
    loaded = (
        load_category(files, describe(files), InputSpec(SIZE, 1)).train[files.train.index(path)].numpy()[0]
    )
    np.testing.assert_allclose(loaded, original / 16, atol=1)  # 4 bits darker, as the file says


@pytest.mark.parametrize(
    ("dtype", "problem"),
    [
        (np.int32, "a 32-bit signed integer image"),
        (np.uint32, "a 32-bit integer image"),
        (np.int16, "a 16-bit signed integer image"),
    ],
)
def test_an_integer_image_of_no_stated_range_stops_run_and_data_info_with_the_same_line(
    dataset_copy, dtype, problem
):
    path = _replace_train_image(
        dataset_copy, ".tiff", lambda p, v: tifffile.imwrite(p, (v // 257).astype(dtype))
    )
    assert Image.open(path).mode == "I", "the mode whose range Pillow does not say"
    files = read_category(dataset_copy, "pin", "object")
    with pytest.raises(AdbenchError) as raised:
        load_category(files, describe(files), InputSpec(SIZE, 1))
    assert str(raised.value) == (
        f"{path}: {problem}, whose range adbench cannot read from the file; "
        "save it as an 8- or 16-bit (unsigned) image"
    )
    info = adbench("data", "info", str(dataset_copy), "--categories", "pin")
    assert info.returncode == 2
    assert one_line(info.stderr) == f"error: {raised.value}"


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


def test_a_kind_for_a_category_the_dataset_lacks_is_one_line_not_ignored(tiny_root):
    for command in (["data", "info", str(tiny_root)], ["run", "--methods", "l2ae", "--categories", "pin",
                    "--data", str(tiny_root), "--dry-run"]):  # fmt: skip
        result = adbench(*command, "--kinds", "pinn=object")
        assert result.returncode == 2
        assert one_line(result.stderr).startswith(
            f"error: --kinds pinn=object: unknown category 'pinn' in {tiny_root}. Did you mean 'pin'?"
        )


def test_a_bad_kind_in_a_grid_file_names_the_file_and_its_key(tiny_root, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'methods = ["l2ae"]\ncategories = ["pin"]\ndata = "{tiny_root}"\n[kinds]\npin = "bogus"\n'
    )
    result = adbench("run", "--config", str(grid), "--dry-run")
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        f"error: {grid}: kinds = {{'pin': 'bogus'}} has the wrong type; "
        'expected a table of category = "texture" or "object"'
    )


# --- baselines --------------------------------------------------------------------------------------


def _baseline(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A baseline written by --update, then its one baseline (of one CPU vendor) edited by hand."""
    path = tmp_path / "smoke.json"
    update = adbench("compare", str(hand_made_run(tmp_path, "base")), "--baseline", str(path), "--update")
    assert update.returncode == 0, update.stderr
    document = json.loads(path.read_text())
    edit(document["baselines"][0])
    path.write_text(json.dumps(document))
    return path


def test_a_baseline_whose_protocol_is_not_a_table_is_one_line(tmp_path):
    baseline = _baseline(tmp_path, lambda document: document.update(protocol="smoke"))
    result = adbench(
        "compare", str(hand_made_run(tmp_path, "other", budget="default")), "--baseline", str(baseline)
    )
    assert result.returncode == 2, "not compared without the protocol check"
    assert one_line(result.stderr) == (
        f'error: {baseline}: not an adbench baseline (baseline 0: protocol is "smoke", not an object); '
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
        f"error: {baseline}: not an adbench baseline (baseline 0: entry 0: {problem}"
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


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (lambda mask: np.zeros_like(mask), "marks no pixel; remove the empty mask file"),
        (lambda mask: np.stack([mask, mask * 0, mask * 0], axis=-1), "a colour mask; each defect's mask is"),
    ],
    ids=["empty", "colour"],
)
def test_an_empty_or_colour_loco_mask_is_named_for_what_it_is_by_run_and_data_info(
    tiny_root, tmp_path, content, problem
):
    root = build_mvtec_loco(tiny_root, tmp_path / "loco").root
    mask_path = next((root / "pushpins" / "ground_truth").rglob("000.png"))
    Image.fromarray(content(np.asarray(Image.open(mask_path)))).save(mask_path)
    files = read_dataset(root, ["pushpins"], {}).files["pushpins"]
    with pytest.raises(AdbenchError) as raised:
        load_native_masks(files)
    assert str(raised.value).startswith(f"{mask_path}: {problem}"), "not 'its defect pixels are 0'"
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


def _never_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("called")


def test_a_read_only_evaluate_out_says_to_choose_another_place(tiny_root, tmp_path, monkeypatch, capsys):
    maps_root = tmp_path / "maps"
    write_maps(tiny_root, maps_root, "pin")
    out = tmp_path / "m.csv"
    monkeypatch.setattr(tempfile, "mkstemp", _read_only)
    monkeypatch.setattr(external_maps, "evaluate_maps", _never_called)  # refused before the work, not after
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


def _killed_writer(out: Path, kind: str = "report") -> Path:
    """The staging folder a writer of `kind` killed (SIGKILL) while writing `out` left behind."""
    script = (
        "import os, signal, sys\nfrom pathlib import Path\nfrom adbench.atomic import held_staging_folder\n"
        "with held_staging_folder(Path(sys.argv[1]), sys.argv[2]) as folder:\n"
        "    (folder / 'half.png').write_bytes(b'half a file')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(out), kind], capture_output=True)
    assert killed.returncode == -9, killed.stderr
    [left] = out.parent.glob(f".adbench-{kind}-*")
    return left


def test_the_next_report_removes_a_killed_reports_staging_folder_and_nothing_else(one_cell_run, tmp_path):
    out = tmp_path / "reports" / "r.md"
    out.parent.mkdir()
    abandoned = _killed_writer(out)
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


def test_a_killed_synth_cache_build_or_map_export_leaves_nothing_the_next_one_keeps(
    tiny_root, tmp_path, monkeypatch
):
    """Every writer that builds a folder beside its target (data synth, a cache entry, --save-maps) takes
    its staging folder the way report does, so a killed one's is removed by the next of its kind."""
    out = tmp_path / "data" / "synthetic"
    out.parent.mkdir()
    abandoned = _killed_writer(out, "synth")
    assert adbench("data", "synth", "--out", str(out)).returncode == 0
    assert sorted(path.name for path in out.parent.iterdir()) == ["synthetic"]

    monkeypatch.setenv("ADBENCH_CACHE_DIR", str(tmp_path / "cache"))
    files = read_dataset(tiny_root, ["pin"], {}).files["pin"]
    category = describe(files)
    load_category(files, category, InputSpec(16, 1))
    [entry] = (tmp_path / "cache").glob("*/pin-*[!n]")  # the tensors' entry, not the spec's .json
    shutil.rmtree(entry)
    abandoned = _killed_writer(entry, "cache")
    load_category(files, category, InputSpec(16, 1))
    assert entry.is_dir() and not abandoned.exists()
    assert not [path for path in entry.parent.iterdir() if path.name.startswith(".")]

    maps_root = tmp_path / "maps"
    abandoned = _killed_writer(maps_root, "maps")
    export_maps(maps_root, files, np.zeros((len(files.test), 8, 8), np.float32))
    assert maps_root.is_dir() and not abandoned.exists()
