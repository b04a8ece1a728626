"""The GPU check of issue #14 (item 8): every method at its `paper` settings, a few hundred steps on a GPU.

For each method, on one synthetic object category (and, for the grid estimate, fewer steps on one
synthetic texture category): train `--steps` optimiser steps at the paper's params and batch, timed
after one warm-up step; then measure `input_sensitivity` (do reconstructions differ between inputs?),
the image AUROC on the synthetic test set, the scoring time per image (batches of the cell's chunk and
one image alone) and the peak GPU memory. From those rates it estimates the full paper grid on MVTec AD
(15 categories, one seed): each category's paper steps × seconds per step of its kind, plus its test and
validation images × seconds per scored image, plus the latency repeats × one single image (decoding the
images into the cache, once per category, is left out).

On the lent GPU, from the repository root, after `bash tools/gpu-check-prepare.sh` here:

    device run, carry [".whl"], command "bash tools/gpu-check.sh", timeout_s 480

`--device cpu --budget smoke --steps 3` runs the same path on a CPU in seconds (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from adbench.atomic import write_text_atomic
from adbench.data import mvtec
from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.layout import CategoryFiles, validation_count
from adbench.detector import CategorySpec, Detector, TrainingBudget
from adbench.evaluation.evaluate import image_metrics
from adbench.evaluation.sensitivity import MAX_IMAGES, input_sensitivity, is_collapsed
from adbench.machine.devices import resolve_device, seed_everything
from adbench.machine.timing import timed
from adbench.registry import load_method
from adbench.run.cell import SCORE_CHUNK, new_detector
from adbench.run.config import RunConfig
from adbench.run.runner import resolve_grid

# fanogan-iterative trains fanogan's GAN alone here (its `fit`), the steps' GAN share of fanogan's budget.
METHODS = (
    "l2ae",
    "ssimae",
    "cbigan",
    "egbad",
    "anogan",
    "fanogan",
    "fanogan-iterative",
    "ganomaly",
    "skipganomaly",
    "draem",
    "dsr",
    "utad",
)
# MVTec AD, Table 1 of Bergmann et al. (2019): training images, defect-free and defective test images.
MVTEC_COUNTS: dict[str, tuple[int, int, int]] = {
    "carpet": (280, 28, 89),
    "grid": (264, 21, 57),
    "leather": (245, 32, 92),
    "tile": (230, 33, 84),
    "wood": (247, 19, 60),
    "bottle": (209, 20, 63),
    "cable": (224, 58, 92),
    "capsule": (219, 23, 109),
    "hazelnut": (391, 40, 70),
    "metal_nut": (220, 22, 93),
    "pill": (267, 26, 141),
    "screw": (320, 41, 119),
    "toothbrush": (60, 12, 30),
    "transistor": (213, 60, 40),
    "zipper": (240, 32, 119),
}
GRAYSCALE = ("grid", "screw", "zipper")
LATENCY_REPEATS = RunConfig.timing_repeats  # single-image scorings a cell times for its latency figures


@dataclass(frozen=True)
class Measured:
    method: str
    category: str
    kind: str
    image_size: int
    patch_size: int | None
    batch_size: int
    steps: int  # optimiser steps timed (on_step calls counted)
    seconds_per_step: float
    steps_per_second: float
    seconds_per_scored_image: float  # scoring the test set in chunks of SCORE_CHUNK
    seconds_single_image: float  # one image alone, as the latency figures score it
    input_sensitivity: float
    collapsed: bool
    image_auroc: float
    final_losses: dict[str, float]
    peak_memory_gib: float | None  # CUDA only


def _without_absent_weights(methods: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """utad's pixel maps where the VGG-19 file is not stored (the lent machine reaches no network): the
    check times its training, which the maps do not change."""
    from adbench.weights.store import present

    if "utad" in methods and present("vgg19") is None:
        return {"utad": {"perceptual": "pixel"}}
    return {}


def _measure(
    method: type[Detector], files: CategoryFiles, steps: int, config: RunConfig, progress: Progress
) -> Measured:
    """Train `steps` steps at the budget's params and batch on the synthetic category, then check it."""
    device = resolve_device(config.device)
    category = describe(files)
    method_name, category_name = method.name, files.name
    seed_everything(0)
    detector, budget = new_detector(method, category, config, device)
    tensors = load_category(files, category, detector.input_spec).on(device)
    train = CategoryTensors.as_float(tensors.train)
    detector.fit(train, TrainingBudget(steps=1, batch_size=budget.batch_size))  # warm-up: kernels, allocator
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    task = progress.add_task(f"fit {method_name}/{category_name}", total=steps)
    losses: list[dict[str, float]] = []

    def on_step(step: int, step_losses: Any) -> None:
        losses.append(dict(step_losses))
        progress.advance(task)

    _, train_seconds = timed(
        device, lambda: detector.fit(train, TrainingBudget(steps, budget.batch_size), on_step)
    )
    progress.remove_task(task)
    test = CategoryTensors.as_float(tensors.test)
    detector.score(test[:1])  # warm-up
    chunks = [test[start : start + SCORE_CHUNK] for start in range(0, len(test), SCORE_CHUNK)]
    scored, score_seconds = timed(device, lambda: [detector.score(chunk) for chunk in chunks])
    _, single_seconds = timed(device, lambda: detector.score(test[:1]))
    image_scores = np.concatenate([scores.image_scores for scores in scored])
    defect_free = CategoryTensors.as_float(torch.cat([tensors.validation, tensors.train])[:MAX_IMAGES])
    sensitivity = input_sensitivity(detector, defect_free)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return Measured(
        method=method_name,
        category=category_name,
        kind=category.kind,
        image_size=detector.input_spec.image_size,
        patch_size=getattr(detector.params, "patch_size", None),
        batch_size=budget.batch_size,
        steps=len(losses),
        seconds_per_step=train_seconds / len(losses),
        steps_per_second=len(losses) / train_seconds,
        seconds_per_scored_image=score_seconds / len(test),
        seconds_single_image=single_seconds,
        input_sensitivity=sensitivity,
        collapsed=is_collapsed(sensitivity),
        image_auroc=image_metrics(tensors.test_labels, image_scores)["image_auroc"],
        final_losses=losses[-1] if losses else {},
        peak_memory_gib=peak,
    )


