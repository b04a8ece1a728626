"""adbench/run/runner.py: the grid and `adbench run --resume`. Resume trusts no stored path (checkpoints
are found in the run's own folder, wherever it is), refuses symbolic links and a damaged manifest, runs
at the run's own thread count and kernels, removes a killed writer's temporary files and keeps the
manifest on a full disk; a run that fails before its first cell leaves no folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adbench.machine.kernels import PORTABLE_VARIABLE, kernels_in_use
from adbench.run.folder import MANIFEST
from tests.helpers import (
    CHECKPOINT,
    adbench,
    copy_run,
    disk_full,
    edit_manifest,
    one_line,
    smoke_run,
    snapshot,
)


def _kept_everything(result: subprocess.CompletedProcess[str], run_dir: Path, checkpoint: bytes) -> None:
    assert result.returncode == 0, result.stderr
    assert "kept l2ae/washer/seed0" in result.stderr and "fit" not in result.stderr
    assert (run_dir / CHECKPOINT).read_bytes() == checkpoint, "a kept cell is not retrained"


def test_resume_from_another_folder_and_of_a_moved_run_keeps_every_cell(tiny_root, tmp_path):
    made_in = tmp_path / "project"
    made_in.mkdir()
    made = smoke_run(tiny_root, Path("runs"), "--categories", "washer", "--name", "r", cwd=made_in)
    assert made.returncode == 0
    run_dir = made_in / "runs" / "r"
    stored = json.loads((run_dir / MANIFEST).read_text())["cells"][0]["checkpoint"]
    assert stored == str(CHECKPOINT), "checkpoint paths are stored relative to the run folder"
    checkpoint = (run_dir / CHECKPOINT).read_bytes()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _kept_everything(adbench("run", "--resume", str(run_dir), cwd=elsewhere), run_dir, checkpoint)
    moved = made_in.rename(tmp_path / "moved") / "runs" / "r"
    _kept_everything(adbench("run", "--resume", str(moved), cwd=elsewhere), moved, checkpoint)
    _kept_everything(adbench("run", "--resume", ".", cwd=moved), moved, checkpoint)


def test_old_absolute_checkpoint_paths_map_onto_the_run_folder(one_cell_run, tmp_path):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    checkpoint = (run_dir / CHECKPOINT).read_bytes()
    edit_manifest(run_dir, lambda m: m["cells"][0].update(checkpoint=f"runs/one/{CHECKPOINT}"))
    _kept_everything(adbench("run", "--resume", str(run_dir), cwd=tmp_path), run_dir, checkpoint)
    assert json.loads((run_dir / MANIFEST).read_text())["cells"][0]["checkpoint"] == str(CHECKPOINT)


def test_a_cell_whose_checkpoint_is_in_another_folder_is_redone(one_cell_run, tmp_path):
    other = copy_run(one_cell_run, tmp_path / "other")
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    (run_dir / CHECKPOINT).unlink()
    edit_manifest(run_dir, lambda m: m["cells"][0].update(checkpoint=str(other / CHECKPOINT)))
    other_before = snapshot(other)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "kept" not in result.stderr and "done l2ae/washer/seed0" in result.stderr
    assert (run_dir / CHECKPOINT).is_file() and snapshot(other) == other_before


@pytest.mark.parametrize("link", ["cells/l2ae", "cells/l2ae/washer/seed0"])
def test_a_symlinked_cell_folder_leaves_its_target_untouched(one_cell_run, tmp_path, link):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    victim = tmp_path / "victim"
    shutil.move(run_dir / link, victim)  # the target holds what the link replaces, and more
    (victim / "precious.txt").write_text("someone else's file")
    (run_dir / link).symlink_to(victim, target_is_directory=True)
    edit_manifest(run_dir, lambda m: m.update(cells=[]))  # the cell is unfinished: resuming redoes it
    before = snapshot(victim)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert f"{run_dir / link}: a symbolic link inside a run folder" in one_line(result.stderr)
    assert snapshot(victim) == before


def _forget_the_cell(run_dir: Path, environment: dict[str, object]) -> None:
    """The run as if killed before its one cell was recorded, its environment's entries replaced."""
    manifest = json.loads((run_dir / MANIFEST).read_text())
    manifest["cells"], manifest["status"] = [], "running"
    manifest["environment"] |= environment
    (run_dir / MANIFEST).write_text(json.dumps(manifest))


