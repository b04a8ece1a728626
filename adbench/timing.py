"""Inference timing, measured the same way for every method, single-pass or iterative.

- Latency: one image scored `repeats` times after one warm-up call; the median and the 95th percentile
  in milliseconds per image.
- Throughput: images per second over the whole test set, scored in batches of the evaluation size.

On a GPU every measurement waits for the device (torch.cuda.synchronize) before reading the clock.
The rows use the metric names of `TIMING_METRICS`; thread count and device go into the run manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from adbench.detector import Detector

FIT_SECONDS = "fit_s"
LATENCY_MEDIAN = "infer_ms_per_image"
LATENCY_P95 = "infer_ms_per_image_p95"
THROUGHPUT = "infer_images_per_s"
TIMING_METRICS = (FIT_SECONDS, LATENCY_MEDIAN, LATENCY_P95, THROUGHPUT)

Result = TypeVar("Result")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], Result]) -> tuple[Result, float]:
    """Run `work` and return its result and the wall-clock seconds it took on `device`."""
    synchronize(device)
    started = time.perf_counter()
    result = work()
    synchronize(device)
    return result, time.perf_counter() - started


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p95_ms: float
    repeats: int


def measure_latency(detector: Detector, image: torch.Tensor, repeats: int) -> Latency:
    """Per-image latency of `detector.score` on one (1, C, H, W) image, after a warm-up call."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    detector.score(image)
    seconds = [timed(detector.device, lambda: detector.score(image))[1] for _ in range(repeats)]
    milliseconds = np.asarray(seconds) * 1000
    return Latency(float(np.median(milliseconds)), float(np.percentile(milliseconds, 95)), repeats)


def timing_metrics(
    fit_seconds: float | None, latency: Latency, images: int, score_seconds: float
) -> dict[str, float]:
    """The timing rows of one cell; fit time only when the cell trained."""
    metrics = {
        LATENCY_MEDIAN: latency.median_ms,
        LATENCY_P95: latency.p95_ms,
        THROUGHPUT: images / score_seconds,
    }
    return metrics if fit_seconds is None else {FIT_SECONDS: fit_seconds, **metrics}


def iterative_cost(results: pd.DataFrame, inference_kinds: dict[str, str]) -> pd.DataFrame:
    """Per category: each iterative method's median latency over the fastest single-pass method's."""
    latency = results[results["metric"] == LATENCY_MEDIAN].groupby(["category", "method"])["value"].mean()
    rows = []
    for category, per_method in latency.groupby(level="category"):
        per_method = per_method.droplevel("category")
        single = per_method[[inference_kinds.get(m) == "single-pass" for m in per_method.index]]
        if single.empty:
            continue
        for method, value in per_method.items():
            if inference_kinds.get(method) == "iterative":
                rows.append(
                    {
                        "category": category,
                        "method": method,
                        "versus": single.idxmin(),
                        "ratio": value / single.min(),
                    }
                )
    return pd.DataFrame(rows, columns=["category", "method", "versus", "ratio"])
