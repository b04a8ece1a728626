import os

import numpy as np
import pytest
import torch
from PIL import Image

from adbench.data.cache import describe, load_category
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import InputSpec

SMALL = InputSpec(32, 3)


def _load(root, spec=SMALL):
    files = read_category(root, "washer", "object")
    return load_category(files, describe(files), spec)


def test_second_load_opens_no_image(dataset_copy, monkeypatch):
    first = _load(dataset_copy)

    def refuse(*args, **kwargs):
        raise AssertionError("the cache must not open images on a hit")

    monkeypatch.setattr(Image, "open", refuse)
    second = _load(dataset_copy)
    assert torch.equal(first.train, second.train) and torch.equal(first.test_masks, second.test_masks)
    assert first.test_names == second.test_names


def test_changed_file_invalidates_entry(dataset_copy):
    before = _load(dataset_copy)
    image = dataset_copy / "washer" / "test" / "good" / "000.png"
    Image.new("RGB", (64, 64), (255, 255, 255)).save(image)
    os.utime(image, ns=(1, 1))
    after = _load(dataset_copy)
    index = after.test_names.index("washer/test/good/000.png")
    assert not torch.equal(before.test[index], after.test[index])
    assert int(after.test[index].min()) == 255


def test_tensors_match_spec_and_labels(tiny_root):
    tensors = _load(tiny_root, InputSpec(48, 1))
    assert tensors.train.dtype == torch.uint8 and tensors.train.shape[1:] == (1, 48, 48)
    assert tensors.test_masks.shape == (len(tensors.test), 48, 48)
    anomalous = tensors.test_labels == 1
    assert np.array_equal(anomalous, np.array([defect != "good" for defect in tensors.test_defects]))
    masked = tensors.test_masks.flatten(1).amax(1).numpy() == 1
    assert np.array_equal(masked, anomalous), "exactly the defect images carry mask pixels"


def test_validation_split_is_fixed_and_disjoint(tiny_root):
    files = read_category(tiny_root, "washer", "object")
    again = read_category(tiny_root, "washer", "object")
    assert files.validation == again.validation and len(files.validation) >= 1
    assert not set(files.validation) & set(files.train)
    assert len(files.train) + len(files.validation) == 12


@pytest.mark.parametrize("mode", ["RGBA", "I;16"])
def test_other_image_modes_are_converted(dataset_copy, mode):
    image = dataset_copy / "washer" / "train" / "good" / "000.png"
    converted = Image.open(image).convert("RGBA") if mode == "RGBA" else Image.open(image).convert("L")
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(converted).astype(np.uint16) * 257)
    converted.save(image)
    tensors = _load(dataset_copy, InputSpec(64, 3))
    assert tensors.train.shape[1] == 3
