"""Scoring anomaly maps made by any tool, laid out as the MVTec AD evaluation expects them:

    MAPS/<category>/test/<defect>/<image name>.tiff   (or .tif, or .npy)

one float32 channel per map, at the size of the ground-truth mask. Every test image of the dataset needs
its map, and every map its test image. Image scores are the maps' maxima. The metric code is the one
`adbench run` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from adbench.data.cache import NativeMasks, load_native_masks
from adbench.data.layout import CategoryFiles, order_categories, read_category, read_kinds, resolve_categories
from adbench.errors import AdbenchError
from adbench.evaluation import image_metrics, map_metrics

MAP_SUFFIXES = (".tiff", ".tif", ".npy")


def read_map(path: Path) -> np.ndarray:
    """One anomaly map as a 2-D float32 array; AdbenchError naming the file otherwise."""
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as image:
                array = np.asarray(image)
    except (OSError, ValueError, UnidentifiedImageError) as error:
        raise AdbenchError(f"{path}: unreadable anomaly map ({error})") from None
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise AdbenchError(f"{path}: anomaly map of shape {array.shape}; expected one channel (H, W)")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise AdbenchError(f"{path}: anomaly map contains NaN or infinite values")
    return array


def _map_path(category_dir: Path, files: CategoryFiles, image: Path) -> Path:
    relative = image.relative_to(files.root / files.name).with_suffix("")
    found = [category_dir / relative.with_suffix(s) for s in MAP_SUFFIXES]
    found = [path for path in found if path.is_file()]
    if not found:
        raise AdbenchError(
            f"{category_dir / relative}.tiff: missing anomaly map for {image} (.tiff, .tif or .npy accepted)"
        )
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
        path = _map_path(category_dir, files, item.path)
        array = read_map(path)
        if array.shape != (height, width):
            raise AdbenchError(
                f"{path}: map is {array.shape[1]}x{array.shape[0]} but its ground truth is {width}x{height}; "
                "write maps at the size of the masks"
            )
        maps[i] = array
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
) -> pd.DataFrame:
    """Metrics per category: a frame with columns category, category_kind, metric, value."""
    if not maps_root.is_dir():
        raise AdbenchError(f"{maps_root}: anomaly-map folder not found")
    names = resolve_categories(dataset, categories)
    resolved_kinds = read_kinds(dataset, names, kinds)
    names = order_categories(names, resolved_kinds)
    # Check every category's layout before the slow part, so a typo fails at once.
    all_files = {name: read_category(dataset, name, resolved_kinds[name]) for name in names}
    rows = []
    for name, files in all_files.items():
        if on_category:
            on_category(name)
        truth = load_native_masks(files)
        maps = load_maps(maps_root, files, truth)
        metrics = image_metrics(truth.labels, maps.reshape(len(maps), -1).max(axis=1).astype(np.float64))
        pixel, _ = map_metrics(truth.labels, maps, truth.masks, truth.regions)
        del maps
        for metric, value in (metrics | pixel).items():
            rows.append({"category": name, "category_kind": files.kind, "metric": metric, "value": value})
    return pd.DataFrame(rows, columns=["category", "category_kind", "metric", "value"])
