"""adbench/run/lock.py: one process per run folder. A second process is refused while the first holds
the lock, a dead holder's lock is taken over, an unreadable holder is "another process", and a lock file
that is a folder or a link is one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from adbench.run.lock import LOCK_FILE, _holder, run_lock
from tests.helpers import adbench, copy_run, one_line, snapshot


def test_a_second_process_is_refused_while_the_first_holds_the_run(one_cell_run, tmp_path):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    with run_lock(run_dir):
        before = snapshot(run_dir)
        result = adbench("run", "--resume", str(run_dir), fresh=True)
        assert result.returncode == 2
        line = one_line(result.stderr)
        assert f"in use by process {os.getpid()} on {socket.gethostname()}" in line, line
        assert snapshot(run_dir) == before
    assert adbench("run", "--resume", str(run_dir)).returncode == 0, "the lock ends with its holder"


def test_a_lock_left_by_a_dead_process_is_taken_over(one_cell_run, tmp_path):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (run_dir / LOCK_FILE).write_text(
        " " + json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()})
    )
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert not (run_dir / LOCK_FILE).exists(), "a run that ends removes its lock file"


@pytest.mark.parametrize(
    "content",
    [b" " + b"[" * 100_000 + b"]" * 100_000, b" \xff\xfe", b' ["pid"]', b' {"pid": 1}', b"", b' "host"'],
    ids=["deep", "not-utf8", "list", "no-host", "empty", "string"],
)
def test_a_held_lock_whose_holder_cannot_be_read_is_named_another_process(tmp_path, content):
    lock = tmp_path / LOCK_FILE
    lock.write_bytes(content)
    assert _holder(lock) == "another process"


@pytest.mark.parametrize("planted", ["folder", "link"])
def test_a_lock_file_that_is_not_a_file_is_one_line(one_cell_run, tmp_path, planted):
    run_dir = copy_run(one_cell_run, tmp_path / "one")
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file")
    if planted == "folder":
        (run_dir / LOCK_FILE).mkdir()
    else:
        (run_dir / LOCK_FILE).symlink_to(victim)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert f"{run_dir / LOCK_FILE}: a {'folder' if planted == 'folder' else 'symbolic link'}" in one_line(
        result.stderr
    )
    assert victim.read_text() == "someone else's file"
