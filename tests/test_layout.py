"""Bad input: each case is one AdbenchError whose message names the file and the fix."""

import shutil

import pytest

from adbench.data import mvtec
from adbench.data.cache import describe, load_category
from adbench.data.formats import detect_format, read_dataset
from adbench.data.formats.mvtec_ad import read_category
from adbench.data.layout import read_kinds
from adbench.detector import InputSpec
from adbench.errors import AdbenchError


def _load(root, name, kind="object"):
    files = read_category(root, name, kind)
    return load_category(files, describe(files), InputSpec(32, 3))


def test_missing_train_good(dataset_copy):
    shutil.rmtree(dataset_copy / "washer" / "train" / "good")
    with pytest.raises(AdbenchError, match=r"washer/train/good: missing"):
        read_category(dataset_copy, "washer", "object")


def test_empty_category(dataset_copy):
    for image in (dataset_copy / "washer" / "train" / "good").iterdir():
        image.unlink()
    with pytest.raises(AdbenchError, match=r"washer/train/good: 0 image\(s\)"):
        read_category(dataset_copy, "washer", "object")


def test_test_set_without_defects(dataset_copy):
    for folder in (dataset_copy / "washer" / "test").iterdir():
        if folder.name != "good":
            shutil.rmtree(folder)
    with pytest.raises(AdbenchError, match="needs both defect-free"):
        read_category(dataset_copy, "washer", "object")


def test_defect_image_without_mask(dataset_copy):
    (dataset_copy / "washer" / "ground_truth" / "chip" / "001_mask.png").unlink()
    with pytest.raises(AdbenchError, match=r"washer/test/chip/001.png: defect image without its mask"):
        read_category(dataset_copy, "washer", "object")


def test_mask_of_other_size(dataset_copy):
    from PIL import Image

    mask = dataset_copy / "washer" / "ground_truth" / "stain" / "002_mask.png"
    Image.open(mask).resize((40, 40)).save(mask)
    with pytest.raises(
        AdbenchError, match=r"stain/002_mask.png: mask is 40x40 but its image 002.png is 64x64"
    ):
        _load(dataset_copy, "washer")


def test_truncated_image(dataset_copy):
    image = dataset_copy / "washer" / "test" / "good" / "001.png"
    image.write_bytes(image.read_bytes()[:100])
    with pytest.raises(AdbenchError, match=r"test/good/001.png: unreadable or truncated image"):
        _load(dataset_copy, "washer")


def test_file_that_is_not_an_image(dataset_copy):
    (dataset_copy / "washer" / "train" / "good" / "000.png").write_text("not a png")
    with pytest.raises(AdbenchError, match=r"train/good/000.png: unreadable or truncated image"):
        _load(dataset_copy, "washer")


def test_unknown_category_lists_valid_ones(tiny_root):
    with pytest.raises(
        AdbenchError, match=r"unknown category 'washr'.*Did you mean 'washer'.*Valid: pin, sand"
    ):
        read_dataset(tiny_root, ["washr"], {})


def test_undeclared_kind_says_how_to_declare(dataset_copy):
    (dataset_copy / "categories.toml").unlink()
    with pytest.raises(AdbenchError, match=r'weave: its kind is not declared; add `weave = "texture"`'):
        read_kinds(dataset_copy, ["weave"], {}, mvtec.KINDS)
    assert read_kinds(dataset_copy, ["weave"], {"weave": "texture"}, mvtec.KINDS) == {"weave": "texture"}


def test_mvtec_names_need_no_declaration(tmp_path):
    assert read_kinds(tmp_path, ["carpet", "screw"], {}, mvtec.KINDS) == {
        "carpet": "texture",
        "screw": "object",
    }


def test_empty_category_list(tiny_root):
    with pytest.raises(AdbenchError, match="no categories given; valid: pin, sand, washer, weave"):
        read_dataset(tiny_root, [], {})


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(AdbenchError, match="dataset folder not found"):
        detect_format(tmp_path / "nowhere")
