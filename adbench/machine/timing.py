"""Inference timing, measured the same way for every method, single-pass or iterative, and what the machine
was doing meanwhile.

- Latency: one image scored `repeats` times after one warm-up call; the median (with a distribution-free
  95 % interval from its order statistics, from 6 repeats on) and the 95th percentile, in milliseconds.
- Throughput: images per second over the whole test set, scored in batches of the evaluation size.

On a GPU every measurement waits for the device (torch.cuda.synchronize) before reading the clock. Every
measurement (fit, latency, throughput) runs with torch's thread count pinned and records a `MachineLoad`:
the 1-minute load average before and after, the process's CPU time against wall time, and how long its
threads waited for a core. A measurement taken on a contended machine is off by up to hundreds of times
(another process's threads take the cores), so it is marked, and the iterative/single-pass ratio leaves
such cells out unless asked.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import torch
from scipy.stats import binom

from adbench.detector import Detector
from adbench.machine.sharing import load_average

if TYPE_CHECKING:
    from adbench.run.folder import Manifest

FIT_SECONDS = "fit_s"
LATENCY_MEDIAN = "infer_ms_per_image"
LATENCY_P95 = "infer_ms_per_image_p95"
THROUGHPUT = "infer_images_per_s"
TIMING_METRICS = (FIT_SECONDS, LATENCY_MEDIAN, LATENCY_P95, THROUGHPUT)

# A process's own busy threads count in the load average, so a quiet machine whose cores are all taken by
# this run reads about the core count; half a task more means some other process wanted a core.
LOAD_MARGIN = 0.5
# Measured on 2 cores: threads of a quiet machine wait for a core 0.3-4 % of the time they run (most in
# the shortest measurements); beside one or more busy processes, 50-200 %.
WAIT_SHARE = 0.25
# ...and at least this long: in a measurement of a few milliseconds one wake-up of another thread (the
# progress bar's own refresh) reads as a large share.
MIN_WAIT_SECONDS = 0.02
# torch's CPU threads spin while they wait for work, so quiet CPU time is about wall time × threads
# (0.7-1.0× measured, training's Python steps lowest); another process sharing the cores brings it to a
# half or less.
CPU_SHARE = 0.5
MEDIAN_LEVEL = 0.95

Result = TypeVar("Result")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _waited_for_core() -> float | None:
    """Seconds this process's threads have spent runnable but waiting for a core (Linux schedstat)."""
    total = 0
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile, or no schedstat
            continue
    return total / 1e9


@dataclass(frozen=True)
class MachineLoad:
    """What the machine was doing during one timed measurement."""

    wall_seconds: float
    cpu_seconds: float  # this process, all threads
    waited_seconds: float | None  # its threads runnable without a core; None where the OS does not say
    threads: int  # torch's intra-op threads, pinned for the measurement
    load_before: float  # 1-minute load average
    load_after: float
    cores: int
    device_type: str

    @property
    def contention(self) -> str | None:
        """Why the measurement cannot be trusted, in words; None on a quiet machine.

        Where Linux says how long the threads waited for a core (a quarter of their CPU time, 20 ms at
        least), that decides: the load average lags by about a minute (it still reads high a minute
        after a busy process ended, and low in the first seconds of a new one). Elsewhere: load above
        the cores, or CPU time below half of wall × threads.
        """
        cpu = max(self.cpu_seconds, 1e-9)
        if self.waited_seconds is not None:
            share = self.waited_seconds / cpu
            waited = share > WAIT_SHARE and self.waited_seconds > MIN_WAIT_SECONDS
            return f"threads waited for a core {share:.0%} of their CPU time" if waited else None
        reasons = []
        load = max(self.load_before, self.load_after)
        if load > self.cores + LOAD_MARGIN:
            reasons.append(f"load {load:.1f} on {self.cores} cores")
        if self.device_type == "cpu" and cpu < CPU_SHARE * self.wall_seconds * self.threads:
            reasons.append(f"CPU time {cpu / self.wall_seconds:.2f}× wall time on {self.threads} threads")
        return "; ".join(reasons) or None

    def to_json(self) -> dict[str, Any]:
        return {
            **{key: _rounded(value) for key, value in asdict(self).items()},
            "contended": self.contention,
        }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)  # JSON has no NaN
    return value


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """torch's thread count held at `threads` for the block, whatever the detector does with it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def timed(device: torch.device, work: Callable[[], Result]) -> tuple[Result, float]:
    """Run `work` and return its result and the wall-clock seconds it took on `device`."""
    synchronize(device)
    started = time.perf_counter()
    result = work()
    synchronize(device)
    return result, time.perf_counter() - started


def measured(device: torch.device, work: Callable[[], Result]) -> tuple[Result, MachineLoad]:
    """`timed`, at the current thread count pinned, with the machine's load during the work."""
    threads = torch.get_num_threads()
    load_before, waited_before, cpu_before = load_average(), _waited_for_core(), time.process_time()
    with pinned_threads(threads):
        result, wall = timed(device, work)
    cpu, waited_after = time.process_time() - cpu_before, _waited_for_core()
    waited = None if waited_before is None or waited_after is None else waited_after - waited_before
    load = MachineLoad(
        wall, cpu, waited, threads, load_before, load_average(), available_cores(), device.type
    )
    return result, load


