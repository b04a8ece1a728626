"""adbench/run/config.py: what a grid file, a run manifest or the command line may configure. A Dask
scheduler named in a file is refused without connecting to it; NUL bytes in names, unbounded counts and
too many seeds are one line before any run folder exists."""

from __future__ import annotations

import socket

import pytest

from adbench.run.folder import MANIFEST
from tests.helpers import adbench, copy_run, edit_manifest, one_line, smoke_run, snapshot


@pytest.fixture
def listener():
    """A local TCP port standing in for a Dask scheduler; it records whether anyone connected."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}", server
    server.close()


def _connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except TimeoutError:
        return False
    return True


def test_a_scheduler_named_in_a_manifest_is_refused_without_connecting(one_cell_run, tmp_path, listener):
    address, server = listener
    run_dir = copy_run(one_cell_run, tmp_path / "one")

    def point_at_scheduler(manifest):
        manifest["config"] |= {"executor": "dask", "scheduler": address, "workers": None}
        manifest["cells"] = []  # so that resuming has cells to send

    edit_manifest(run_dir, point_at_scheduler)
    before = snapshot(run_dir)
    for command in (
        ["--resume", str(run_dir)],
        ["--config", str(run_dir / MANIFEST), "--out", str(tmp_path)],
    ):
        result = adbench("run", *command)
        assert result.returncode == 2, result.stderr
        line = one_line(result.stderr)
        assert address in line and f"pass --scheduler {address}" in line, line
    assert not _connected(server), "no connection may be attempted to an address read from a file"
    assert snapshot(run_dir) == before


def test_a_scheduler_named_in_a_grid_file_is_refused_without_connecting(tiny_root, tmp_path, listener):
    address, server = listener
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'methods = ["l2ae"]\nall_categories = true\nexecutor = "dask"\nscheduler = "{address}"\n'
    )
    result = adbench("run", "--config", str(grid), "--data", str(tiny_root), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert f"{grid}: names the Dask scheduler" in one_line(result.stderr)
    assert not _connected(server) and not (tmp_path / "runs").exists()


def test_a_nul_byte_in_a_grid_files_name_is_one_line(tiny_root, tmp_path):
    """A command line cannot carry a NUL byte, but a grid file can (TOML's \\u0000)."""
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["l2ae"]\ncategories = ["pin"]\nname = "a\\u0000b"\n')
    result = adbench("run", "--config", str(grid), "--data", str(tiny_root), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "--name 'a\\x00b': contains a NUL byte" in one_line(result.stderr)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--repeats", "1000000000"), "--repeats 1000000000: must be from 1 to 1,000"),
        (("--executor", "dask", "--workers", "100000"), "--workers 100000: must be from 1 to"),
        (("--name", "n" * 256), "it is 256 bytes long, more than a file name holds (255)"),
    ],
)
def test_unbounded_counts_and_names_are_refused(tiny_root, tmp_path, flags, message):
    result = smoke_run(tiny_root, tmp_path / "runs", "--categories", "pin", *flags)
    assert result.returncode == 2
    assert message in one_line(result.stderr)
    assert not (tmp_path / "runs").exists()


def test_a_thousand_and_one_seeds_are_refused(tiny_root, tmp_path):
    seeds = ",".join(map(str, range(1001)))
    result = smoke_run(tiny_root, tmp_path / "runs", "--categories", "pin", "--seeds", seeds)
    assert result.returncode == 2
    assert "1,001 seeds; a grid takes at most 1,000" in one_line(result.stderr)
    assert not (tmp_path / "runs").exists()
