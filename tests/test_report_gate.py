"""adbench/report/gate.py: the regression gate (`adbench compare`) never passes on nothing. Baselines
without usable entries, a folder or a non-UTF-8 file are one line, and a run without quality metrics
writes no baseline."""

from __future__ import annotations

import json
import math

import pytest

from adbench.errors import AdbenchError
from adbench.report.gate import read_baselines
from adbench.run.results import read_results, write_results
from tests.helpers import adbench, assert_one_line_naming
from tests.test_gate import _run


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
        read_baselines(path)
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
    assert_one_line_naming(adbench("compare", str(_run(tmp_path, "run")), "--baseline", str(path)), path)


def test_a_run_without_quality_metrics_writes_no_baseline(tmp_path):
    run_dir = _run(tmp_path, "timed")  # as `adbench time` leaves it: timings only
    results = read_results(run_dir)
    write_results(run_dir, results[results.metric == "infer_ms_per_image"])
    path = tmp_path / "baseline.json"
    assert_one_line_naming(adbench("compare", str(run_dir), "--baseline", str(path), "--update"), path)
    assert not path.exists()
