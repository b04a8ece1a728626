"""Timings that know the machine: the median's interval, contention, and where contended cells are said."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from adbench.machine import timing
from adbench.machine.timing import (
    LATENCY_MEDIAN,
    MachineLoad,
    available_cores,
    contended_ratio_note,
    measured,
    median_interval,
)
from tests.helpers import adbench


def test_median_interval_is_the_widest_pair_of_order_statistics_still_covering_95_percent():
    values = np.arange(10.0, 0.0, -1.0)  # unsorted on purpose: 10, 9, ..., 1
    # n = 10: P(Binomial(10, 1/2) <= 1) = 11/1024, so (x(2), x(9)) covers 1 - 22/1024 = 97.9 %, while
    # (x(3), x(8)) would cover only 1 - 2 * 56/1024 = 89 %.
    assert median_interval(values) == (2.0, 9.0)
    assert median_interval(np.arange(1.0, 7.0)) == (1.0, 6.0)  # n = 6: 1 - 2/64 = 96.9 %
    assert median_interval(np.arange(1.0, 6.0)) is None  # n = 5: even (x(1), x(5)) covers only 93.8 %


def test_median_interval_covers_the_true_median_as_often_as_its_binomial_coverage_says():
    rng = np.random.default_rng(0)
    trials = 4000
    samples = rng.exponential(1.0, (trials, 10))
    true_median = np.log(2.0)
    covered = sum(low <= true_median <= high for low, high in map(median_interval, samples))
    expected = 1 - 22 / 1024
    assert abs(covered / trials - expected) < 4 * np.sqrt(expected * (1 - expected) / trials)


def _load(**changes: object) -> MachineLoad:
    quiet = {
        "wall_seconds": 1.0,
        "cpu_seconds": 2.0,
        "waited_seconds": 0.01,
        "threads": 2,
        "load_before": 1.9,
        "load_after": 2.1,
        "cores": 2,
        "device_type": "cpu",
    }
    return MachineLoad(**(quiet | changes))  # type: ignore[arg-type]


def test_contention_rules():
    assert _load().contention is None
    # A few milliseconds' measurement that waited 3 ms (one wake-up of another thread) is no contention.
    assert _load(wall_seconds=0.004, cpu_seconds=0.008, waited_seconds=0.003).contention is None
    assert "waited for a core 60%" in _load(waited_seconds=1.2).contention
    # Where Linux reports waiting, a load average still high from a process that already ended is no
    # reason: waiting decides.
    assert _load(load_before=4.0).contention is None
    # Without that report: load above the cores, or CPU time below half of wall x threads (CPU only).
    assert _load(waited_seconds=None).contention is None
    assert _load(waited_seconds=None, load_after=3.0).contention == "load 3.0 on 2 cores"
    assert _load(waited_seconds=None, cpu_seconds=0.8).contention == "CPU time 0.80× wall time on 2 threads"
    assert _load(waited_seconds=None, cpu_seconds=0.2, device_type="cuda").contention is None


def _work() -> float:
    a = torch.rand(256, 256)
    started = time.perf_counter()
    while time.perf_counter() - started < 0.5:
        a = torch.tanh(a @ a)
    return float(a.sum())


@pytest.mark.machine_load
def test_a_timing_taken_beside_busy_processes_is_marked_contended():
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * available_cores())
    ]
    try:
        time.sleep(0.3)
        _, load = measured(torch.device("cpu"), _work)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert load.contention is not None, load
    assert load.threads == torch.get_num_threads() and load.wall_seconds >= 0.5
    assert load.cpu_seconds < load.wall_seconds * load.threads


@pytest.fixture
def contended_machine(monkeypatch):
    """Every measurement's threads wait for a core ten seconds more than they did before it."""
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr(timing, "_waited_for_core", lambda: float(next(clock)))


def test_contended_cells_are_said_in_their_line_manifest_and_report_and_left_out_of_the_ratio(
    tiny_root, tmp_path, contended_machine
):
    result = adbench(
        "time",
        *("--methods", "l2ae,anogan", "--categories", "pin", "--budget", "smoke", "--repeats", "6"),
        *("--data", str(tiny_root), "--out", str(tmp_path), "--name", "busy"),
    )
    assert result.returncode == 0, result.stderr
    assert "timed on a contended machine: fit, latency, throughput" in " ".join(result.stderr.split())
    assert (
        "no iterative/single-pass ratio is given, since every cell one needs was among them: time again on a "
        "quiet machine, or pass --contended-timings to count them" in " ".join(result.stderr.split())
    ), "the words say why no ratio follows (the cells were contended), not a garbled 'left out of (...) the'"
    assert "takes" not in result.stdout, "a contended latency makes no iterative/single-pass ratio"
    manifest = json.loads((tmp_path / "busy" / "manifest.json").read_text())
    for cell in manifest["cells"]:
        latency = cell["timing"]["measurements"]["latency"]
        assert latency["contended"].startswith("threads waited for a core")
        assert latency["threads"] == torch.get_num_threads() and latency["cores"] == available_cores()
        assert {"load_before", "load_after", "cpu_seconds", "wall_seconds"} <= latency.keys()
        assert any(w.startswith("timing: latency timed on a contended machine") for w in cell["warnings"])
        low, high = cell["timing"]["latency_median_interval_ms"]
        assert low <= high and cell["timing"]["latency_repeats"] == 6

    quiet_ratio = "- pin: anogan takes"
    report = tmp_path / "r.md"
    assert adbench("report", str(tmp_path / "busy"), "--out", str(report)).returncode == 0
    text = report.read_text()
    assert "⏱ Timed on a contended machine" in text and "no iterative/single-pass ratio is given" in text
    timing = text.split("## Timing", 1)[1]
    rows = [
        line for line in timing.splitlines() if line.startswith(("| l2ae | single-pass", "| anogan | iter"))
    ]
    assert len(rows) >= 4, "two methods in each timing table"
    values = [cell.strip() for row in rows for cell in row.strip().strip("|").split("|")[2:]]
    assert all(value == "—" or value.endswith("⏱") for value in values), "every value marked contended"
    assert not any("**" in value for value in values), "none bold as the best"
    assert "the ratios below" not in text, "none follow"
    assert "- anogan/pin/seed0: fit: threads waited" in text and quiet_ratio not in text
    counted = tmp_path / "counted.md"
    assert (
        adbench("report", str(tmp_path / "busy"), "--out", str(counted), "--contended-timings").returncode
        == 0
    )
    assert quiet_ratio in counted.read_text()
    assert "they are counted in the iterative/single-pass ratios (--contended-timings)" in counted.read_text()


def test_the_contended_note_says_what_the_ratios_do_with_the_contended_cells():
    rows = [
        {"method": method, "category": category, "seed": 0, "metric": LATENCY_MEDIAN, "value": value}
        for method, value in (("l2ae", 2.0), ("anogan", 200.0))
        for category in ("pin", "sand")
    ]
    results = pd.DataFrame(rows)
    kinds = {"l2ae": "single-pass", "anogan": "iterative"}
    one = {("anogan", "pin", 0)}
    both = one | {("anogan", "sand", 0)}
    assert contended_ratio_note(results, kinds, one, counted=False).startswith(
        "the iterative/single-pass ratios leave them out"
    )
    assert contended_ratio_note(results, kinds, both, counted=False).startswith(
        "no iterative/single-pass ratio"
    )
    assert contended_ratio_note(results, kinds, both, counted=True).startswith("they are counted in")
    assert contended_ratio_note(results, {"l2ae": "single-pass"}, both, counted=False) == "", "no pair"
