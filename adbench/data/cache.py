"""Decoded, resized images of a category, cached on disk per (dataset content, input spec).

The first use of a category at a given input size decodes every PNG once, checks it (readable, mask
the size of its image) and stores uint8 arrays; later runs load those arrays and open no image file.
The dataset's content is fingerprinted from each file's relative path, size and modification time, so
editing or replacing an image invalidates the entry without reading any image. A damaged entry (a file
truncated or edited by hand) is rebuilt from the images; a file of the dataset that disappears while a
run goes on is named in one line.

Cache location: `$ADBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/adbench`, else `~/.cache/adbench`.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from adbench.atomic import held_staging_folder, write_text_atomic
from adbench.data.decode import (
    GRAY_MODES,
    defect_pixels,
    mask_size_error,
    open_image,
    read_header,
    resized_array,
)
from adbench.data.layout import CategoryFiles, DefectsConfig, Saturation
from adbench.detector import CategorySpec, InputSpec
from adbench.errors import AdbenchError
from adbench.evaluation.metrics.pixel import Regions, label_regions
from adbench.evaluation.metrics.spro import Defects, saturation_area
from adbench.names import inside

# Bump when the stored arrays' meaning changes (resampling filter, layout, what a mask pixel means), so
# stale entries are ignored.
CACHE_FORMAT = 5
# Upscaling an image of less than this share of the input side invents nearly all of its pixels.
_SMALLEST_SHARE_OF_INPUT = 1 / 8
T = TypeVar("T")


def cache_root() -> Path:
    if explicit := os.environ.get("ADBENCH_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "adbench"


@dataclass(frozen=True)
class CategoryTensors:
    """A category's images at one input spec, as uint8 tensors (N, C, H, W) and binary masks (N, H, W)."""

    category: CategorySpec
    input_spec: InputSpec
    train: torch.Tensor
    validation: torch.Tensor
    test: torch.Tensor
    test_masks: torch.Tensor  # 1 = defect pixel; all zero for defect-free images
    test_labels: np.ndarray  # (N,) int, 1 = anomalous
    test_defects: tuple[str, ...]
    test_names: tuple[str, ...]  # paths relative to the dataset root
    regions: Regions  # 8-connected components of test_masks, labelled once when the entry is built
    upscaled: tuple[str, ...] = ()  # images (relative paths) smaller than the input side, enlarged to it
    defects: Defects | None = None  # MVTec LOCO's single defects, for sPRO; None for other formats
    unlabeled: torch.Tensor | None = None  # MVTec AD 2's private test images; None where there are none

    def on(self, device: torch.device) -> CategoryTensors:
        """The images on `device`, moved once per cell; masks stay on the CPU, where the metrics run."""
        return dataclasses.replace(
            self,
            train=self.train.to(device),
            validation=self.validation.to(device),
            test=self.test.to(device),
            unlabeled=None if self.unlabeled is None else self.unlabeled.to(device),
        )

    @staticmethod
    def as_float(images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float32 in [0, 1], the detectors' input convention."""
        return images.float().div_(255.0)


def fingerprint(files: CategoryFiles) -> str:
    """Hash of every file's relative path, size and mtime, in split order (so the split is part of it)."""
    digest = hashlib.sha256(f"format={CACHE_FORMAT}".encode())
    for path in files.fingerprinted_paths():
        try:
            stat = path.stat()
        except OSError as error:
            raise AdbenchError(
                f"{path}: {(error.strerror or 'unreadable').lower()}; the dataset changed after adbench "
                "checked it: put the file back"
            ) from None
        digest.update(f"{path.relative_to(files.root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def describe(files: CategoryFiles, remember: bool = True) -> CategorySpec:
    """The category's spec, cached by fingerprint (`remember` False: read, never written, for a dry run).

    It is colour when most training images are; a grayscale category holding a colour image is refused,
    naming it, since converting it would hide which file is odd (and the colour it may show a defect by).
    """
    entry = _entry("categories", files.name, f"{fingerprint(files)}.json")
    channels = _remembered_channels(entry)
    if channels is None:
        images = files.image_paths()
        modes = {path: read_header(path)[0] for path in images}
        gray = {path: mode in GRAY_MODES for path, mode in modes.items()}
        channels = 1 if 2 * sum(gray[path] for path in files.train) >= len(files.train) else 3
        odd = next((path for path in images if not gray[path]), None)
        if channels == 1 and odd is not None:
            raise AdbenchError(
                f"{odd}: a colour image ({modes[odd]}) in a grayscale category "
                f"(most training images of {files.name} are grayscale); convert it to grayscale"
            )
        if remember:
            write_text_atomic(entry, json.dumps({"channels": channels}))
    return CategorySpec(files.name, files.kind, channels, files.rotation_invariant)


def _remembered_channels(entry: Path) -> int | None:
    """The channels a category entry holds; None where there is none, or it is damaged (then redone)."""
    try:
        channels = json.loads(entry.read_text())["channels"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return channels if channels in (1, 3) else None


def _entry(kind: str, name: str, key: str) -> Path:
    """The cache entry `kind/<name>-<key>`: the one place entries are named, refused unless it lies
    inside the cache (adbench.names)."""
    root = cache_root()
    return inside(root, root / kind / f"{name}-{key}")


# What reading a damaged entry raises: a truncated or edited npz (BadZipFile, EOFError, ValueError), JSON
# that is not (ValueError), an entry missing a file or an array (OSError, KeyError).
_DAMAGED_ENTRY = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def _from_entry(
    entry: Path, build: Callable[[], None], read: Callable[[dict[str, Any], Mapping[str, np.ndarray]], T]
) -> T:
    """`read(index, arrays)` of the entry, built first where it is missing; a damaged entry is removed
    and built again once (a second failure is a bug in writing entries, and keeps its traceback)."""
    if not (entry / "index.json").is_file():
        shutil.rmtree(entry, ignore_errors=True)  # a folder without its index was never finished
        build()
    try:
        return _read_entry(entry, read)
    except _DAMAGED_ENTRY:
        shutil.rmtree(entry, ignore_errors=True)
        build()
    return _read_entry(entry, read)


def _read_entry(entry: Path, read: Callable[[dict[str, Any], Mapping[str, np.ndarray]], T]) -> T:
    index = json.loads((entry / "index.json").read_text())
    with np.load(entry / "arrays.npz", allow_pickle=False) as arrays:
        return read(index, arrays)


def load_category(
    files: CategoryFiles,
    category: CategorySpec,
    spec: InputSpec,
    on_image: Callable[[], None] | None = None,
) -> CategoryTensors:
    """The category's tensors at `spec`, from the cache or decoded now (calling `on_image` per file)."""
    key = hashlib.sha256(f"{fingerprint(files)}|{spec.image_size}|{spec.channels}".encode()).hexdigest()[:24]
    entry = _entry("tensors", files.name, key)

    def read(index: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> CategoryTensors:
        tensors = {name: torch.from_numpy(arrays[name]) for name in ("train", "validation", "test", "masks")}
        return CategoryTensors(
            category=category,
            input_spec=spec,
            train=tensors["train"],
            validation=tensors["validation"],
            test=tensors["test"],
            test_masks=tensors["masks"],
            test_labels=arrays["labels"],
            test_defects=tuple(index["defects"]),
            test_names=tuple(index["names"]),
            regions=_regions_from(arrays),
            upscaled=tuple(index["upscaled"]),
            defects=_defects_from(arrays, files),
            unlabeled=torch.from_numpy(arrays["unlabeled"]) if files.unlabeled else None,
        )

    return _from_entry(entry, lambda: _build(files, spec, entry, on_image), read)


@dataclass(frozen=True)
class NativeMasks:
    """A category's test masks at the images' own resolution, for scoring maps made by other tools."""

    masks: np.ndarray  # (N, H, W) uint8, 1 = defect pixel
    regions: Regions
    labels: np.ndarray  # (N,) int, 1 = anomalous
    names: tuple[str, ...]  # test image paths relative to the dataset root
    defects: Defects | None = None  # MVTec LOCO's single defects, for sPRO

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of every test image and mask of the category."""
        return int(self.masks.shape[1]), int(self.masks.shape[2])


def load_native_masks(files: CategoryFiles) -> NativeMasks:
    """Masks at full resolution (zeros for defect-free images), checked and labelled once, then cached."""
    entry = _entry("masks", files.name, fingerprint(files))

    def build() -> None:
        sizes = {item.path: read_header(item.path)[1] for item in files.test}
        if len(set(sizes.values())) > 1:
            first = files.test[0].path
            odd = next(path for path, size in sizes.items() if size != sizes[first])
            raise AdbenchError(
                f"{odd}: {sizes[odd][0]}x{sizes[odd][1]} but {first.name} is "
                f"{sizes[first][0]}x{sizes[first][1]}; pixel metrics at the masks' size need one size per "
                "category (`adbench run --pixel-resolution input` scores at the detector's input size)"
            )
        width, height = sizes[files.test[0].path]
        masks, defects = _decode_masks(files, {item.path: (width, height) for item in files.test}, None)
        arrays = {"masks": masks, **_region_arrays(masks), **_labels(files), **defects}
        _store(entry, arrays, _index(files))

    def read(index: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> NativeMasks:
        return NativeMasks(
            arrays["masks"],
            _regions_from(arrays),
            arrays["labels"],
            tuple(index["names"]),
            _defects_from(arrays, files),
        )

    return _from_entry(entry, build, read)


def _region_arrays(masks: np.ndarray) -> dict[str, np.ndarray]:
    regions = label_regions(masks)
    return {"region_of_defect_pixel": regions.region_of_defect_pixel, "region_sizes": regions.sizes}


def _regions_from(arrays: Mapping[str, np.ndarray]) -> Regions:
    sizes = arrays["region_sizes"]
    return Regions(len(sizes), arrays["region_of_defect_pixel"], sizes)


def _defects_from(arrays: Mapping[str, np.ndarray], files: CategoryFiles) -> Defects | None:
    if files.defects_config is None:
        return None
    return Defects(
        arrays["defect_image"], arrays["defect_pixels"], arrays["defect_offsets"], arrays["defect_saturation"]
    )


def _labels(files: CategoryFiles) -> dict[str, np.ndarray]:
    return {"labels": np.array([int(item.is_anomalous) for item in files.test], dtype=np.int64)}


def _index(files: CategoryFiles) -> dict[str, list[str]]:
    return {
        "names": [str(item.path.relative_to(files.root)) for item in files.test],
        "defects": [item.defect for item in files.test],
    }


def _store(entry: Path, arrays: dict[str, np.ndarray], index: dict[str, list[str]]) -> None:
    """Write a cache entry folder atomically (built beside it, then renamed)."""
    try:
        with held_staging_folder(entry, "cache") as staging:
            tmp = staging / entry.name
            tmp.mkdir()
            np.savez(tmp / "arrays.npz", **arrays)  # type: ignore[arg-type]  # stubs read a key as allow_pickle
            (tmp / "index.json").write_text(json.dumps(index))
            os.replace(tmp, entry)
    except OSError as error:
        # Another process built the same entry first; its arrays are identical.
        if (entry / "index.json").is_file():
            return
        if error.errno in (errno.ENOSPC, errno.EDQUOT):  # the user's to fix: one line, not a traceback
            raise AdbenchError(
                f"{entry.parent}: cache entry not written, {os.strerror(error.errno).lower()}; free some "
                "space or point ADBENCH_CACHE_DIR at a disk that has it"
            ) from None
        raise


def _build(files: CategoryFiles, spec: InputSpec, entry: Path, on_image: Callable[[], None] | None) -> None:
    original_sizes: dict[Path, tuple[int, int]] = {}

    def images(paths: Sequence[Path]) -> np.ndarray:
        out = np.empty((len(paths), spec.channels, spec.image_size, spec.image_size), dtype=np.uint8)
        for i, path in enumerate(paths):
            image = open_image(path)
            original_sizes[path] = image.size
            out[i] = resized_array(image, spec, path).transpose(2, 0, 1)
            if on_image:
                on_image()
        return out

    test = images([item.path for item in files.test])
    masks, defects = _decode_masks(files, original_sizes, spec.image_size, on_image)
    arrays = {
        "train": images(files.train),
        "validation": images(files.validation),
        "test": test,
        "masks": masks,
        "unlabeled": images(files.unlabeled),
        **_region_arrays(masks),
        **_labels(files),
        **defects,
    }
    _store(entry, arrays, _index(files) | {"upscaled": _upscaled(files, original_sizes, spec)})


def _upscaled(files: CategoryFiles, sizes: Mapping[Path, tuple[int, int]], spec: InputSpec) -> list[str]:
    """Images smaller than the input side (enlarged to it); AdbenchError for one far too small."""
    small = {path: size for path, size in sizes.items() if min(size) < spec.image_size}
    for path, (width, height) in small.items():
        if min(width, height) < spec.image_size * _SMALLEST_SHARE_OF_INPUT:
            raise AdbenchError(
                f"{path}: {width}x{height} pixels, far too small for the detector's {spec.image_size} px "
                "input (enlarging it would invent nearly every pixel); replace it, or set a smaller "
                "image_size in the grid file's [params.METHOD] table"
            )
    return [str(path.relative_to(files.root)) for path in small]


def _decode_masks(
    files: CategoryFiles,
    image_sizes: Mapping[Path, tuple[int, int]],
    size: int | None,
    on_image: Callable[[], None] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every test image's mask, the union of its mask files, at size × size (nearest) or, when size is
    None, at the images' own size; and, for a format with a defects config, each file as one defect."""
    first = image_sizes[files.test[0].path]
    height, width = (size, size) if size is not None else (first[1], first[0])
    masks = np.zeros((len(files.test), height, width), dtype=np.uint8)
    defect_image, defect_pixels, saturation = [], [], []
    for i, item in enumerate(files.test):
        for mask_path in item.masks:
            binary, value = _decode_mask(mask_path, item.path, image_sizes[item.path], size)
            masks[i] |= binary
            if files.defects_config is not None:
                defect_image.append(i)
                defect_pixels.append(np.flatnonzero(binary))
                native_pixels = image_sizes[item.path][0] * image_sizes[item.path][1]
                saturation.append(_saturation(files.defects_config, mask_path, value, binary, native_pixels))
            if on_image:
                on_image()
    if files.defects_config is None:
        return masks, {}
    lengths = [len(pixels) for pixels in defect_pixels]
    return masks, {
        "defect_image": np.array(defect_image, dtype=np.int64),
        "defect_pixels": np.concatenate(defect_pixels) if defect_pixels else np.zeros(0, np.int64),
        "defect_offsets": np.r_[0, np.cumsum(lengths)].astype(np.int64),
        "defect_saturation": np.array(saturation, dtype=np.float64),
    }


def _saturation(
    config: DefectsConfig, mask_path: Path, value: int, binary: np.ndarray, native_pixels: int
) -> float:
    """The defect's saturation area in pixels at the size its mask was decoded to (`native_pixels`: its
    image's own pixel count, the scale of an absolute threshold)."""
    known = listed_defect(config, mask_path, value)
    area = int(np.count_nonzero(binary))
    # A defect too small to survive resizing to the input size stays counted: it cannot be found there.
    scale = binary.size / native_pixels
    return saturation_area(area, known.threshold, known.relative, scale)


def listed_defect(config: DefectsConfig, mask_path: Path, value: int) -> Saturation:
    """The defect `config` lists for a mask's pixel `value`; AdbenchError naming the mask when it lists
    none."""
    if value == _EMPTY:
        raise AdbenchError(f"{mask_path}: marks no pixel; remove the empty mask file")
    if value == _COLOUR:
        raise AdbenchError(
            f"{mask_path}: a colour mask; each defect's mask is grayscale, its pixels the defect's "
            f"pixel_value in {config.path}"
        )
    known = config.by_pixel_value.get(value)
    if known is None:
        listed = ", ".join(str(v) for v in sorted(config.by_pixel_value))
        raise AdbenchError(
            f"{mask_path}: its defect pixels are {value}, which {config.path.name} does not list "
            f"(it lists {listed}); add the defect to {config.path}"
        )
    return known


def check_listed_defect(config: DefectsConfig, mask_path: Path) -> None:
    """What a run checks of a mask against its defects config (`listed_defect`), for `adbench data info`."""
    mask = open_image(mask_path)
    listed_defect(config, mask_path, _defect_value(mask, defect_pixels(mask)))


# What `_defect_value` gives for a mask without one: no pixel is a defect's, or the mask is in colour.
_EMPTY, _COLOUR = -1, -2


def _defect_value(mask: Image.Image, defect: np.ndarray) -> int:
    """The value most of the mask's `defect` pixels hold (MVTec LOCO's defect id); _EMPTY or _COLOUR
    when it holds none."""
    if not defect.any():
        return _EMPTY
    if mask.mode not in GRAY_MODES:
        return _COLOUR
    values, counts = np.unique(np.asarray(mask)[defect], return_counts=True)
    return int(values[np.argmax(counts)])


def _decode_mask(
    mask_path: Path, image_path: Path, image_size: tuple[int, int], size: int | None
) -> tuple[np.ndarray, int]:
    """Binary mask, resized (nearest) to size × size, or at its own resolution when size is None; and
    the value most of its defect pixels hold (MVTec LOCO's defect id)."""
    mask = open_image(mask_path)
    if mask.size != image_size:
        raise mask_size_error(mask_path, mask.size, image_path, image_size)
    defect = defect_pixels(mask)
    value = _defect_value(mask, defect)
    binary = Image.fromarray(defect.astype(np.uint8))
    if size is not None:
        binary = binary.resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(binary, dtype=np.uint8), value
