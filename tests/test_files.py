"""adbench/files.py: reading a user's files. A grid file or a run manifest that is not UTF-8 is one line
naming the file."""

from __future__ import annotations

import pytest

from adbench.run.folder import MANIFEST
from tests.helpers import adbench, copy_run, one_line


@pytest.mark.parametrize("which", ["grid file", "manifest"])
def test_non_utf8_grid_files_and_manifests_are_one_line(one_cell_run, tmp_path, which):
    if which == "grid file":
        target = tmp_path / "grid.toml"
        target.write_bytes(b'methods = ["l2ae"]\n# caf\xe9\n')
        result = adbench("run", "--config", str(target))
    else:
        run_dir = copy_run(one_cell_run, tmp_path / "one")
        target = run_dir / MANIFEST
        target.write_bytes(target.read_bytes().replace(b'"status"', b'"st\xe9tus"'))
        result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert f"{target}: not a" in one_line(result.stderr) and "is not UTF-8 text" in result.stderr
