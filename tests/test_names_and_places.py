"""#28 items 1-3: a name read from a data file never becomes a path outside its folder, a dataset's files
stay inside it (links included, each image once), a file that disappears mid-run costs no finished cell,
and a damaged cache entry is rebuilt."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from adbench.data.cache import cache_root, describe, load_category
from adbench.data.formats import read_dataset
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import InputSpec
from adbench.errors import AdbenchError
from adbench.names import checked_name, inside, name_problem
from adbench.run import runner
from adbench.run.cell import clear_cell_folder
from adbench.run.results import RESULTS_CSV, RESULTS_PARQUET
from tests.helpers import adbench, one_line
from tests.layouts import build_visa


@pytest.fixture
def visa(tiny_root: Path, tmp_path: Path) -> Path:
    return build_visa(tiny_root, tmp_path / "visa").root


def _edit_split(root: Path, old: str, new: str) -> None:
    split = root / "split_csv" / "1cls.csv"
    text = split.read_text()
    assert old in text
    split.write_text(text.replace(old, new))


def _files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*")}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("..", "'.' and '..'"),
        ("../../../../tmp/x", "separator"),
        ("pin/.", "separator"),
        ("a\\b", "separator"),
        ("a\0b", "NUL"),
        ("tab\there", "unprintable"),
        ("line\nbreak", "unprintable"),
        ("\udcff", "unprintable"),  # a non-UTF-8 byte as os.fsdecode gives it
        ("n" * 256, "256 bytes"),
    ],
)
def test_names_that_cannot_be_one_path_component_are_refused(name, problem):
    assert problem in (name_problem(name) or "")
    with pytest.raises(AdbenchError) as raised:
        checked_name(name, "category", "split.csv: line 3")
    assert str(raised.value).startswith("split.csv: line 3: category ")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("name", ["pin", "metal_nut", "01", "Ünïcode", "with space", "n" * 255])
def test_plain_names_pass(name):
    assert checked_name(name, "category", "here") == name


@pytest.mark.parametrize("object_name", ["../../../../tmp/escaped", "candle/.", "..", "a\x1bb"])
def test_a_split_file_object_that_is_not_a_plain_name_is_one_line_and_writes_nothing(
    visa, tmp_path, object_name
):
    _edit_split(visa, "\ncandle,", f"\n{object_name},")
    outside = tmp_path / "escaped"
    before = _files_under(tmp_path)
    for command in (
        ("data", "info", str(visa)),
        ("run", "--methods", "l2ae", "--budget", "smoke", "--all-categories"),
    ):
        extra = () if command[0] == "data" else ("--data", str(visa), "--out", str(tmp_path / "runs"))
        result = adbench(*command, *extra)
        assert result.returncode == 2
        line = one_line(result.stderr)
        assert "1cls.csv: line 2: object" in line and "cannot be a file or folder name" in line
    assert _files_under(tmp_path) == before and not outside.exists()


def test_categories_that_share_a_folder_on_a_case_insensitive_disk_are_refused(dataset_copy, tmp_path):
    shutil.copytree(dataset_copy / "pin", dataset_copy / "Pin")
    result = adbench("run", "--methods", "l2ae", "--budget", "smoke", "--all-categories",
                     "--data", str(dataset_copy), "--out", str(tmp_path / "runs"))  # fmt: skip
    assert result.returncode == 2
    assert "the categories 'Pin' and 'pin' would share one folder" in one_line(result.stderr)
    assert not (tmp_path / "runs").exists()


def test_a_defect_folder_with_an_unprintable_name_is_one_line(dataset_copy):
    defect = next(p for p in (dataset_copy / "pin" / "test").iterdir() if p.name != "good")
    (dataset_copy / "pin" / "ground_truth" / defect.name).rename(
        dataset_copy / "pin" / "ground_truth" / "bent\x07"
    )
    defect.rename(defect.with_name("bent\x07"))
    result = adbench("data", "info", str(dataset_copy), "--categories", "pin")
    assert result.returncode == 2
    assert "defect type 'bent\\x07' cannot be a file or folder name (it holds an unprintable character)" in (
        one_line(result.stderr)
    )


def test_a_training_image_whose_name_is_not_utf_8_is_one_line(dataset_copy):
    image = sorted((dataset_copy / "pin" / "train" / "good").glob("*.png"))[0]
    os.rename(bytes(image), bytes(image.parent) + b"/\xff.png")
    result = adbench("data", "info", str(dataset_copy), "--categories", "pin")
    assert result.returncode == 2
    assert "good: file name '\\udcff.png' cannot be a file or folder name" in one_line(result.stderr)


def test_a_manifest_cell_named_outside_the_run_is_refused_and_nothing_is_deleted(one_cell_run, tmp_path):
    run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "run"))
    victim = tmp_path / "victim" / "seed0"
    victim.mkdir(parents=True)
    (victim / "precious.txt").write_text("keep me")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["cells"][0]["category"] = "../../../victim"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert "cell 0: category '../../../victim' cannot be a file or folder name" in one_line(result.stderr)
    assert (victim / "precious.txt").read_text() == "keep me"


def test_a_results_table_naming_a_category_outside_the_run_is_refused_by_report(one_cell_run, tmp_path):
    run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "run"))
    frame = pd.read_parquet(run_dir / RESULTS_PARQUET)
    frame["category"] = "../../escaped"
    frame.to_parquet(run_dir / RESULTS_PARQUET, index=False)
    frame.to_csv(run_dir / RESULTS_CSV, index=False)
    before = _files_under(tmp_path)
    result = adbench("report", str(run_dir))
    assert result.returncode == 2
    assert "column category: category '../../escaped' cannot be a file or folder name" in one_line(
        result.stderr
    )
    assert _files_under(tmp_path) == before


def test_cell_folders_and_cache_entries_never_land_outside_their_root(tmp_path, monkeypatch):
    """The last line of defence, whatever name slipped through: nothing made, nothing deleted."""
    run_dir = tmp_path / "run"
    victim = tmp_path / "victim" / "seed0"
    victim.mkdir(parents=True)
    (victim / "precious.txt").write_text("keep me")
    with pytest.raises(AdbenchError, match="outside"):
        clear_cell_folder(run_dir, Path("cells") / "l2ae" / ".." / ".." / ".." / "victim" / "seed0")
    assert (victim / "precious.txt").exists() and not run_dir.exists()
    with pytest.raises(AdbenchError, match="outside"):
        inside(tmp_path / "cache", tmp_path / "cache" / "tensors" / ".." / ".." / "victim")
    with pytest.raises(AdbenchError, match="outside"):
        inside(tmp_path / "cache", tmp_path / "cache")  # the root itself is not an entry
    (tmp_path / "run" / "cells").mkdir(parents=True)
    (tmp_path / "run" / "cells" / "l2ae").symlink_to(tmp_path / "victim")
    with pytest.raises(AdbenchError, match="symbolic link"):
        clear_cell_folder(run_dir, Path("cells") / "l2ae" / "x" / "seed0")
    assert (victim / "precious.txt").exists()


# --- item 2: a dataset's files stay inside it, each image once -------------------------------------


def test_a_split_row_reaching_another_dataset_through_a_link_is_refused(visa, tmp_path, tiny_root):
    elsewhere = next((tiny_root / "washer" / "train" / "good").glob("*.png"))
    link = visa / "candle" / "Data" / "Images" / "Normal" / "linked.png"
    link.symlink_to(elsewhere)
    _edit_split(visa, "candle/Data/Images/Normal/0000.JPG", "candle/Data/Images/Normal/linked.png")
    result = adbench("data", "info", str(visa))
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert f"linked.png: leads to {elsewhere}, outside the dataset" in line


def test_a_folder_link_that_leaves_the_root_is_refused(dataset_copy, tmp_path):
    outside = Path(shutil.move(dataset_copy / "pin" / "ground_truth", tmp_path / "masks_elsewhere"))
    (dataset_copy / "pin" / "ground_truth").symlink_to(outside)
    with pytest.raises(AdbenchError, match="outside the dataset"):
        read_dataset(dataset_copy, ["pin"], {})


def test_links_inside_the_root_are_read(dataset_copy):
    shared = Path(shutil.move(dataset_copy / "pin" / "ground_truth", dataset_copy / ".shared_masks"))
    (dataset_copy / "pin" / "ground_truth").symlink_to(shared)
    files = read_dataset(dataset_copy, ["pin"], {}).files["pin"]
    assert all(mask.resolve().is_relative_to(shared.resolve()) for item in files.test for mask in item.masks)


def test_a_split_file_listing_an_image_twice_is_one_line(visa):
    _edit_split(visa, "candle,test,normal,", "candle,train,normal,candle/Data/Images/Normal/0000.JPG,\n"
                "candle,test,normal,")  # fmt: skip
    result = adbench("data", "info", str(visa))
    assert result.returncode == 2
    assert "both list candle/Data/Images/Normal/0000.JPG" in one_line(result.stderr)


def test_a_training_image_linked_into_the_test_set_is_refused(dataset_copy):
    test_image = sorted((dataset_copy / "pin" / "test" / "good").glob("*.png"))[0]
    (dataset_copy / "pin" / "train" / "good" / "zz_leak.png").symlink_to(test_image)
    with pytest.raises(AdbenchError, match=re.escape(f"{test_image}: the same image as")):
        read_dataset(dataset_copy, ["pin"], {})


# --- item 3: data that changes while a run goes on --------------------------------------------------


GRID = ("--methods", "l2ae", "--budget", "smoke", "--categories", "pin,washer", "--repeats", "1")


def _error_after_a_change_between_cells(monkeypatch, data: Path, out: Path, change) -> str:
    """Run GRID on `data` into out/r, calling `change()` once, after the first cell; the error line."""
    run_cell = runner.run_cell
    changed = []

    def run_then_change(task, progress):
        outcome = run_cell(task, progress)
        if not changed:
            change()
            changed.append(task)
        return outcome

    monkeypatch.setattr(runner, "run_cell", run_then_change)
    result = adbench("run", *GRID, "--data", str(data), "--out", str(out), "--name", "r")
    monkeypatch.setattr(runner, "run_cell", run_cell)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert set(pd.read_csv(out / "r" / RESULTS_CSV)["category"]) == {"pin"}, "the finished cell's rows"
    assert (out / "r" / "cells" / "l2ae" / "pin" / "seed0" / "checkpoint.safetensors").is_file()
    manifest = json.loads((out / "r" / "manifest.json").read_text())
    assert manifest["status"].startswith("failed: ") and "Traceback" not in manifest["status"]
    return line


def test_a_mask_folder_deleted_mid_run_keeps_the_finished_cells_and_resumes(
    dataset_copy, tmp_path, monkeypatch
):
    moved = tmp_path / "moved_ground_truth"
    line = _error_after_a_change_between_cells(
        monkeypatch, dataset_copy, tmp_path / "runs",
        lambda: shutil.move(dataset_copy / "washer" / "ground_truth", moved),
    )  # fmt: skip
    run_dir = tmp_path / "runs" / "r"
    assert "washer/ground_truth/" in line and "the dataset changed after adbench checked it" in line
    assert f"adbench run --resume {run_dir}" in line

    shutil.move(moved, dataset_copy / "washer" / "ground_truth")
    resumed = adbench("run", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert set(pd.read_csv(run_dir / RESULTS_CSV)["category"]) == {"pin", "washer"}


def test_an_image_edited_mid_run_stops_the_run_before_its_cell_measures_other_data(
    dataset_copy, tmp_path, monkeypatch
):
    image = sorted((dataset_copy / "washer" / "train" / "good").glob("*.png"))[0]

    def edit() -> None:
        Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
        os.utime(image, ns=(0, 0))

    line = _error_after_a_change_between_cells(monkeypatch, dataset_copy, tmp_path / "runs", edit)
    assert "files of washer were added, replaced or edited after the run checked the dataset" in line


@pytest.mark.parametrize("failing_cell", [1, 2])
def test_a_full_disk_mid_run_says_whether_there_is_a_run_to_resume(
    tiny_root, tmp_path, monkeypatch, failing_cell
):
    run_cell, calls = runner.run_cell, []

    def full_disk_at_the_failing_cell(task, progress):
        calls.append(task)
        if len(calls) == failing_cell:
            raise OSError(errno.ENOSPC, "No space left on device", str(task.run_dir / "cells" / "x.npz"))
        return run_cell(task, progress)

    monkeypatch.setattr(runner, "run_cell", full_disk_at_the_failing_cell)
    result = adbench("run", *GRID, "--data", str(tiny_root), "--out", str(tmp_path), "--name", "r")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "x.npz: No space left on device; free some space, then run the command again" in line
    if failing_cell == 1:
        assert "no cell had finished, so the run folder is removed" in line and "--resume" not in line
        assert not (tmp_path / "r").exists()
    else:
        assert f"`adbench run --resume {tmp_path / 'r'}` goes on from it" in line
        assert json.loads((tmp_path / "r" / "manifest.json").read_text())["status"].startswith("failed: ")


# --- a damaged cache entry is rebuilt -------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: (entry / "arrays.npz").write_bytes((entry / "arrays.npz").read_bytes()[:100]),
        lambda entry: (entry / "index.json").write_text("{not json"),
        lambda entry: (entry / "index.json").unlink(),
        lambda entry: (entry / "arrays.npz").unlink(),
        lambda entry: np.savez(entry / "arrays.npz", train=np.zeros(1)),  # arrays missing
    ],
)
def test_a_damaged_cache_entry_is_rebuilt(tiny_root, tmp_path, monkeypatch, damage):
    monkeypatch.setenv("ADBENCH_CACHE_DIR", str(tmp_path / "cache"))
    files = read_category(tiny_root, "pin", "object")
    category = describe(files)
    spec = InputSpec(image_size=32, channels=category.channels)
    intact = load_category(files, category, spec)
    (entry,) = (cache_root() / "tensors").iterdir()
    damage(entry)
    category_entry = next((cache_root() / "categories").iterdir())
    category_entry.write_text('{"channels": "many"')
    assert describe(files) == category
    rebuilt = load_category(files, category, spec)
    assert torch.equal(rebuilt.test, intact.test) and torch.equal(rebuilt.test_masks, intact.test_masks)
    assert rebuilt.test_names == intact.test_names
    assert sorted(os.listdir(entry)) == ["arrays.npz", "index.json"]
