"""Anomaly maps laid out as the MVTec AD evaluation expects them, read to score any tool's maps
(`adbench evaluate`) and written by `adbench run --save-maps`:

    MAPS/<category>/test/<defect>/<image name>.tiff   (or .tif, or .npy)

one float32 channel per map, at the size of the ground-truth mask. Every test image of the dataset needs
its map, and every map its test image. Image scores are the maps' maxima. The metric code is the one
`adbench run` uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from PIL import Image

from adbench.atomic import held_staging_folder
from adbench.data.cache import NativeMasks, load_native_masks
from adbench.data.decode import DECODE_ERRORS
from adbench.data.formats import read_dataset
from adbench.data.layout import CategoryFiles
from adbench.errors import AdbenchError
from adbench.evaluation.evaluate import image_metrics, map_metrics, upsample_maps

MAP_SUFFIXES = (".tiff", ".tif", ".npy")


def read_map(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """One anomaly map as a float32 array of `shape` (H, W), the mask's; AdbenchError naming the file
    otherwise. The size in the file's header is checked before any pixel is read, so a header that
    claims 10^12 pixels allocates nothing."""
    try:
        with warnings.catch_warnings():
            # Pillow warns of damage it reads past (corrupt EXIF data): one more line on the terminal,
            # about a file whose pixels are checked right here.
            warnings.simplefilter("ignore", UserWarning)
            array = _read_npy(path, shape) if path.suffix == ".npy" else _read_image(path, shape)
    except DECODE_ERRORS as error:
        raise AdbenchError(f"{path}: unreadable anomaly map ({error})") from None
    array = array.astype(np.float32, copy=False).reshape(shape)
    if not np.isfinite(array).all():
        raise AdbenchError(f"{path}: anomaly map contains NaN or infinite values")
    return array


def _read_npy(path: Path, shape: tuple[int, int]) -> np.ndarray:
    headers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version not in headers:  # 3.0 exists only for structured dtypes' unicode field names
            raise ValueError(f".npy format {version[0]}.{version[1]}; save the map with numpy.save")
        stored_shape, _, dtype = headers[version](handle)
        if dtype.kind not in "biuf":
            raise AdbenchError(f"{path}: anomaly map of dtype {dtype}; expected plain numbers, e.g. float32")
        _check_shape(path, stored_shape, shape)
        handle.seek(0)
        return np.lib.format.read_array(handle, allow_pickle=False)


def _read_image(path: Path, shape: tuple[int, int]) -> np.ndarray:
    with warnings.catch_warnings():
        # Pillow warns from 89 M pixels on; the size is checked against the mask's right below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(path)
    with image:
        if image.mode in ("P", "PA"):
            raise AdbenchError(
                f"{path}: a palette image, whose pixels are colour indices, not scores; write the map as "
                "one float32 channel"
            )
        # Only the first page would be read: the map meant may be any of them.
        if getattr(image, "is_animated", False):
            raise AdbenchError(
                f"{path}: a file of several pages (images); write each map to a file of its own"
            )
        _check_shape(path, (image.height, image.width, len(image.getbands())), shape)
        return np.asarray(image)


def _check_shape(path: Path, stored: tuple[int, ...], shape: tuple[int, int]) -> None:
    if len(stored) == 3 and stored[-1] == 1:
        stored = stored[:2]
    if len(stored) != 2:
        raise AdbenchError(f"{path}: anomaly map of shape {stored}; expected one channel (H, W)")
    if stored != shape:
        raise AdbenchError(
            f"{path}: map is {stored[1]}x{stored[0]} but its ground truth is {shape[1]}x{shape[0]}; "
            "write maps at the size of the masks"
        )


def _map_stem(maps_root: Path, files: CategoryFiles, image: Path) -> Path:
    """MAPS/<category>/test/<defect>/<image name>, without a suffix."""
    return maps_root / files.name / image.relative_to(files.root / files.name).with_suffix("")


def write_maps(maps_root: Path, files: CategoryFiles, maps: np.ndarray) -> None:
    """The category's test maps (in the dataset's test order, at the masks' size) as float32 TIFFs under
    `maps_root`, which must not exist: built in a hidden folder beside it, then renamed into place."""
    with held_staging_folder(maps_root, "maps") as staging:
        for item, anomaly_map in zip(files.test, maps, strict=True):
            path = _map_stem(staging / maps_root.name, files, item.path).with_suffix(".tiff")
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(anomaly_map, dtype=np.float32)).save(path)
        (staging / maps_root.name).rename(maps_root)


def write_submission(submission_root: Path, files: CategoryFiles, maps: np.ndarray) -> None:
    """The unlabeled test images' maps as MVTec AD 2's evaluation server takes them, under
    `submission_root` (which must not exist): <category>/<split>/<image stem>.tiff, float16, one channel,
    each at its image's size (`maps` are upsampled bilinearly to it)."""
    with held_staging_folder(submission_root, "maps") as staging:
        for image, anomaly_map in zip(files.unlabeled, maps, strict=True):
            with Image.open(image) as opened:
                width, height = opened.size
            path = _map_stem(staging / submission_root.name, files, image).with_suffix(".tiff")
            path.parent.mkdir(parents=True, exist_ok=True)
            full = upsample_maps(np.asarray(anomaly_map, dtype=np.float32)[None], (height, width))[0]
            tifffile.imwrite(path, full.astype(np.float16))
        (staging / submission_root.name).rename(submission_root)


