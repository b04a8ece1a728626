"""adbench/detector.py: saving and loading checkpoints. A full disk while saving is one line; a
checkpoint whose params are out of range, of the wrong type or would allocate is refused before anything
is built; flipped, edited or truncated bytes, a safetensors file of another tool and a pickle under a
checkpoint's name are refused (the pickle without running it)."""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from adbench.detector import CategorySpec
from adbench.errors import AdbenchError
from adbench_methods.autoencoder.detector import L2Autoencoder


def test_a_full_disk_while_saving_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    """safetensors reports the full disk as text, not as an OSError."""
    import safetensors.torch
    from safetensors import SafetensorError

    import adbench.detector
    from adbench.errors import AdbenchError
    from adbench_methods.autoencoder.detector import L2Autoencoder

    def full_disk(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(adbench.detector, "save_file", full_disk)
    assert safetensors.torch.save_file is not full_disk
    detector = L2Autoencoder(L2Autoencoder.default_params(_pin(), "smoke"))
    with pytest.raises(AdbenchError, match=r"checkpoint\.safetensors: not written, no space left on device"):
        detector.save(tmp_path / "checkpoint.safetensors")
    assert list(tmp_path.iterdir()) == [], "no temporary file is left behind"


def _pin():
    from adbench.detector import CategorySpec

    return CategorySpec("pin", "object", 1)


def _checkpoint(path: Path, genuine, **changes: object) -> Path:
    tensors, params = genuine
    save_file(tensors, str(path), metadata={"method": "l2ae", "params": json.dumps(params | changes)})
    return path


def test_checkpoint_claiming_a_huge_side_is_refused_before_anything_is_built(
    genuine_checkpoint, tmp_path, monkeypatch
):
    path = _checkpoint(
        tmp_path / "checkpoint.safetensors",
        genuine_checkpoint,
        image_size=100_000,
        patch_size=100_000,
        patch_stride=100_000,
    )

    def build(*args, **kwargs):
        raise AssertionError("the detector was built: its networks at 100000 px need hundreds of GiB")

    monkeypatch.setattr(L2Autoencoder, "__init__", build)
    with pytest.raises(AdbenchError) as raised:
        L2Autoencoder.load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and "image_size = 100000" in message and "at most 4096" in message
    assert "retrain" in message and "\n" not in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("image_size", "64"),  # a string where an int belongs
        ("channels", True),  # a bool is no channel count
        ("latent_dim", 0),
        ("patch_stride", -32),
        ("learning_rate", math.nan),
        ("weight_decay", math.inf),
    ],
)
def test_checkpoint_params_of_the_wrong_type_or_range_are_refused(genuine_checkpoint, tmp_path, key, value):
    path = _checkpoint(tmp_path / "checkpoint.safetensors", genuine_checkpoint, **{key: value})
    with pytest.raises(AdbenchError) as raised:
        L2Autoencoder.load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: checkpoint params {key} = {value!r}: ") and "retrain" in message


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
