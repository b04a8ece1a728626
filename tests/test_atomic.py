"""adbench/atomic.py: where outputs are written. An output the user may not write is one line, for
every command that writes one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import adbench, one_line
from tests.test_evaluate import write_maps


def _unwritable_folder() -> Path:
    """A folder no one may write, root included (tests may run as root, which permissions do not stop)."""
    folder = Path("/sys")
    try:
        (folder / "adbench-probe").mkdir()
    except OSError:
        return folder
    (folder / "adbench-probe").rmdir()
    pytest.skip("no unwritable folder on this machine")


@pytest.mark.parametrize("command", ["run", "report", "evaluate", "compare --update", "data synth"])
def test_an_output_the_user_may_not_write_is_one_line(one_cell_run, tiny_root, tmp_path, command):
    folder = _unwritable_folder()
    arguments = {
        "run": ["run", "--methods", "l2ae", "--budget", "smoke", "--data", str(tiny_root),
                "--categories", "pin", "--out", str(folder)],
        "report": ["report", str(one_cell_run), "--out", str(folder / "r.md")],
        "evaluate": ["evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(tmp_path),
                     "--out", str(folder / "m.csv")],
        "compare --update": ["compare", str(one_cell_run), "--baseline", str(folder / "b.json"), "--update"],
        "data synth": ["data", "synth", "--out", str(folder / "synth")],
    }[command]  # fmt: skip
    if command == "evaluate":
        write_maps(tiny_root, tmp_path, "pin", ".npy", seed=0)
        arguments += ["--categories", "pin"]
    result = adbench(*arguments)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert str(folder) in line and ("permission denied" in line.lower() or "not permitted" in line.lower())
