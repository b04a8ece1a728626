"""adbench/data/formats/__init__.py: a --data that is no dataset root (a category folder, a file) is one
line saying what to pass instead."""

from __future__ import annotations

from tests.helpers import _smoke, one_line


def test_data_pointing_at_a_category_folder_says_to_pass_its_parent(tiny_root, tmp_path):
    result = _smoke(tiny_root / "pin", tmp_path / "runs", "--all-categories")
    assert result.returncode == 2
    assert f"{tiny_root / 'pin'}: a category folder" in one_line(result.stderr)
    assert f"pass its parent {tiny_root}" in result.stderr


def test_a_dataset_root_that_is_a_file_says_so(tmp_path):
    file = tmp_path / "data.zip"
    file.write_bytes(b"PK")
    result = _smoke(file, tmp_path / "runs", "--all-categories")
    assert result.returncode == 2
    assert f"{file}: a file, not a folder" in one_line(result.stderr)
