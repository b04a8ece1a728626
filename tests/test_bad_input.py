"""Bad input, each case a test with nothing lost: odd image modes, tampered checkpoints, a full disk and a
hand-edited results table. The cases test_layout.py, test_cache.py, test_common.py and test_report.py
already cover are not repeated here."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from adbench.data.cache import describe, load_category
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import CategorySpec, InputSpec
from adbench.errors import AdbenchError
from adbench.results import MANIFEST, RESULTS_CSV, RESULTS_PARQUET, read_results, results_frame, write_results
from adbench_methods.autoencoder.detector import L2Autoencoder
from tests.helpers import adbench, one_line, snapshot

SIZE = 64  # the tiny dataset's image side: loading at it resizes nothing, so values compare exactly


def _replace_and_load(
    root: Path, category: str, relative: str, image: Image.Image, channels: int
) -> np.ndarray:
    """Save `image` over ROOT/category/relative, load the category at `channels`; that image's (C, H, W)."""
    path = root / category / relative
    image.save(path)
    assert Image.open(path).mode == image.mode, "the file must really hold the mode under test"
    files = read_category(root, category, "object")
    tensors = load_category(files, describe(files), InputSpec(SIZE, channels))
    if path in files.train:
        return tensors.train[files.train.index(path)].numpy()
    if path in files.validation:
        return tensors.validation[files.validation.index(path)].numpy()
    return tensors.test[tensors.test_names.index(f"{category}/{relative}")].numpy()


# --- image modes ----------------------------------------------------------------------------------


def test_16_bit_png_is_scaled_to_8_bits(dataset_copy):
    relative = "train/good/000.png"
    original = np.asarray(Image.open(dataset_copy / "pin" / relative))
    assert original.dtype == np.uint8 and original.ndim == 2 and original.max() - original.min() > 100
    # v * 257 is the exact 16-bit value of v; the noise in the low byte stays under half an 8-bit step
    # but makes a wrap-around (keeping the low byte) or a clip at 255 give other values.
    noise = np.random.default_rng(0).integers(-100, 101, original.shape)
    sixteen = np.clip(original.astype(np.int64) * 257 + noise, 0, 65535).astype(np.uint16)
    loaded = _replace_and_load(dataset_copy, "pin", relative, Image.fromarray(sixteen), channels=1)
    assert loaded.shape == (1, SIZE, SIZE)
    assert np.abs(loaded[0].astype(int) - original.astype(int)).max() <= 1


def test_dark_16_bit_png_stays_dark(dataset_copy):
    """A 16-bit file using only 0..255 is nearly black; it must not be read as if it were 8-bit."""
    relative = "test/good/000.png"
    original = np.asarray(Image.open(dataset_copy / "pin" / relative))
    loaded = _replace_and_load(
        dataset_copy, "pin", relative, Image.fromarray(original.astype(np.uint16)), channels=1
    )
    assert loaded.max() <= 1


def test_rgba_image_in_rgb_category_drops_alpha(dataset_copy):
    relative = "train/good/001.png"
    original = np.asarray(Image.open(dataset_copy / "washer" / relative))
    assert original.shape == (SIZE, SIZE, 3)
    # Fully transparent to opaque: compositing onto black or white would change the values.
    alpha = np.tile(np.linspace(0, 255, SIZE).round().astype(np.uint8), (SIZE, 1))
    rgba = Image.fromarray(np.dstack([original, alpha]), "RGBA")
    loaded = _replace_and_load(dataset_copy, "washer", relative, rgba, channels=3)
    assert np.array_equal(loaded, original.transpose(2, 0, 1))


def test_grayscale_image_in_rgb_category_becomes_three_equal_channels(dataset_copy):
    relative = "train/good/002.png"
    gray = Image.open(dataset_copy / "washer" / relative).convert("L")
    loaded = _replace_and_load(dataset_copy, "washer", relative, gray, channels=3)
    files = read_category(dataset_copy, "washer", "object")
    assert describe(files).channels == 3, "one gray image must not turn a colour category gray"
    assert loaded.shape == (3, SIZE, SIZE)
    for channel in loaded:
        assert np.array_equal(channel, np.asarray(gray))


# --- checkpoints ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    """An untrained l2ae detector's checkpoint: loading reads it the same way, trained or not."""
    torch.manual_seed(0)
    params = L2Autoencoder.default_params(CategorySpec("washer", "object", 3), "smoke")
    path = tmp_path_factory.mktemp("checkpoint") / "checkpoint.safetensors"
    L2Autoencoder(params).save(path)
    return path.read_bytes()


