"""adbench/run/results.py: the results table. A full disk while writing it keeps the previous table
byte for byte, other write errors keep their traceback, and a table damaged by hand stops a resume and
is left as it is."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from adbench.errors import AdbenchError
from adbench.run.results import RESULTS_CSV, RESULTS_PARQUET, read_results, results_frame, write_results
from tests.helpers import adbench, disk_full, one_line, snapshot


def _frame(values: list[float]) -> pd.DataFrame:
    rows = [
        {
            "run_id": "r",
            "method": "l2ae",
            "category": f"c{i}",
            "category_kind": "object",
            "seed": 0,
            "metric": "image_auroc",
            "value": value,
        }
        for i, value in enumerate(values)
    ]
    return results_frame(rows)


def _writes_half_then_fills_the_disk(original):
    def write(frame, path, *args, **kwargs):
        original(frame, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise disk_full(str(path))

    return write


@pytest.mark.parametrize("failing", ["parquet", "csv", "fsync"])
def test_full_disk_while_writing_results_keeps_the_previous_table(tmp_path, monkeypatch, failing):
    run_dir = tmp_path / "run"
    previous = _frame([0.5, 0.75])
    write_results(run_dir, previous)
    before = snapshot(run_dir)
    assert set(before) == {RESULTS_PARQUET, RESULTS_CSV}
    if failing == "parquet":
        monkeypatch.setattr(
            pd.DataFrame, "to_parquet", _writes_half_then_fills_the_disk(pd.DataFrame.to_parquet)
        )
    elif failing == "csv":
        monkeypatch.setattr(pd.DataFrame, "to_csv", _writes_half_then_fills_the_disk(pd.DataFrame.to_csv))
    else:

        def fsync(descriptor: int) -> None:
            raise disk_full("")

        monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(AdbenchError, match=r"results\.(parquet|csv): not written, no space left on device"):
        write_results(run_dir, _frame([0.1, 0.2, 0.3]))
    monkeypatch.undo()
    assert snapshot(run_dir) == before, "both files byte-identical, no temporary file left behind"
    pd.testing.assert_frame_equal(read_results(run_dir), previous)


def test_other_write_errors_keep_their_traceback(tmp_path, monkeypatch):
    """Only a full disk is the user's to fix; anything else stays an OSError (a bug to see in full)."""
    write_results(tmp_path, _frame([0.5]))
    before = snapshot(tmp_path)

    def fsync(descriptor: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as raised:
        write_results(tmp_path, _frame([0.1]))
    assert not isinstance(raised.value, AdbenchError) and raised.value.errno == errno.EIO
    monkeypatch.undo()
    assert snapshot(tmp_path) == before


def _garbage(path: Path) -> None:
    path.write_text("method,category,value\nl2ae,washer,0.93\n")  # a CSV pasted over the parquet


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-200])


def _column_dropped(path: Path) -> None:
    pd.read_parquet(path).drop(columns="value").to_parquet(path, index=False)


def _text_in_seed(path: Path) -> None:
    frame = pd.read_parquet(path)
    frame["seed"] = "zero"
    frame.to_parquet(path, index=False)


@pytest.mark.parametrize("damage", [_garbage, _truncated, _column_dropped, _text_in_seed])
def test_resume_with_a_damaged_results_table_stops_and_keeps_it(one_cell_run, tmp_path, damage):
    run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "one"))
    damage(run_dir / RESULTS_PARQUET)
    before = snapshot(run_dir)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line(result.stderr)
    assert f"{run_dir / RESULTS_PARQUET}:" in line and "changed outside adbench" in line, line
    assert snapshot(run_dir) == before, "the damaged table (and the rest of the run) must not be rewritten"
