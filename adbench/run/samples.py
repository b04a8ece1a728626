"""The few test images per cell that `adbench run` keeps for the report's qualitative figures: each
image with its reconstruction, anomaly map and ground-truth mask (samples.npz in the cell folder).

Every method of a category keeps the same images (chosen from labels and defect types only), so the
figure can set the methods side by side.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adbench.atomic import write_atomic
from adbench.errors import AdbenchError

SAMPLES_FILE = "samples.npz"
SAMPLE_COUNT = 4


@dataclass(frozen=True)
class Samples:
    names: np.ndarray  # (K,) str, paths relative to the dataset root
    labels: np.ndarray  # (K,) int, 1 = anomalous
    images: np.ndarray  # (K, C, H, W) uint8, what the method saw
    masks: np.ndarray  # (K, H, W) bool
    maps: np.ndarray | None  # (K, H, W) float32
    reconstructions: np.ndarray | None  # (K, C', H, W) uint8


def pick_samples(labels: np.ndarray, defects: tuple[str, ...], count: int = SAMPLE_COUNT) -> list[int]:
    """Test-set indices in the figure's row order: the first defect-free image, then the first image of
    each defect type (in the order the types first appear), then further ones in turn, up to `count`.
    Not in test-set order: folders sort by name, which puts `good` after `broken_*` and `crack`."""
    good = [i for i, label in enumerate(labels) if label == 0][:1]
    by_defect: dict[str, list[int]] = {}
    for i, (label, defect) in enumerate(zip(labels, defects, strict=True)):
        if label == 1:
            by_defect.setdefault(defect, []).append(i)
    anomalous: list[int] = []
    for rank in range(max((len(indices) for indices in by_defect.values()), default=0)):
        anomalous += [indices[rank] for indices in by_defect.values() if rank < len(indices)]
    return good + anomalous[: max(0, count - len(good))]


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def write_samples(
    path: Path,
    samples: Samples,
) -> None:
    arrays = {
        "names": samples.names,
        "labels": samples.labels,
        "images": samples.images,
        "masks": samples.masks,
    }
    if samples.maps is not None:
        arrays["maps"] = samples.maps
    if samples.reconstructions is not None:
        arrays["reconstructions"] = samples.reconstructions

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as stream:
            np.savez_compressed(stream, **arrays)  # type: ignore[arg-type]  # stubs read a key as allow_pickle

    write_atomic(path, write)


def collect_samples(
    indices: list[int],
    names: tuple[str, ...],
    labels: np.ndarray,
    images: torch.Tensor,
    masks: torch.Tensor,
    maps: np.ndarray | None,
    reconstructions: torch.Tensor | None,
) -> Samples:
    """The chosen test images' arrays; `images` uint8 (N, C, H, W), `reconstructions` in [0, 1] for
    the chosen images only."""
    return Samples(
        names=np.array([names[i] for i in indices]),
        labels=np.asarray(labels)[indices].astype(np.int64),
        images=images[indices].cpu().numpy(),
        masks=masks[indices].numpy().astype(bool),
        maps=None if maps is None else maps[indices].astype(np.float32),
        reconstructions=None if reconstructions is None else _to_uint8(reconstructions),
    )


def read_samples(path: Path) -> Samples:
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
        return Samples(
            names=arrays["names"],
            labels=arrays["labels"],
            images=arrays["images"],
            masks=arrays["masks"],
            maps=arrays.get("maps"),
            reconstructions=arrays.get("reconstructions"),
        )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise AdbenchError(
            f"{path}: unreadable qualitative samples ({error}); delete it to leave it out of the report"
        ) from None
