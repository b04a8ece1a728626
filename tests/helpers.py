"""Small training helpers that several method tests share."""

from __future__ import annotations

from pathlib import Path

import torch

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.layout import read_category
from adbench.detector import Detector, TrainingBudget
from adbench.metrics.image import image_auroc


def smoke_auroc(
    method: type[Detector], root: Path, name: str, kind: str, steps: int, batch_size: int = 8
) -> float:
    """Image AUROC on the test set of `name` after `steps` seeded steps at the smoke parameters."""
    files = read_category(root, name, kind)
    category = describe(files)
    torch.manual_seed(0)
    detector = method(method.default_params(category, "smoke"))
    tensors = load_category(files, category, detector.input_spec)
    if steps:
        detector.fit(CategoryTensors.as_float(tensors.train), TrainingBudget(steps, batch_size))
    return image_auroc(
        tensors.test_labels, detector.score(CategoryTensors.as_float(tensors.test)).image_scores
    )
