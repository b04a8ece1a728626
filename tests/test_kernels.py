"""Portable kernels (adbench/machine/kernels.py): seeded training whose numbers the machine's settings do
not move."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from adbench.machine.kernels import portable_environment

# Seeded training of a small convolutional network with a linear head (convolutions and the head both
# reach MKL's matrix product once oneDNN and NNPACK are off); prints a digest of the weights and the
# kernels torch ran.
TRAIN = """
import hashlib
import adbench, torch
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.LeakyReLU(0.2),
    torch.nn.Conv2d(16, 32, 4, stride=2, padding=1), torch.nn.LeakyReLU(0.2),
    torch.nn.Flatten(), torch.nn.Linear(32 * 16 * 16, 10),
)
optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
images, targets = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
for _ in range(8):
    optimiser.zero_grad()
    torch.nn.functional.cross_entropy(net(images), targets).backward()
    optimiser.step()
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters())).hexdigest()
from adbench.run.results import environment
print(digest, torch.backends.cpu.get_cpu_capability(), torch.backends.mkldnn.enabled,
      torch.get_num_threads(), environment()["kernels"])
"""

# What differs between machines, or between users' shells: instruction sets the libraries may use and
# thread counts.
MACHINE_SETTINGS = [
    {},
    {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
]
# Where the portable kernels pin no instruction set (not x86-64), there is nothing to check.
PINS_INSTRUCTION_SET = "ATEN_CPU_CAPABILITY" in portable_environment()


def _train(portable: bool, settings: dict[str, str]) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    environment |= settings | {"ADBENCH_PORTABLE_KERNELS": "1" if portable else "0"}
    command = [sys.executable, "-c", TRAIN]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True, timeout=600)
    return done.stdout.split()


@pytest.mark.skipif(not PINS_INSTRUCTION_SET, reason="portable kernels pin x86-64 instruction sets")
def test_portable_kernels_give_the_same_weights_whatever_the_machine_settings():
    runs = [_train(True, settings) for settings in MACHINE_SETTINGS]
    assert {tuple(run[1:]) for run in runs} == {("AVX2", "False", "2", "portable")}
    assert len({run[0] for run in runs}) == 1, runs
    # Without them the same settings move the weights (else this test could not fail): ATen's default
    # kernels and one thread against the machine's own.
    native = [_train(False, settings)[0] for settings in (MACHINE_SETTINGS[0], MACHINE_SETTINGS[2])]
    assert native[0] != native[1]
    assert _train(False, {})[4] == "native"


@pytest.mark.skipif(not PINS_INSTRUCTION_SET, reason="portable kernels pin x86-64 instruction sets")
def test_portable_kernels_refuse_a_torch_that_chose_its_kernels_first():
    late = "import torch; torch.ones(2).sum(); import adbench"
    environment = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    environment |= {"ADBENCH_PORTABLE_KERNELS": "1", "ATEN_CPU_CAPABILITY": "default"}
    done = subprocess.run([sys.executable, "-c", late], env=environment, capture_output=True, text=True)
    assert done.returncode == 1
    assert "ADBENCH_PORTABLE_KERNELS=1: torch runs DEFAULT kernels, not AVX2" in done.stderr