def mvtec_cell_seconds(
    method_name: str, category_name: str, rate: Measured, config: RunConfig
) -> dict[str, float]:
    """One MVTec AD cell's estimated training and scoring seconds at `rate` (measured on the same kind)."""
    train, good, defective = MVTEC_COUNTS[category_name]
    validation = validation_count(train)
    category = CategorySpec(
        category_name,
        mvtec.KINDS[category_name],
        1 if category_name in GRAYSCALE else 3,
        category_name in mvtec.ROTATION_INVARIANT,
    )
    method = load_method(method_name)
    detector, budget = new_detector(method, category, config, torch.device("cpu"))
    steps = detector.training_steps(budget, train - validation)
    scored = good + defective + validation
    return {
        "steps": steps,
        "train_seconds": steps * rate.seconds_per_step,
        "score_seconds": scored * rate.seconds_per_scored_image + LATENCY_REPEATS * rate.seconds_single_image,
    }


def grid_estimate(measured: list[Measured], config: RunConfig) -> dict[str, Any]:
    """The MVTec AD grid's estimated hours per method and in all, from the rates of each method's kinds;
    a method not yet measured on both kinds is left out (`complete` says whether any was)."""
    rates = {(m.method, m.kind): m for m in measured}
    names = list(dict.fromkeys(m.method for m in measured))
    methods: dict[str, Any] = {}
    for method_name in names:
        if not all((method_name, kind) in rates for kind in ("object", "texture")):
            continue
        cells = {
            name: mvtec_cell_seconds(method_name, name, rates[method_name, kind], config)
            for name, kind in mvtec.KINDS.items()
        }
        seconds = sum(cell["train_seconds"] + cell["score_seconds"] for cell in cells.values())
        methods[method_name] = {"hours": seconds / 3600, "categories": cells}
    return {
        "dataset": "MVTec AD (counts of its Table 1), one seed",
        "methods": methods,
        "hours": sum(method["hours"] for method in methods.values()),
        "complete": len(methods) == len(names),
    }


