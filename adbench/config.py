"""The one object that describes a run; the CLI builds it, the runner reads it, the manifest stores it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adbench.detector import BUDGETS, BudgetName
from adbench.errors import AdbenchError


@dataclass(frozen=True)
class RunConfig:
    methods: tuple[str, ...]  # entry-point names, in report order
    categories: tuple[str, ...] | None  # None = every category of the dataset
    data: Path | None = None  # MVTec AD-style root; None = the built-in synthetic dataset
    seeds: tuple[int, ...] = (0,)
    budget: BudgetName = "default"
    out: Path = Path("runs")  # parent folder of run folders
    run_name: str | None = None  # the run folder's name; generated from the time when None
    device: str = "cpu"
    kinds: tuple[tuple[str, str], ...] = field(default=())  # (category, "texture"|"object") overrides

    def __post_init__(self) -> None:
        if not self.methods:
            raise AdbenchError("no methods given; pass --methods, e.g. --methods l2ae")
        if self.categories is not None and not self.categories:
            raise AdbenchError("no categories given; pass --categories a,b or --all-categories")
        if not self.seeds:
            raise AdbenchError("no seeds given; pass --seeds, e.g. --seeds 0,1")
        if self.budget not in BUDGETS:
            raise AdbenchError(f"unknown budget {self.budget!r}; valid: {', '.join(BUDGETS)}")
        for category, kind in self.kinds:
            if kind not in ("texture", "object"):
                raise AdbenchError(f"--kinds {category}={kind}: the kind must be 'texture' or 'object'")

    def to_manifest(self) -> dict[str, Any]:
        return {
            "methods": list(self.methods),
            "categories": None if self.categories is None else list(self.categories),
            "data": None if self.data is None else str(self.data),
            "seeds": list(self.seeds),
            "budget": self.budget,
            "out": str(self.out),
            "run_name": self.run_name,
            "device": self.device,
            "kinds": dict(self.kinds),
        }
