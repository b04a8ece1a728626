"""adbench/data/formats/__init__.py: a --data that is no dataset root (a category folder, a file) is one
line saying what to pass instead."""

from __future__ import annotations

from tests.helpers import one_line, smoke_run


def test_data_pointing_at_a_category_folder_says_to_pass_its_parent(tiny_root, tmp_path):
    result = smoke_run(tiny_root / "pin", tmp_path / "runs", "--all-categories")
    assert result.returncode == 2
    assert f"{tiny_root / 'pin'}: a category folder" in one_line(result.stderr)
    assert f"pass its parent {tiny_root}" in result.stderr


def test_a_dataset_root_that_is_a_file_says_so(tmp_path):
    file = tmp_path / "data.zip"
    file.write_bytes(b"PK")
    result = smoke_run(file, tmp_path / "runs", "--all-categories")
    assert result.returncode == 2
    assert f"{file}: a file, not a folder" in one_line(result.stderr)
