"""adbench/cli/results.py (and `adbench data synth` in adbench/cli/info.py): an --out that is a dangling
symbolic link is never replaced."""

from __future__ import annotations

import pytest

from tests.helpers import adbench, one_line
from tests.test_evaluate import write_maps


@pytest.mark.parametrize("command", ["evaluate", "data synth"])
def test_an_output_that_is_a_dangling_link_is_never_replaced(tiny_root, tmp_path, command):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    if command == "evaluate":
        write_maps(tiny_root, tmp_path / "maps", "pin", ".npy", seed=0)
        arguments = ["evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(tmp_path / "maps")]
        arguments += ["--categories", "pin", "--out", str(link)]
    else:
        arguments = ["data", "synth", "--out", str(link)]
    result = adbench(*arguments)
    assert result.returncode == 2
    assert f"{link}: already exists and is never overwritten" in one_line(result.stderr)
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
