"""The one object that describes a run; the CLI builds it, the runner reads it, the manifest stores it."""

from __future__ import annotations

import dataclasses
import json
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
    eval_only_from: Path | None = None  # score this earlier run's checkpoints instead of training
    timing_repeats: int = 5  # single-image scoring repeats for the latency figures
    score_metrics: bool = True  # False: time the detectors only (`adbench time`), no quality metrics

    def __post_init__(self) -> None:
        if not self.methods:
            raise AdbenchError("no methods given; pass --methods, e.g. --methods l2ae")
        if self.categories is not None and not self.categories:
            raise AdbenchError("no categories given; pass --categories a,b or --all-categories")
        if not self.seeds:
            raise AdbenchError("no seeds given; pass --seeds, e.g. --seeds 0,1")
        if self.budget not in BUDGETS:
            raise AdbenchError(f"unknown budget {self.budget!r}; valid: {', '.join(BUDGETS)}")
        if self.timing_repeats < 1:
            raise AdbenchError(f"--repeats {self.timing_repeats}: must be at least 1")
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
            "eval_only_from": None if self.eval_only_from is None else str(self.eval_only_from),
            "timing_repeats": self.timing_repeats,
            "score_metrics": self.score_metrics,
        }

    @classmethod
    def from_manifest(cls, run_dir: Path) -> RunConfig:
        """The config an earlier run folder was made with, its data fixed to the folder that run used."""
        manifest_path = run_dir / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text())
            stored = manifest["config"]
            return cls(
                methods=tuple(stored["methods"]),
                categories=None if stored["categories"] is None else tuple(stored["categories"]),
                data=Path(manifest["dataset"]),
                seeds=tuple(stored["seeds"]),
                budget=stored["budget"],
                out=run_dir.parent,
                run_name=run_dir.name,
                device=stored["device"],
                kinds=tuple(stored["kinds"].items()),
                eval_only_from=None if stored["eval_only_from"] is None else Path(stored["eval_only_from"]),
                timing_repeats=stored.get("timing_repeats", 5),
                score_metrics=stored.get("score_metrics", True),
            )
        except FileNotFoundError:
            raise AdbenchError(f"{manifest_path}: not found; expected an adbench run folder") from None
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise AdbenchError(f"{manifest_path}: not an adbench run manifest ({error!r})") from None

    @classmethod
    def for_eval_only(
        cls,
        source_run: Path,
        out: Path,
        run_name: str | None,
        device: str,
        timing_repeats: int = 5,
        score_metrics: bool = True,
    ) -> RunConfig:
        """The grid of an earlier run, to be re-scored (or timed) from its checkpoints in a new run folder."""
        return dataclasses.replace(
            cls.from_manifest(source_run),
            out=out,
            run_name=run_name,
            device=device,
            eval_only_from=source_run,
            timing_repeats=timing_repeats,
            score_metrics=score_metrics,
        )
