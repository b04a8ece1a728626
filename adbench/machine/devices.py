"""Where a cell runs: torch devices named on the command line, seeding, and the precision of --amp."""

from __future__ import annotations

import random

import numpy as np
import torch

from adbench.errors import AdbenchError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# The device types adbench runs on; torch knows more (meta, xpu, hpu, mkldnn, ...), on which the methods
# cannot train (a meta tensor holds no data) or which this build of torch cannot use.
DEVICE_TYPES = ("cpu", "cuda", "mps")


def parse_device(name: str) -> torch.device:
    """`name` as a torch device of one of DEVICE_TYPES, checked before torch sees it (torch warns about
    some names it knows)."""
    if name.partition(":")[0] not in DEVICE_TYPES:
        raise AdbenchError(
            f"--device {name}: not a device adbench runs on; use auto, cpu, cuda, cuda:N or mps"
        )
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise AdbenchError(f"--device {name}: {error}; use auto, cpu, cuda, cuda:N or mps") from None


def resolve_device(name: str) -> torch.device:
    """The device `name` means on this machine, refused in one line where this machine lacks it."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = parse_device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AdbenchError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise AdbenchError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise AdbenchError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return device


def precision(device: torch.device, amp: bool) -> torch.autocast:
    """bfloat16 autocast with --amp: it keeps float32's range, so no loss scaling is needed in the
    methods' own training loops (float16 would need a GradScaler there)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)


def device_name(device: torch.device) -> str:
    """As the manifest records it: with the GPU's model for CUDA."""
    return str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
