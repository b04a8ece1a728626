"""A run beside busy processes: OpenMP threads wait passively, chosen before torch loads (#31 item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from adbench.machine.sharing import BUSY_CORES, busy_cores_of_others

CHOOSE = """
import os, sys
{before}
from adbench.machine.sharing import choose_wait_policy
note = choose_wait_policy(lambda: {busy})
print(os.environ.get("OMP_WAIT_POLICY"), note, sep="|")
"""


def _choose(busy: float, before: str = "", env: dict[str, str] | None = None) -> tuple[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | (env or {})
    code = CHOOSE.format(before=before, busy=busy)
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True, timeout=600
    )
    policy, note = done.stdout.strip().split("|")
    return policy, note


def test_busy_cores_choose_passive_waiting_and_say_so():
    policy, note = _choose(busy=1.9)
    assert policy == "PASSIVE"
    assert note.startswith("other processes keep 1.9 of ") and "OMP_WAIT_POLICY=PASSIVE" in note


def test_a_quiet_machine_keeps_the_default_spin():
    assert _choose(busy=BUSY_CORES / 2) == ("None", "None")


def test_the_users_own_policy_is_kept():
    assert _choose(busy=1.9, env={"OMP_WAIT_POLICY": "ACTIVE"}) == ("ACTIVE", "None")


def test_nothing_is_chosen_once_torch_is_loaded():
    """libgomp has read its policy when torch loaded it: setting it then would only mislead the manifest."""
    assert _choose(busy=1.9, before="import torch") == ("None", "None")


@pytest.fixture
def busy_machine() -> Iterator[int]:
    """Two spinning processes per core; yields the core count."""
    cores = os.cpu_count() or 1
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * cores)]
    time.sleep(0.3)
    try:
        yield cores
    finally:
        for process in busy:
            process.kill()
            process.wait()


@pytest.mark.machine_load
def test_busy_processes_are_measured_as_busy_cores(busy_machine):
    assert busy_cores_of_others() > min(busy_machine, 2) * 0.75


@pytest.mark.machine_load
def test_a_run_started_beside_busy_processes_says_its_threads_wait_passively(busy_machine, tiny_root):
    command = [sys.executable, "-c", "from adbench.cli import main; main()", "run", "--methods", "l2ae"]
    command += ["--budget", "smoke", "--data", str(tiny_root), "--categories", "pin", "--dry-run"]
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "note: other processes keep" in done.stderr and "OMP_WAIT_POLICY=PASSIVE" in done.stderr
