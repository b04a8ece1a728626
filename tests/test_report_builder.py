"""adbench/report/builder.py: `adbench report` writes no file through a link and overwrites nothing,
leaving nothing behind when refused, and refuses a stray cell folder or a damaged scores file."""

from __future__ import annotations

import shutil

from tests.helpers import CHECKPOINT, adbench, copy_run, one_line


def test_report_writes_no_file_through_a_link_and_leaves_nothing_when_refused(one_cell_run, tmp_path):
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"someone else's picture")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "r-roc.png").symlink_to(victim)
    result = adbench("report", str(one_cell_run), "--out", str(reports / "r.md"))
    assert result.returncode == 2
    assert f"{reports / 'r-roc.png'}: already exists and is never overwritten" in one_line(result.stderr)
    assert victim.read_bytes() == b"someone else's picture"
    assert sorted(path.name for path in reports.iterdir()) == ["r-roc.png"], "nothing else is left behind"

    (reports / "r-roc.png").unlink()
    (reports / "r-heatmap.png").write_bytes(b"an older figure")
    assert adbench("report", str(one_cell_run), "--out", str(reports / "r.md")).returncode == 2
    assert (reports / "r-heatmap.png").read_bytes() == b"an older figure"
    assert sorted(path.name for path in reports.iterdir()) == ["r-heatmap.png"]


def test_report_refuses_a_stray_cell_folder_and_a_damaged_scores_file(one_cell_run, tmp_path):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    stray = run_dir / "cells" / "l2ae" / "washer" / "seedX"
    shutil.copytree(run_dir / CHECKPOINT.parent, stray)
    result = adbench("report", str(run_dir), "--out", str(tmp_path / "a.md"))
    assert result.returncode == 2 and f"{stray}: not a cell folder" in one_line(result.stderr)
    shutil.rmtree(stray)
    scores = run_dir / CHECKPOINT.parent / "scores.csv"
    for damaged in ("", "image,defect\nx,good\n"):
        scores.write_text(damaged)
        result = adbench("report", str(run_dir), "--out", str(tmp_path / "b.md"))
        assert result.returncode == 2 and f"{scores}:" in one_line(result.stderr)
        assert not (tmp_path / "b.md").exists()
