"""adbench/data/cache.py: images and masks decoded into tensors. Every data problem (a truncated image,
one far too small, a colour image in a grayscale category) stops a run before any training; masks of
any bit depth or mode and images of odd modes (16-bit, RGBA, gray in a colour category) give what their
8-bit originals give; a full disk while caching leaves no partial entry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from adbench.data.cache import describe, load_category, load_native_masks
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import InputSpec
from adbench.errors import AdbenchError
from adbench.evaluation.external_maps import evaluate_maps
from tests.helpers import disk_full, one_line, smoke_run
from tests.test_evaluate import write_maps

SIZE = 64  # the tiny dataset's image side: loading at it resizes nothing, so values compare exactly


def _no_run_folder(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def test_a_truncated_image_in_the_last_category_stops_the_run_before_any_fit(dataset_copy, tmp_path):
    broken = dataset_copy / "washer" / "test" / "good" / "003.png"  # washer runs last (objects, a-z)
    broken.write_bytes(broken.read_bytes()[:300])
    result = smoke_run(dataset_copy, tmp_path / "runs", "--categories", "pin,washer")
    assert result.returncode == 2
    assert f"{broken}: unreadable or truncated image" in one_line(result.stderr)
    assert _no_run_folder(tmp_path / "runs"), "nothing trained, no run folder"


def test_an_image_far_smaller_than_the_input_is_refused(dataset_copy, tmp_path):
    tiny = dataset_copy / "washer" / "train" / "good" / "004.png"
    Image.new("RGB", (1, 1)).save(tiny)
    result = smoke_run(dataset_copy, tmp_path / "runs", "--categories", "washer")
    assert result.returncode == 2
    assert f"{tiny}: 1x1 pixels, far too small" in one_line(result.stderr)
    assert _no_run_folder(tmp_path / "runs")


def test_a_colour_image_in_a_grayscale_category_is_named(dataset_copy, tmp_path):
    colour = dataset_copy / "pin" / "test" / "good" / "001.png"
    with Image.open(colour) as gray:
        assert gray.mode == "L"
        gray.convert("RGB").save(colour)
    result = smoke_run(dataset_copy, tmp_path / "runs", "--categories", "pin")
    assert result.returncode == 2
    assert f"{colour}: a colour image (RGB) in a grayscale category" in one_line(result.stderr)


def _sixteen_bit_0_1(defect: np.ndarray) -> Image.Image:
    return Image.fromarray(defect.astype(np.uint16))  # I;16 holding 0 and 1


def _dark_blue_rgb(defect: np.ndarray) -> Image.Image:
    colour = np.zeros((*defect.shape, 3), np.uint8)
    colour[defect, 2] = 1  # a luminance of 0.1: gone in a conversion to 8-bit gray
    return Image.fromarray(colour)


def _palette_index_1(defect: np.ndarray) -> Image.Image:
    mask = Image.fromarray(defect.astype(np.uint8), "P")
    mask.putpalette([0, 0, 0, 1, 0, 0])  # index 1 is a red too dark to survive a conversion to gray
    return mask


def _white_on_transparent(defect: np.ndarray) -> Image.Image:
    # White everywhere, opaque only on the defect: dropping the alpha makes every pixel a defect.
    return Image.fromarray(np.dstack([np.full(defect.shape, 255, np.uint8), defect * np.uint8(255)]), "LA")


def _rewrite_masks(root: Path, category: str, write: Callable[[np.ndarray], Image.Image]) -> None:
    masks = sorted((root / category / "ground_truth").glob("*/*_mask.png"))
    assert masks
    for path in masks:
        defect = np.asarray(Image.open(path)) > 0
        write(defect).save(path)


@pytest.mark.parametrize("write", [_sixteen_bit_0_1, _dark_blue_rgb, _palette_index_1, _white_on_transparent])
def test_masks_of_any_mode_give_the_masks_of_the_8_bit_original(tiny_root, dataset_copy, write):
    _rewrite_masks(dataset_copy, "pin", write)
    spec = InputSpec(48, 1)  # not the images' 64 px: the resized path too
    expected, rewritten = (read_category(root, "pin", "object") for root in (tiny_root, dataset_copy))
    original = load_category(expected, describe(expected), spec)
    loaded = load_category(rewritten, describe(rewritten), spec)
    assert original.test_masks.sum() > 0
    assert torch.equal(loaded.test_masks, original.test_masks)
    assert np.array_equal(load_native_masks(rewritten).masks, load_native_masks(expected).masks)


def test_16_bit_0_1_masks_give_the_metrics_of_8_bit_0_255_ones(tiny_root, dataset_copy, tmp_path):
    _rewrite_masks(dataset_copy, "pin", _sixteen_bit_0_1)
    maps_root = tmp_path / "maps"
    write_maps(tiny_root, maps_root, "pin")
    original = evaluate_maps(tiny_root, maps_root, ["pin"], {})
    pd.testing.assert_frame_equal(evaluate_maps(dataset_copy, maps_root, ["pin"], {}), original)


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


def test_full_disk_while_caching_images_is_one_error_and_leaves_no_partial_entry(dataset_copy, monkeypatch):
    from adbench.data import cache

    def savez(file, **arrays) -> None:
        Path(file).write_bytes(b"PK\x03\x04 half an archive")
        raise disk_full(str(file))

    monkeypatch.setattr(cache.np, "savez", savez)
    files = read_category(dataset_copy, "washer", "object")
    with pytest.raises(AdbenchError, match=r"cache entry not written, no space left on device"):
        load_category(files, describe(files), InputSpec(40, 3))
    monkeypatch.undo()
    assert not [p for p in (cache.cache_root() / "tensors").iterdir() if p.name.startswith(".")]
    tensors = load_category(files, describe(files), InputSpec(40, 3))  # space again: it builds and loads
    assert tensors.train.shape[1:] == (3, 40, 40)
