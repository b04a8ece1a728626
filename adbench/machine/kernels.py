"""Portable kernels: seeded CPU runs whose numbers do not depend on which x86-64 CPU of one vendor made them.

torch chooses its CPU kernels by machine, and kernels round differently: ATen's vectorised kernels by
instruction set; oneDNN's convolutions by instruction set and cache sizes; NNPACK's convolutions by its
own CPU detection; MKL's matrix products by instruction set and vendor (`MKL_CBWR=AVX2` pins Intel CPUs
only: on others MKL falls back to its automatic branch); and reductions split by thread count. Seeded
training amplifies a last-bit difference over its steps. The smoke gate's baseline, made on an AMD EPYC
with AVX2 forced for ATen, oneDNN and MKL, failed on an Intel Xeon with the same settings: 26 metrics
dropped by more than 0.02, by up to 0.3.

With `ADBENCH_PORTABLE_KERNELS=1` in the environment, importing adbench (before torch) selects kernels
that are chosen the same way on every x86-64 CPU with AVX2: ATen at AVX2, MKL's `COMPATIBLE` branch (the
one MKL's conditional numerical reproducibility guarantees on Intel and compatible processors), oneDNN
and NNPACK off (convolutions go through ATen's im2col and MKL), and two threads for every library.
Measured on one Intel Xeon (2 cores, AVX-512): the smoke grid's 340 gated metrics were identical with
MKL allowed AVX2 or AVX-512; each of oneDNN, NNPACK and the thread count (1 or 2) changed them. They do
not make an AMD EPYC (Zen 4, AVX-512) agree with that Intel Xeon: the baseline made there (a72aba5) drops
38 of its 808 metrics by more than 0.02 on the EPYC, and none of MKL's branches (AVX2, AVX-512, SSE4.2,
automatic; `MKL_DEBUG_CPU_TYPE=5`), ATen at AVX-512, one thread, or oneDNN or NNPACK on made it agree. So
the gate keeps one baseline per CPU vendor (adbench/report/gate.py); within one vendor the portable
kernels still remove what the instruction set and thread settings would change. Training
is about twice as slow (the smoke grid: 154 s against 78 s), so only the regression gate uses it; the
tests use AVX2 kernels only (tests/conftest.py), and a run of your own uses the fastest kernels. The run
manifest records which kernels a run used, and `compare` refuses a baseline made with the others.
"""

from __future__ import annotations

import os
import platform

PORTABLE_VARIABLE = "ADBENCH_PORTABLE_KERNELS"
PORTABLE_THREADS = 2
_X86_64 = {"x86_64", "amd64"}


def portable_requested() -> bool:
    return os.environ.get(PORTABLE_VARIABLE, "").strip() not in ("", "0")


def kernels_in_use() -> str:
    """`portable` or `native`, for the manifest and the gate's protocol."""
    return "portable" if portable_requested() else "native"


def portable_environment() -> dict[str, str]:
    """The variables the libraries read once, when torch is imported."""
    threads = str(PORTABLE_THREADS)
    variables = {"MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    if platform.machine().lower() in _X86_64:
        variables["ATEN_CPU_CAPABILITY"] = "avx2"
    return variables


def apply_if_requested() -> None:
    """Select the portable kernels when asked; called by adbench/__init__.py, before torch is imported.

    A variable the user set already is overridden: a different MKL branch or thread count would make
    the run's numbers machine-dependent while its manifest says portable.
    """
    if not portable_requested():
        return
    variables = portable_environment()
    os.environ.update(variables)
    import torch

    # torch reads ATEN_CPU_CAPABILITY at its first operation: one that ran before adbench was imported
    # fixed the kernels already.
    wanted = variables.get("ATEN_CPU_CAPABILITY", "").upper()
    if wanted and (chosen := torch.backends.cpu.get_cpu_capability()) != wanted:
        raise RuntimeError(
            f"{PORTABLE_VARIABLE}=1: torch runs {chosen} kernels, not {wanted}; import adbench before "
            "torch computes anything"
        )
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]  # as torch documents; stubs differ
    torch.backends.nnpack.set_flags(False)
    torch.set_num_threads(PORTABLE_THREADS)
