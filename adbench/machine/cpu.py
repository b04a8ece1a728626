"""What the CPU is, from Linux's /proc/cpuinfo: the manifest records it, and the regression gate keeps a
baseline per CPU vendor (adbench/report/gate.py)."""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path


@cache
def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's fields; empty where /proc/cpuinfo cannot be read (not Linux)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor's block ends at the first blank line
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model() -> str:
    """The CPU's model name, else what `platform` knows."""
    return _cpuinfo_fields().get("model name") or platform.processor() or platform.machine()


def cpu_vendor() -> str:
    """The CPU's vendor id (GenuineIntel, AuthenticAMD), else the machine's architecture: MKL chooses its
    code by vendor, and the gate's seeded numbers differ between an Intel Xeon and an AMD EPYC even with
    portable kernels."""
    return _cpuinfo_fields().get("vendor_id") or platform.machine()
