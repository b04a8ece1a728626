"""adbench/cli/run.py: `adbench run` stopped by SIGTERM leaves the run interrupted, as Ctrl-C does, and
names the folder to resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from adbench.run.folder import MANIFEST
from tests.helpers import wait_until


def test_sigterm_leaves_the_run_interrupted(tiny_root, tmp_path):
    command = [sys.executable, "-c", "from adbench.cli import main; main()", "run", "--methods", "l2ae"]
    command += ["--budget", "smoke", "--all-categories", "--data", str(tiny_root), "--out", str(tmp_path)]
    process = subprocess.Popen(
        [*command, "--name", "t"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    manifest_path = tmp_path / "t" / MANIFEST
    wait_until(manifest_path.exists, process, "the run wrote its manifest")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert (
        f"interrupted: finished cells are kept in {tmp_path / 't'};" in stderr and "Traceback" not in stderr
    )
    assert f"`adbench run --resume {tmp_path / 't'}` finishes it" in stderr, "the folder to resume is named"
    assert json.loads(manifest_path.read_text())["status"] == "interrupted"
