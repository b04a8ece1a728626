"""adbench/evaluation/external_maps.py: `adbench evaluate` on anomaly maps whose header claims a size
(or a dtype) that does not fit the mask is one line naming the file, before anything large is
allocated."""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import assert_one_line_naming
from tests.test_evaluate import write_maps

_MEMORY_CAP = 2 * 2**30  # `adbench evaluate` on the tiny dataset needs a few hundred MiB


def _evaluate_under_memory_cap(dataset: Path, maps_root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`adbench evaluate` with its address space capped: an allocation the file asks for fails loudly."""
    return subprocess.run(
        [sys.executable, "-c", "from adbench.cli import main; main()", "evaluate", "--dataset", str(dataset),
         "--anomaly-maps", str(maps_root), "--categories", "pin", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_CAP, _MEMORY_CAP)),
    )  # fmt: skip


def _first_map(tiny_root: Path, maps_root: Path, suffix: str) -> Path:
    write_maps(tiny_root, maps_root, "pin", suffix)
    path = maps_root / "pin" / "test" / "good" / f"000{suffix}"
    assert path.is_file()
    return path


def _npy_claiming_3_6_tib(path: Path) -> None:
    """A 128-byte .npy whose header says 10^12 float32 values follow, and none do."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (1_000_000, 1_000_000)}
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
    assert path.stat().st_size < 200


def _complex_npy(path: Path) -> None:
    np.save(path, np.zeros((64, 64), np.complex64))  # astype(float32) would drop the imaginary part


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (_npy_claiming_3_6_tib, "map is 1000000x1000000 but its ground truth is 64x64"),
        (_complex_npy, "anomaly map of dtype complex64; expected plain numbers"),
    ],
)
def test_npy_map_whose_header_does_not_fit_is_one_line_without_allocating(
    tiny_root, tmp_path, write, message
):
    maps_root = tmp_path / "maps"
    path = _first_map(tiny_root, maps_root, ".npy")
    write(path)
    result = _evaluate_under_memory_cap(tiny_root, maps_root, tmp_path / "metrics.csv")
    assert_one_line_naming(result, path)
    assert message in result.stderr
    assert not (tmp_path / "metrics.csv").exists()


def _tiff_header_only(path: Path, width: int, height: int) -> None:
    """A float32 TIFF's header claiming width × height pixels, followed by no pixels."""
    shorts = {258: 32, 259: 1, 262: 1, 277: 1, 339: 3}  # 32 bits, uncompressed, gray, 1 sample, float
    longs = {256: width, 257: height, 273: 8 + 2 + 12 * 10 + 4, 278: height, 279: width * height * 4}
    entries = [struct.pack("<HHIHH", tag, 3, 1, value, 0) for tag, value in shorts.items()]
    entries += [struct.pack("<HHII", tag, 4, 1, value) for tag, value in longs.items()]
    entries.sort(key=lambda entry: struct.unpack("<H", entry[:2])[0])  # TIFF wants the tags ascending
    path.write_bytes(
        b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)) + b"".join(entries) + bytes(4)
    )


@pytest.mark.parametrize(
    ("side", "message"),
    [
        (20_000, "exceeds limit"),  # Pillow's decompression-bomb error
        (10_000, "map is 10000x10000 but its ground truth is 64x64"),  # only a warning from Pillow
    ],
)
def test_tiff_map_claiming_a_huge_size_is_one_line(tiny_root, tmp_path, monkeypatch, side, message):
    maps_root = tmp_path / "maps"
    path = _first_map(tiny_root, maps_root, ".tiff")
    _tiff_header_only(path, side, side)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # here only, to see what the header claims
    with Image.open(path) as claimed:
        assert claimed.size == (side, side)
    result = _evaluate_under_memory_cap(tiny_root, maps_root, tmp_path / "metrics.csv")
    assert_one_line_naming(result, path)
    assert message in result.stderr