def test_resume_computes_at_the_runs_own_thread_count(one_cell_run, tmp_path):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    other = 1 if torch.get_num_threads() > 1 else 2
    _forget_the_cell(run_dir, {"torch_threads": other})
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert [cell["torch_threads"] for cell in manifest["cells"]] == [other]
    assert manifest["environment"]["torch_threads"] == other


def test_resume_with_other_kernels_than_the_run_is_one_line_and_changes_nothing(one_cell_run, tmp_path):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    other = "native" if kernels_in_use() == "portable" else "portable"
    _forget_the_cell(run_dir, {"kernels": other})
    before = snapshot(run_dir)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(
        f"error: {run_dir / MANIFEST}: the run computed with {other} kernels, this process with "
        f"{kernels_in_use()}; resume it with {PORTABLE_VARIABLE}"
    )
    assert snapshot(run_dir) == before


def test_resume_removes_a_killed_writers_temporary_files(one_cell_run, tmp_path):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    stale = [run_dir / ".results.csv.k2j3.tmp", run_dir / CHECKPOINT.parent / ".scores.csv.x8a.tmp"]
    for path in stale:
        path.write_text("half a file")
    assert adbench("run", "--resume", str(run_dir)).returncode == 0
    assert not any(path.exists() for path in stale)


def test_a_run_that_fails_before_its_first_cell_removes_its_folder(tiny_root, tmp_path, monkeypatch):
    from adbench.errors import AdbenchError
    from adbench.run.config import RunConfig
    from adbench.run.runner import run
    from adbench_methods.autoencoder.detector import L2Autoencoder

    def failing_fit(self, images, budget, on_step=None):
        raise AdbenchError("the method refused this data")

    monkeypatch.setattr(L2Autoencoder, "fit", failing_fit)
    config = RunConfig(
        methods=("l2ae",), categories=("pin",), data=tiny_root, budget="smoke", out=tmp_path, run_name="r"
    )
    with pytest.raises(AdbenchError, match="refused this data"):
        run(config)
    assert not (tmp_path / "r").exists(), "an empty run folder would block its --name"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("cells"), "no list of cells"),
        (lambda m: m["cells"][0].update(seed="zero"), "cell 0 does not name a method, a category and a seed"),
        (lambda m: m["cells"][0].update(seed=-1), "cell 0 does not name"),
    ],
)
def test_a_damaged_manifest_is_one_line_and_left_as_it_is(one_cell_run, tmp_path, edit, message):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    edit_manifest(run_dir, edit)
    before = snapshot(run_dir)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert message in one_line(result.stderr)
    assert snapshot(run_dir) == before


def test_a_cell_entry_without_its_checkpoint_path_is_still_kept(one_cell_run, tmp_path):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    checkpoint = (run_dir / CHECKPOINT).read_bytes()
    edit_manifest(run_dir, lambda m: m["cells"][0].pop("checkpoint"))
    _kept_everything(adbench("run", "--resume", str(run_dir)), run_dir, checkpoint)


def test_resume_on_a_full_disk_is_one_line_and_keeps_the_manifest(
    one_cell_run, tmp_path, monkeypatch, capsys
):
    from adbench.cli import main

    run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "one"))
    assert json.loads((run_dir / MANIFEST).read_text())["status"] == "finished"
    before = snapshot(run_dir)

    def fsync(descriptor: int) -> None:
        raise disk_full("")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(sys, "argv", ["adbench", "run", "--resume", str(run_dir)])
    with pytest.raises(SystemExit) as exited:
        main()
    monkeypatch.undo()
    assert exited.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert f"{run_dir / MANIFEST}: not written, no space left on device" in line, line
    assert snapshot(run_dir) == before
