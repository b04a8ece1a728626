"""Shared fixtures: a tiny synthetic dataset and a private preprocessing cache for the whole session.

The tests run torch's AVX2 kernels on every x86-64 CPU (`SAME_KERNELS`, set before torch is imported,
unless already set): AVX2 and AVX-512 kernels round differently, seeded training drifts apart over its
steps, and the seeded checks were made on AVX2; their margins hold on an AMD EPYC and an Intel Xeon. The
gate, whose baseline is compared to the last bit, uses the slower portable kernels
(adbench/machine/kernels.py).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

SAME_KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
for _variable, _value in SAME_KERNELS.items():
    os.environ.setdefault(_variable, _value)

import torch  # noqa: E402

from adbench.data.synth import SynthSize, generate  # noqa: E402
from adbench.detector import CategorySpec  # noqa: E402
from adbench_methods.autoencoder.detector import L2Autoencoder  # noqa: E402

# Small enough that decoding and smoke training take seconds, large enough for every defect type.
TINY = SynthSize(image_size=64, train_good=12, test_good=8, test_per_defect=5)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "machine_load: reads the real machine's load (_quiet_machine makes up a quiet one)"
    )


@pytest.fixture(autouse=True)
def _quiet_machine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Every timing taken in this process reads as taken on a quiet machine (its threads never waited for
    a core), so that what a run prints, records and reports does not depend on what else the test machine
    runs (#31 item 6). A test of the measurement itself is marked `machine_load`; a test that makes up a
    load patches `timing._waited_for_core` again."""
    if request.node.get_closest_marker("machine_load") is None:
        from adbench.machine import timing

        monkeypatch.setattr(timing, "_waited_for_core", lambda: 0.0)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ADBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention tiny synthetic dataset; copy it (`dataset_copy`) before breaking it."""
    return generate(tmp_path_factory.mktemp("data") / "synthetic", seed=0, size=TINY)


@pytest.fixture
def dataset_copy(tiny_root: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    return Path(shutil.copytree(tiny_root, tmp_path / "data"))


@pytest.fixture(scope="session")
def one_cell_run(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished smoke run of l2ae on one category (copy it before changing it): resuming it trains
    nothing."""
    from tests.helpers import adbench

    out = tmp_path_factory.mktemp("runs")
    result = adbench(
        "run", "--methods", "l2ae", "--budget", "smoke", "--data", str(tiny_root), "--out", str(out),
        "--categories", "washer", "--name", "one",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out / "one"


@pytest.fixture(scope="session")
def genuine_checkpoint() -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """An untrained l2ae's tensors and params, to be saved again the ways a checkpoint file might lie."""
    torch.manual_seed(0)
    detector = L2Autoencoder(L2Autoencoder.default_params(CategorySpec("pin", "object", 1), "smoke"))
    tensors = {key: value.contiguous() for key, value in detector.state_tensors().items()}
    return tensors, dataclasses.asdict(detector.params)
