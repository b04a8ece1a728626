"""adbench/run/dask_executor.py: --executor dask without Dask installed is one line and creates
nothing."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import one_line


def test_dask_executor_without_dask_is_one_line_and_creates_nothing(tiny_root, tmp_path):
    hide_dask = "import sys; sys.modules['distributed'] = None; from adbench.cli import main; main()"
    out = tmp_path / "runs"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            hide_dask,
            "run",
            "--methods",
            "l2ae",
            "--categories",
            "pin",
            "--data",
            str(tiny_root),
            "--out",
            str(out),
            "--executor",
            "dask",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "pip install 'adbench-harness[dask]'" in one_line(result.stderr)
    assert not out.exists()