def _tables(measured: list[Measured], estimate: dict[str, Any], budget: str) -> tuple[Table, Table]:
    rates = Table(title=f"{budget} settings: measured")
    for column in ("method", "category", "input", "batch", "steps/s", "s/image", "sensitivity", "AUROC"):
        rates.add_column(column, justify="left" if column in ("method", "category") else "right")
    for m in measured:
        patch = f"/{m.patch_size}" if m.patch_size not in (None, m.image_size) else ""
        rates.add_row(
            m.method,
            f"{m.category} ({m.kind})",
            f"{m.image_size}{patch}",
            str(m.batch_size),
            f"{m.steps_per_second:.2f}",
            f"{m.seconds_per_scored_image:.3g}",
            f"{m.input_sensitivity:.3g}" + (" collapsed" if m.collapsed else ""),
            f"{m.image_auroc:.3f}",
        )
    grid = Table(title=f"{budget} grid on MVTec AD, one seed: estimated hours")
    for column in ("method", "training", "scoring", "total"):
        grid.add_column(column, justify="left" if column == "method" else "right")
    for name, method in estimate["methods"].items():
        cells = method["categories"].values()
        grid.add_row(
            name,
            f"{sum(cell['train_seconds'] for cell in cells) / 3600:.2f}",
            f"{sum(cell['score_seconds'] for cell in cells) / 3600:.2f}",
            f"{method['hours']:.2f}",
        )
    grid.add_row("all", "", "", f"{estimate['hours']:.2f}")
    return rates, grid


def _report(measured: list[Measured], config: RunConfig) -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "device": str(resolve_device(config.device)),
        "device_name": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "budget": config.budget,
        "measured": [dataclasses.asdict(m) for m in measured],
        "estimate": grid_estimate(measured, config),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget", default="paper", choices=("smoke", "default", "paper"))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--object", default="washer", help="synthetic object category trained --steps steps")
    parser.add_argument(
        "--texture", default="weave", help="synthetic texture category, for the grid estimate"
    )
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--texture-steps", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.texture_steps < 1:
        parser.error("--steps and --texture-steps must be at least 1")
    methods = tuple(args.methods.split(","))
    config = RunConfig(
        methods=methods,
        categories=(args.object, args.texture),
        budget=args.budget,
        device=args.device,
        method_params=_without_absent_weights(methods),
    )
    grid = resolve_grid(config, dry_run=True)  # the synthetic data and the methods, found once
    if grid.blocked:  # a dry run records a missing resource instead of raising; this check would train
        parser.error(next(iter(grid.blocked.values())))
    console = Console(stderr=True, width=120)  # the device's output is no terminal
    console.print(f"torch {torch.__version__}, device {resolve_device(config.device)}")
    measured: list[Measured] = []
    with Progress(console=console, transient=True) as progress:
        # Objects first: they are what item 8 asks for, and the file is rewritten after every cell, so
        # a check cut short by the device's time limit still returns them.
        for category, steps in ((args.object, args.steps), (args.texture, args.texture_steps)):
            for name in methods:
                m = _measure(grid.methods[name], grid.files[category], steps, config, progress)
                measured.append(m)
                console.print(
                    f"{name}/{category}: {m.steps} steps, {m.steps_per_second:.2f} steps/s, "
                    f"input_sensitivity {m.input_sensitivity:.3g}, image AUROC {m.image_auroc:.3f}"
                )
                write_text_atomic(args.out, json.dumps(_report(measured, config), indent=1) + "\n")
    report = _report(measured, config)
    for table in _tables(measured, report["estimate"], args.budget):
        console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
