"""Does a trained detector's output depend on its input? The `input_sensitivity` check of every cell.

A reconstruction model can collapse to one template image: it then rebuilds every input into the same
picture, its anomaly map is the distance to that template, and its AUROC can still look good (a
defect changes the distance). So after `fit` every cell measures, on up to `MAX_IMAGES` defect-free
images (the validation split, topped up with training images where it is smaller; never test data),

    input_sensitivity = mean over pairs i < j of mean |r(x_i) − r(x_j)|  /  the same of |x_i − x_j|

with r the detector's `reconstruct` output: 1 when reconstructions differ as much as the inputs, 0 when
they are identical. A method without `reconstruct` is measured on its anomaly maps instead, relative to
their mean magnitude: mean over pairs of mean |m_i − m_j| / mean |m|. A cell below `COLLAPSE_THRESHOLD`
is flagged as "output does not depend on the input". The threshold sits between what was measured on
either side: collapsed autoencoders 1e-6 to 1e-4 (before their initialisation was fixed), the built-in
methods at the default budget on the synthetic data 0.07 (cbigan on pin, whose images differ only by
their defects) to 2.3 (egbad on pin, which redraws more than it reconstructs). The one collapse found at
that budget is real: ssimae on sand, 0.0 (methods/autoencoder/ssim.py says why).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from adbench.detector import Detector

INPUT_SENSITIVITY = "input_sensitivity"
COLLAPSE_THRESHOLD = 0.02
COLLAPSE_WARNING = "output does not depend on the input"
MAX_IMAGES = 8


def _mean_pairwise_difference(values: np.ndarray) -> float:
    """Mean over pairs i < j of the mean absolute difference of values[i] and values[j]."""
    flat = values.reshape(len(values), -1).astype(np.float64)
    pairs = itertools.combinations(range(len(flat)), 2)
    return float(np.mean([np.abs(flat[i] - flat[j]).mean() for i, j in pairs]))


def input_sensitivity(detector: Detector, images: torch.Tensor) -> float:
    """The sensitivity above for float images (N, C, H, W) in [0, 1], N >= 2; NaN when N < 2 or the
    inputs are all identical (nothing to measure against)."""
    images = images[:MAX_IMAGES]
    if len(images) < 2:
        return float("nan")
    reconstructions = detector.reconstruct(images)
    if reconstructions is not None:
        scale = _mean_pairwise_difference(images.cpu().numpy())
        outputs = reconstructions.float().cpu().numpy()
    else:
        maps = detector.score(images).anomaly_maps
        if maps is None:  # image scores only: nothing spatial to compare
            return float("nan")
        outputs = np.asarray(maps, dtype=np.float64)
        scale = float(np.abs(outputs).mean())
    if not np.isfinite(scale) or scale == 0.0:
        # Maps that are zero everywhere are one constant output; identical inputs measure nothing.
        return 0.0 if scale == 0.0 and reconstructions is None else float("nan")
    return _mean_pairwise_difference(outputs) / scale


def is_collapsed(sensitivity: float) -> bool:
    """True for a measured sensitivity below the threshold (NaN, not measurable, is not a collapse)."""
    return bool(np.isfinite(sensitivity) and sensitivity < COLLAPSE_THRESHOLD)