def median_interval(values: np.ndarray, level: float = MEDIAN_LEVEL) -> tuple[float, float] | None:
    """Distribution-free interval of the median: the order statistics (k, n + 1 − k) with the largest k
    whose coverage 1 − 2·P(Binomial(n, ½) < k) is at least `level`; None below 6 values."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    ks = np.arange(1, n // 2 + 1)
    covering = ks[1 - 2 * binom.cdf(ks - 1, n, 0.5) >= level]
    if len(covering) == 0:
        return None
    k = int(covering.max())
    return float(ordered[k - 1]), float(ordered[n - k])


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p95_ms: float
    repeats: int
    interval_ms: tuple[float, float] | None  # of the median; None below 6 repeats
    load: MachineLoad  # over all repeats


def measure_latency(
    detector: Detector, image: torch.Tensor, repeats: int, on_call: Callable[[], None] | None = None
) -> Latency:
    """Per-image latency of `detector.score` on one (1, C, H, W) image, after a warm-up call.

    `on_call` runs after the warm-up and after each repeat, outside the timed calls (a progress bar:
    an iterative method's repeats take minutes)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    after_call = on_call or (lambda: None)
    detector.score(image)
    after_call()

    def repeat() -> float:
        seconds = timed(detector.device, lambda: detector.score(image))[1]
        after_call()
        return seconds

    seconds, load = measured(detector.device, lambda: [repeat() for _ in range(repeats)])
    milliseconds = np.asarray(seconds) * 1000
    return Latency(
        float(np.median(milliseconds)),
        float(np.percentile(milliseconds, 95)),
        repeats,
        median_interval(milliseconds),
        load,
    )


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


def contended_cells(manifests: list[Manifest]) -> dict[tuple[str, str, int], str]:
    """(method, category, seed) -> which of its timings were taken on a contended machine, and why."""
    return {
        cell.key: "; ".join(f"{name}: {why}" for name, why in cell.contention().items())
        for manifest in manifests
        for cell in manifest.cells
        if cell.contention()
    }


def iterative_cost(
    results: pd.DataFrame,
    inference_kinds: dict[str, str],
    contended: AbstractSet[tuple[str, str, int]] = frozenset(),
) -> pd.DataFrame:
    """Per category: each iterative method's median latency over the fastest single-pass method's, from
    the cells not in `contended` (their latency says more about the other processes than the method)."""
    rows = results[results["metric"] == LATENCY_MEDIAN]
    quiet = [
        (row.method, row.category, int(row.seed)) not in contended
        for row in rows[["method", "category", "seed"]].itertuples()
    ]
    latency = rows[quiet].groupby(["category", "method"])["value"].mean()
    ratios = []
    for category, per_method in latency.groupby(level="category"):
        per_method = per_method.droplevel("category")
        single = per_method[[inference_kinds.get(m) == "single-pass" for m in per_method.index]]
        if single.empty:
            continue
        for method, value in per_method.items():
            if inference_kinds.get(method) == "iterative":
                ratios.append(
                    {
                        "category": category,
                        "method": method,
                        "versus": single.idxmin(),
                        "ratio": value / single.min(),
                    }
                )
    return pd.DataFrame(ratios, columns=["category", "method", "versus", "ratio"])


def contended_ratio_note(
    results: pd.DataFrame,
    inference_kinds: dict[str, str],
    contended: AbstractSet[tuple[str, str, int]],
    counted: bool,
) -> str:
    """What the `contended` cells mean for the iterative/single-pass ratios, as a clause; empty when the
    results hold no iterative and single-pass pair to compare."""
    if iterative_cost(results, inference_kinds).empty:
        return ""
    if counted:
        return "they are counted in the iterative/single-pass ratios (--contended-timings)"
    if iterative_cost(results, inference_kinds, contended).empty:
        return (
            "no iterative/single-pass ratio is given, since every cell one needs was among them: time again "
            "on a quiet machine, or pass --contended-timings to count them"
        )
    return "the iterative/single-pass ratios leave them out (--contended-timings counts them)"
