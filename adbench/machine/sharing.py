"""Sharing the cores with other processes: OpenMP's wait policy, chosen before torch starts.

torch's CPU kernels run on OpenMP threads that, by default, spin at each barrier waiting for the others.
Alone that is fastest; beside other busy processes a spinning thread burns the core that the thread it
waits for needs, and a run slows far beyond its share of the cores. Measured on 2 cores, 150 training
steps of l2ae on 128 px texture patches (batch 16, 2 threads):

    beside                        spin (default)   passive   1 thread, spin   fair share
    nothing                       22 s             39 s      32 s             22 s
    1 busy process per core       80 s             35 s      38 s             44 s
    2 busy processes per core     61 s (60 steps)  27 s      28 s             26 s

Passive waiting (threads sleep at a barrier) keeps a contended run at its fair share, and costs 1.8×
alone; one thread changes the reductions' order, and so the numbers, which passive waiting does not.
So a run on a busy machine waits passively, and a quiet one spins. libgomp reads OMP_WAIT_POLICY once,
when torch loads it: the policy is chosen before the first import of torch, from the share of the cores
that other processes used over a fraction of a second, and a user's own OMP_WAIT_POLICY is kept.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

WAIT_POLICY = "OMP_WAIT_POLICY"
# Other processes using this much of the cores already oversubscribe a run that starts a thread per core.
BUSY_CORES = 0.5
SAMPLE_SECONDS = 0.3


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot (Linux /proc/stat); None elsewhere."""
    try:
        # user, nice, system, idle, iowait, irq, softirq, steal; guest time is counted in user already
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and I/O wait
    return sum(fields) - idle, sum(fields)


def load_average() -> float:
    """The 1-minute load average; NaN where the OS has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def busy_cores_of_others(sample_seconds: float = SAMPLE_SECONDS) -> float:
    """Cores kept busy by other processes: measured over `sample_seconds` while this one sleeps (Linux),
    else the 1-minute load average; 0.0 where neither is known."""
    before = _cpu_times()
    if before is not None:
        time.sleep(sample_seconds)
        after = _cpu_times()
        if after is not None and after[1] > before[1]:
            return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)
    load = load_average()
    return 0.0 if math.isnan(load) else load


def choose_wait_policy(busy_cores: Callable[[], float] = busy_cores_of_others) -> str | None:
    """Set OMP_WAIT_POLICY=PASSIVE for this process and its children when other processes keep the cores
    busy; the note to print when it did, None when it left the policy alone (a quiet machine, the user's
    own setting, or torch already loaded, when it is too late to choose)."""
    if WAIT_POLICY in os.environ or "torch" in sys.modules:
        return None
    busy = busy_cores()
    if busy < BUSY_CORES:
        return None
    os.environ[WAIT_POLICY] = "PASSIVE"
    return (
        f"other processes keep {busy:.1f} of {os.cpu_count() or 1} cores busy: torch's threads wait "
        f"passively ({WAIT_POLICY}=PASSIVE), which keeps this run near its share of the cores "
        f"(set {WAIT_POLICY} yourself to choose)"
    )