def _header(data: bytes) -> bytes:
    (length,) = struct.unpack("<Q", data[:8])
    return data[8 : 8 + length]


def _assert_refused(path: Path, why: str) -> None:
    with pytest.raises(AdbenchError) as raised:
        L2Autoencoder.load(path)
    message = str(raised.value)
    assert str(path) in message and "retrain" in message, f"{why}: {message}"


def test_intact_checkpoint_loads(checkpoint_bytes, tmp_path):
    """The control for the tampering tests below: the untouched bytes load."""
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(checkpoint_bytes)
    assert isinstance(L2Autoencoder.load(path), L2Autoencoder)


def test_flipped_header_bytes_are_refused(checkpoint_bytes, tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    end = 8 + len(_header(checkpoint_bytes))
    # Every length byte, then ~64 positions spread over the JSON header (all of it takes half a minute).
    for position in [*range(8), *range(8, end, max(1, (end - 8) // 64)), end - 1]:
        tampered = bytearray(checkpoint_bytes)
        tampered[position] ^= 0xFF
        path.write_bytes(bytes(tampered))
        _assert_refused(path, f"byte {position} flipped")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # a tensor's shape no longer matches its bytes
        (b'"decoder.0.bias":{"dtype":"F32","shape":[32]', b'"decoder.0.bias":{"dtype":"F32","shape":[33]'),
        (b'"data_offsets":[0,128]', b'"data_offsets":[0,124]'),  # a tensor's bytes overlap the next
        (b'"decoder.0.bias"', b'"decoder.0.biat"'),  # a tensor the network does not have
        (b'\\"latent_dim\\": 100', b'\\"latent_dim\\": 900'),  # params that build other networks
        (b'"params"', b'"paramz"'),  # params missing
    ],
)
def test_edited_header_is_refused(checkpoint_bytes, tmp_path, old, new):
    assert checkpoint_bytes.count(old) == 1 and len(old) == len(new)
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(checkpoint_bytes.replace(old, new))
    _assert_refused(path, f"{old!r} -> {new!r}")


@pytest.mark.parametrize("keep", ["nothing", "7 bytes", "half the header", "the header", "all but 1 byte"])
def test_truncated_checkpoint_is_refused(checkpoint_bytes, tmp_path, keep):
    header_end = 8 + len(_header(checkpoint_bytes))
    length = {
        "nothing": 0,
        "7 bytes": 7,
        "half the header": header_end // 2,
        "the header": header_end,
        "all but 1 byte": len(checkpoint_bytes) - 1,
    }[keep]
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(checkpoint_bytes[:length])
    _assert_refused(path, f"kept {keep}")


def test_safetensors_file_without_adbench_metadata_is_refused(tmp_path):
    torch.manual_seed(0)
    detector = L2Autoencoder(L2Autoencoder.default_params(CategorySpec("washer", "object", 3), "smoke"))
    path = tmp_path / "checkpoint.safetensors"
    save_file({key: value.contiguous() for key, value in detector.state_tensors().items()}, str(path))
    with pytest.raises(AdbenchError, match=r"not an adbench checkpoint \(no method recorded\); retrain"):
        L2Autoencoder.load(path)


class _Trap:
    """Unpickling this runs os.mkdir(marker): the proof that a loader executed code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_pickle_renamed_to_checkpoint_is_refused_without_running_it(tmp_path, writer):
    marker = tmp_path / "code-ran"
    path = tmp_path / "checkpoint.safetensors"
    if writer == "torch.save":
        torch.save({"network": _Trap(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"network": _Trap(marker)}))
    _assert_refused(path, writer)
    assert not marker.exists(), "loading a checkpoint must execute nothing from the file"
    # Control: the file is live, so the assertion above would catch a loader that unpickles.
    if writer == "torch.save":
        # Under another name: torch.load hands a *.safetensors file to safetensors itself.
        torch.load(shutil.copy(path, tmp_path / "payload.pt"), weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.is_dir()


# --- a full disk ----------------------------------------------------------------------------------


def _frame(values: list[float]) -> pd.DataFrame:
    rows = [
        {
            "run_id": "r",
            "method": "l2ae",
            "category": f"c{i}",
            "category_kind": "object",
            "seed": 0,
            "metric": "image_auroc",
            "value": value,
        }
        for i, value in enumerate(values)
    ]
    return results_frame(rows)


def _disk_full(error_path: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), error_path)


def _writes_half_then_fills_the_disk(original):
    def write(frame, path, *args, **kwargs):
        original(frame, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise _disk_full(str(path))

    return write


@pytest.mark.parametrize("failing", ["parquet", "csv", "fsync"])
def test_full_disk_while_writing_results_keeps_the_previous_table(tmp_path, monkeypatch, failing):
    run_dir = tmp_path / "run"
    previous = _frame([0.5, 0.75])
    write_results(run_dir, previous)
    before = snapshot(run_dir)
    assert set(before) == {RESULTS_PARQUET, RESULTS_CSV}
    if failing == "parquet":
        monkeypatch.setattr(
            pd.DataFrame, "to_parquet", _writes_half_then_fills_the_disk(pd.DataFrame.to_parquet)
        )
    elif failing == "csv":
        monkeypatch.setattr(pd.DataFrame, "to_csv", _writes_half_then_fills_the_disk(pd.DataFrame.to_csv))
    else:

        def fsync(descriptor: int) -> None:
            raise _disk_full("")

        monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(AdbenchError, match=r"results\.(parquet|csv): not written, no space left on device"):
        write_results(run_dir, _frame([0.1, 0.2, 0.3]))
    monkeypatch.undo()
    assert snapshot(run_dir) == before, "both files byte-identical, no temporary file left behind"
    pd.testing.assert_frame_equal(read_results(run_dir), previous)


def test_other_write_errors_keep_their_traceback(tmp_path, monkeypatch):
    """Only a full disk is the user's to fix; anything else stays an OSError (a bug to see in full)."""
    write_results(tmp_path, _frame([0.5]))
    before = snapshot(tmp_path)

    def fsync(descriptor: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as raised:
        write_results(tmp_path, _frame([0.1]))
    assert not isinstance(raised.value, AdbenchError) and raised.value.errno == errno.EIO
    monkeypatch.undo()
    assert snapshot(tmp_path) == before


def test_full_disk_while_caching_images_is_one_error_and_leaves_no_partial_entry(dataset_copy, monkeypatch):
    from adbench.data import cache

    def savez(file, **arrays) -> None:
        Path(file).write_bytes(b"PK\x03\x04 half an archive")
        raise _disk_full(str(file))

    monkeypatch.setattr(cache.np, "savez", savez)
    files = read_category(dataset_copy, "washer", "object")
    with pytest.raises(AdbenchError, match=r"cache entry not written, no space left on device"):
        load_category(files, describe(files), InputSpec(40, 3))
    monkeypatch.undo()
    assert not [p for p in (cache.cache_root() / "tensors").iterdir() if p.name.startswith(".")]
    tensors = load_category(files, describe(files), InputSpec(40, 3))  # space again: it builds and loads
    assert tensors.train.shape[1:] == (3, 40, 40)


# --- a run folder damaged by hand -----------------------------------------------------------------


def _garbage(path: Path) -> None:
    path.write_text("method,category,value\nl2ae,washer,0.93\n")  # a CSV pasted over the parquet


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-200])


def _column_dropped(path: Path) -> None:
    pd.read_parquet(path).drop(columns="value").to_parquet(path, index=False)


def _text_in_seed(path: Path) -> None:
    frame = pd.read_parquet(path)
    frame["seed"] = "zero"
    frame.to_parquet(path, index=False)


@pytest.mark.parametrize("damage", [_garbage, _truncated, _column_dropped, _text_in_seed])
def test_resume_with_a_damaged_results_table_stops_and_keeps_it(one_cell_run, tmp_path, damage):
    run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "one"))
    damage(run_dir / RESULTS_PARQUET)
    before = snapshot(run_dir)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line(result.stderr)
    assert f"{run_dir / RESULTS_PARQUET}:" in line and "changed outside adbench" in line, line
    assert snapshot(run_dir) == before, "the damaged table (and the rest of the run) must not be rewritten"


def test_resume_on_a_full_disk_is_one_line_and_keeps_the_manifest(
    one_cell_run, tmp_path, monkeypatch, capsys
):
    from adbench.cli import main

    run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "one"))
    assert json.loads((run_dir / MANIFEST).read_text())["status"] == "finished"
    before = snapshot(run_dir)

    def fsync(descriptor: int) -> None:
        raise _disk_full("")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(sys, "argv", ["adbench", "run", "--resume", str(run_dir)])
    with pytest.raises(SystemExit) as exited:
        main()
    monkeypatch.undo()
    assert exited.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert f"{run_dir / MANIFEST}: not written, no space left on device" in line, line
    assert snapshot(run_dir) == before
