"""Does a trained detector's output depend on its input? The `input_sensitivity` check of every cell.

A reconstruction model can collapse to one template image: it then rebuilds every input into the same
picture, its anomaly map is the distance to that template, and its AUROC can still look good (a
defect changes the distance). So after `fit` every cell measures, on up to `MAX_IMAGES` defect-free
images (the validation split, topped up with training images where it is smaller; never test data),
how much of the difference between two inputs reappears in their reconstructions:

    input_sensitivity = Σ_i <x_i − x̄, r_i − r̄>  /  Σ_i |x_i − x̄|²

with r the detector's `reconstruct` output and x̄, r̄ the means over the images: the least-squares slope
of the reconstructions on the inputs, pixel by pixel (equivalently, over pairs, Σ <x_i − x_j, r_i − r_j>
/ Σ |x_i − x_j|²). 1 when reconstructions equal the inputs, ½ for x/2 + c, 0 for one template, and
also 0 for a template whose small variations do not follow the input. That last case is why it is a
projection and not a ratio of magnitudes (issue 29, item 4): until then the figure was mean |r_i −
r_j| / mean |x_i − x_j|, and the smoke budget's CBiGAN and EGBAD on the synthetic objects read 0.06 to
0.15, well above the flag, while their sample figures showed one flat template. Both were right about
different things: their reconstructions did differ (the generator redraws its template from a latent
that moves with the input), but the differences did not follow the input's (correlation of r_i − r_j
with x_i − x_j −0.04 to −0.17). Measured on the gate's smoke grid (synthetic data, seed 0, portable
kernels; reports/baselines/smoke-synthetic.json), the former ratio → this share:

    l2ae    pin 1.69 → 0.41    washer 0.52 → 0.12     sand 0.48 → 0.40    weave 0.11 → 0.021
    ssimae  pin 0.049 → 0.002  washer 0.70 → 0.15     sand 0.012 → 0.008  weave 0.037 → 0.013
    cbigan  pin 0.14 → −0.002  washer 0.14 → −0.013   sand 0.12 → 0.094   weave 0.010 → −0.001
    egbad   pin 0.074 → −0.001 washer 0.067 → −0.006  sand 0.13 → 0.107   weave 0.012 → 0.001
    anogan  pin 1.05 → 0.001   washer 0.77 → 0.003    sand 0.15 → 0.045   weave 0.18 → 0.003

Looked at beside their reconstructions, the figures and the number now tell one story: cbigan, egbad
and anogan on the objects draw one flat or noisy picture whatever the input; both autoencoders on weave
draw one grid of patch seams without the weave (0.013, 0.021); l2ae's washers and pins move with the
input. At the `default` budget on real photographs (tests/photos.py, seed 1) the autoencoders read
0.25 (the cup, an object on a plain ground) to 0.81. The slope is taken at the input's own resolution;
pooling to 8 × 8 cells first changed no decision. A method without `reconstruct` is measured on its
anomaly maps instead, relative to their mean magnitude: mean over pairs of mean |m_i − m_j| / mean |m|
(a map has no input to follow).

A cell below `COLLAPSE_THRESHOLD` (0.05) is flagged as "output does not depend on the input". It sits
above every template seen (collapsed autoencoders 1e-6 to 1e-4 before their initialisation was fixed;
the smoke cells above up to 0.045) and below every cell whose reconstructions follow the input (0.094
and up; 0.12 for l2ae's washer at the smoke budget).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from adbench.detector import Detector

INPUT_SENSITIVITY = "input_sensitivity"
COLLAPSE_THRESHOLD = 0.05
COLLAPSE_WARNING = "output does not depend on the input"
MAX_IMAGES = 8


def _mean_pairwise_difference(values: np.ndarray) -> float:
    """Mean over pairs i < j of the mean absolute difference of values[i] and values[j]."""
    flat = values.reshape(len(values), -1).astype(np.float64)
    pairs = itertools.combinations(range(len(flat)), 2)
    return float(np.mean([np.abs(flat[i] - flat[j]).mean() for i, j in pairs]))


def _reproduced_share(inputs: torch.Tensor, reconstructions: torch.Tensor) -> float:
    """The least-squares slope of `reconstructions` on `inputs` (N, C, H, W) about their means over
    the N images; NaN when the inputs are all identical. A reconstruction of other channels than its
    input (gray from colour) is compared on the channels' mean, one of another size at the smaller
    size (both averaged down to it)."""
    inputs, reconstructions = inputs.double(), reconstructions.double()
    if inputs.shape[1] != reconstructions.shape[1]:
        inputs, reconstructions = inputs.mean(1, keepdim=True), reconstructions.mean(1, keepdim=True)
    if inputs.shape[2:] != reconstructions.shape[2:]:
        size = (
            min(inputs.shape[2], reconstructions.shape[2]),
            min(inputs.shape[3], reconstructions.shape[3]),
        )
        inputs = torch.nn.functional.adaptive_avg_pool2d(inputs, size)
        reconstructions = torch.nn.functional.adaptive_avg_pool2d(reconstructions, size)
    x = (inputs - inputs.mean(0)).flatten()
    r = (reconstructions - reconstructions.mean(0)).flatten()
    spread = float(x @ x)
    return float(x @ r) / spread if spread > 0 else float("nan")


def input_sensitivity(detector: Detector, images: torch.Tensor) -> float:
    """The sensitivity above for float images (N, C, H, W) in [0, 1], N >= 2; NaN when N < 2 or the
    inputs are all identical (nothing to measure against)."""
    images = images[:MAX_IMAGES]
    if len(images) < 2:
        return float("nan")
    reconstructions = detector.reconstruct(images)
    if reconstructions is not None:
        return _reproduced_share(images.cpu(), reconstructions.float().cpu())
    maps = detector.score(images).anomaly_maps
    if maps is None:  # image scores only: nothing spatial to compare
        return float("nan")
    outputs = np.asarray(maps, dtype=np.float64)
    scale = float(np.abs(outputs).mean())
    if not np.isfinite(scale):
        return float("nan")
    if scale == 0.0:  # maps that are zero everywhere are one constant output
        return 0.0
    return _mean_pairwise_difference(outputs) / scale


def is_collapsed(sensitivity: float) -> bool:
    """True for a measured sensitivity below the threshold (NaN, not measurable, is not a collapse)."""
    return bool(np.isfinite(sensitivity) and sensitivity < COLLAPSE_THRESHOLD)
