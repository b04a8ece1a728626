"""The README main job's stage times alone and beside one busy process per core (#31 item 1).

Each stage's slowdown beside the busy processes is set against the fair share of the cores, (busy
processes + torch threads) / cores: 2 when both are one per core. Before adbench/machine/sharing.py a fit on 2
cores took 3.6× its time alone there; a stage far above its fair share is a regression. By default the
job runs on one texture and one object of the synthetic set (every stage of the job, in a quarter of its
time); ADBENCH_BENCH_FULL=1 runs all four categories.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import SAME_KERNELS

STAGE_DONE = re.compile(r"^\d\d:\d\d:\d\d (\S+) \S+/(\S+)/seed\d+(.*?): done in ([\d.]+) s$", re.MULTILINE)
CATEGORIES = "sand,weave,pin,washer" if os.environ.get("ADBENCH_BENCH_FULL") == "1" else "weave,pin"


def _main_job(data: Path, out: Path, name: str) -> dict[str, float]:
    """Seconds per stage (summed over categories) and in all, of `adbench run --methods l2ae` at default."""
    command = [sys.executable, "-c", "from adbench.cli import main; main()", "run", "--methods", "l2ae"]
    command += ["--data", str(data), "--categories", CATEGORIES, "--out", str(out), "--name", name]
    # As a user runs it: the tests' AVX2 pin (conftest.SAME_KERNELS) and wait policy left out.
    environment = {k: v for k, v in os.environ.items() if k not in {"OMP_WAIT_POLICY", *SAME_KERNELS}}
    started = time.perf_counter()
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=3 * 3600)
    assert done.returncode == 0, done.stderr
    stages: dict[str, float] = defaultdict(float)
    for stage, _category, detail, seconds in STAGE_DONE.findall(done.stderr):
        stages[f"{stage}{detail}"] += float(seconds)
    return {**stages, "whole job": time.perf_counter() - started}


@pytest.mark.benchmark(group="shared-machine")
def test_main_job_beside_one_busy_process_per_core(benchmark, tmp_path):
    from adbench.data.synth import generate

    data = generate(tmp_path / "synthetic", seed=0)
    alone = _main_job(data, tmp_path / "runs", "alone")
    cores = os.cpu_count() or 1
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        job = (data, tmp_path / "runs", "shared")
        shared = benchmark.pedantic(_main_job, args=job, rounds=1, iterations=1)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    fair_share = (cores + cores) / cores  # torch runs a thread per core
    for stage, seconds in alone.items():
        benchmark.extra_info[f"{stage} alone s"] = seconds
        benchmark.extra_info[f"{stage} shared s"] = shared[stage]
        benchmark.extra_info[f"{stage} slowdown / fair share"] = shared[stage] / seconds / fair_share
