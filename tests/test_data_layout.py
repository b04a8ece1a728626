"""adbench/data/layout.py: a dataset's categories.toml whose kinds is not a table, or which is not
UTF-8, is one line naming the file."""

from __future__ import annotations

import pytest

from adbench.data import mvtec
from adbench.data.layout import read_kinds
from adbench.errors import AdbenchError


@pytest.mark.parametrize("text", ["kinds = 3\n", 'kinds = "x"\n', 'kinds = [["pin", "object"]]\n'])
def test_kinds_that_is_not_a_table_is_one_line(dataset_copy, text):
    (dataset_copy / "categories.toml").write_text(text)
    with pytest.raises(AdbenchError, match="is not a table") as raised:
        read_kinds(dataset_copy, ["pin"], {}, mvtec.KINDS)
    assert str(raised.value).startswith(f"{dataset_copy / 'categories.toml'}: kinds = ")


def test_categories_file_that_is_not_utf_8_is_one_line(dataset_copy):
    (dataset_copy / "categories.toml").write_bytes(b'[kinds]\npin = "obj\xe9ct"\n')
    with pytest.raises(AdbenchError, match="not UTF-8") as raised:
        read_kinds(dataset_copy, ["pin"], {}, mvtec.KINDS)
    assert str(raised.value).startswith(str(dataset_copy / "categories.toml"))
