"""adbench: a benchmark harness for reconstruction-based image anomaly detectors."""

from adbench.machine.kernels import apply_if_requested

apply_if_requested()  # before any adbench module imports torch: the kernels are chosen at torch's import
