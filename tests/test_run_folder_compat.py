"""Run folders written by an earlier version load, resume, report and gate as they did then.

tests/fixtures/run-made-by-4dd029d is a smoke run (anogan at width 2 on weave and pin, seeds 0 and 1)
written by main at 4dd029d, before the run folder had a module of its own; report-made-by-4dd029d
holds what that version's `adbench report` and `adbench compare --update` wrote from it.
"""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import adbench, snapshot

FIXTURES = Path(__file__).parent / "fixtures"
RUN = FIXTURES / "run-made-by-4dd029d"
EXPECTED = FIXTURES / "report-made-by-4dd029d"


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    return Path(shutil.copytree(RUN, tmp_path / RUN.name))


def test_the_report_of_an_old_run_is_what_its_own_version_wrote(old_run: Path, tmp_path: Path):
    out = tmp_path / "report" / "report.md"
    out.parent.mkdir()
    result = adbench("report", str(old_run), "--out", str(out))
    assert result.returncode == 0, result.stderr
    for name in ("report.md", "report-tables.csv", "report-tables.tex"):
        assert (out.parent / name).read_text() == (EXPECTED / name).read_text(), name
    figures = {path.name for path in out.parent.glob("*.png")}
    assert figures == {
        "report-heatmap.png",
        "report-losses.png",
        "report-quality-vs-time.png",
        "report-roc.png",
        "report-samples-pin.png",
        "report-samples-weave.png",
    }


def test_the_gate_reads_an_old_run_as_its_own_version_did(old_run: Path, tmp_path: Path):
    baseline = tmp_path / "baseline.json"
    assert adbench("compare", str(old_run), "--baseline", str(baseline), "--update").returncode == 0
    # written as one baseline of format 2 (one per CPU vendor; an old run records none), the same content
    old_format = json.loads((EXPECTED / "baseline.json").read_text())
    one = {key: value for key, value in old_format.items() if key != "format"}
    assert json.loads(baseline.read_text()) == {"format": 2, "baselines": [one]}
    result = adbench("compare", str(old_run), "--baseline", str(EXPECTED / "baseline.json"), "--exact")
    assert result.returncode == 0, result.stdout + result.stderr


def test_resuming_a_finished_old_run_keeps_every_cell_and_changes_no_result(old_run: Path):
    cells_before = snapshot(old_run / "cells")
    results_before = pd.read_parquet(old_run / "results.parquet")
    manifest_before = json.loads((old_run / "manifest.json").read_text())
    result = adbench("run", "--resume", str(old_run))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("kept") == 4
    assert snapshot(old_run / "cells") == cells_before  # nothing retrained or rescored
    pd.testing.assert_frame_equal(pd.read_parquet(old_run / "results.parquet"), results_before)
    manifest = json.loads((old_run / "manifest.json").read_text())
    assert manifest["cells"] == manifest_before["cells"]
    assert manifest["config"] == manifest_before["config"]
    assert manifest["status"] == "finished" and len(manifest["resumed_at"]) == 1