def _map_path(maps_root: Path, files: CategoryFiles, image: Path) -> Path:
    stem = _map_stem(maps_root, files, image)
    found = [stem.with_suffix(s) for s in MAP_SUFFIXES]
    found = [path for path in found if path.is_file()]
    if not found:
        raise AdbenchError(f"{stem}.tiff: missing anomaly map for {image} (.tiff, .tif or .npy accepted)")
    if len(found) > 1:
        raise AdbenchError(f"{found[0]}: also given as {found[1].name}; keep one map per image")
    return found[0]


def load_maps(maps_root: Path, files: CategoryFiles, truth: NativeMasks) -> np.ndarray:
    """(N, H, W) float32 maps in the dataset's test order, every one checked against its mask."""
    category_dir = maps_root / files.name
    if not category_dir.is_dir():
        raise AdbenchError(f"{category_dir}: no anomaly maps for category {files.name!r}")
    height, width = truth.masks.shape[1:]
    maps = np.empty(truth.masks.shape, dtype=np.float32)
    used = set()
    for i, item in enumerate(files.test):
        path = _map_path(maps_root, files, item.path)
        maps[i] = read_map(path, (height, width))
        used.add(path.resolve())
    for path in sorted(category_dir.rglob("*")):
        if path.suffix in MAP_SUFFIXES and path.is_file() and path.resolve() not in used:
            raise AdbenchError(f"{path}: a map for an image that is not in the dataset's {files.name}/test")
    return maps


def evaluate_maps(
    dataset: Path,
    maps_root: Path,
    categories: Sequence[str] | None,
    kinds: dict[str, str],
    on_category: Callable[[str], None] | None = None,
    data_format: str | None = None,
    on_skipped: Callable[[list[str]], None] | None = None,
) -> pd.DataFrame:
    """Metrics per category: a frame with columns category, category_kind, metric, value.

    With `categories` None, the dataset's categories that have a folder of maps are scored and the
    others named in `on_skipped` (a tool that made maps for some categories only is scored on those);
    a category asked for by name must have its maps."""
    if not maps_root.is_dir():
        raise AdbenchError(f"{maps_root}: anomaly-map folder not found")
    found = read_dataset(dataset, categories, kinds, data_format).files
    if categories is None:
        without = [name for name in found if not (maps_root / name).is_dir()]
        if len(without) == len(found):
            raise AdbenchError(
                f"{maps_root}: no folder of maps for any category of {dataset} ({', '.join(found)}); "
                "expected MAPS/<category>/test/<defect>/<image>.tiff"
            )
        if without and on_skipped:
            on_skipped(without)
        found = {name: files for name, files in found.items() if name not in without}
    rows = []
    for name, files in found.items():
        if on_category:
            on_category(name)
        truth = load_native_masks(files)
        maps = load_maps(maps_root, files, truth)
        metrics = image_metrics(truth.labels, maps.reshape(len(maps), -1).max(axis=1).astype(np.float64))
        types = [item.defect for item in files.test]
        pixel = map_metrics(
            truth.labels, maps, truth.masks, truth.regions, defects=truth.defects, defect_types=types
        ).metrics
        del maps
        for metric, value in (metrics | pixel).items():
            rows.append({"category": name, "category_kind": files.kind, "metric": metric, "value": value})
    return pd.DataFrame(rows, columns=["category", "category_kind", "metric", "value"])
