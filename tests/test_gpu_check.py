"""tools/paper_gpu_check.py, the prepared GPU check of #14 item 8, run on a CPU at the smoke budget."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from adbench.detector import CategorySpec
from adbench.evaluation.sensitivity import COLLAPSE_THRESHOLD
from adbench.registry import load_method
from adbench.run.config import RunConfig

SCRIPT = Path(__file__).parents[1] / "tools" / "paper_gpu_check.py"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("paper_gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _rate(check, kind: str, seconds_per_step: float) -> object:
    return check.Measured(
        method="anogan",
        category="x",
        kind=kind,
        image_size=64,
        patch_size=None,
        batch_size=64,
        steps=10,
        seconds_per_step=seconds_per_step,
        steps_per_second=1 / seconds_per_step,
        seconds_per_scored_image=0.5,
        seconds_single_image=2.0,
        input_sensitivity=1.0,
        collapsed=False,
        image_auroc=0.5,
        final_losses={},
        peak_memory_gib=None,
    )


def test_a_paper_cell_is_its_paper_steps_at_the_measured_rate_plus_its_scored_images(check):
    config = RunConfig(methods=("anogan",), categories=None, budget="paper")
    for category, train, test in (("toothbrush", 60, 42), ("hazelnut", 391, 110)):
        cell = check.mvtec_cell_seconds("anogan", category, _rate(check, "object", 0.01), config)
        validation = round(0.1 * train)  # held out of the training images, as the harness does
        assert cell["steps"] == 7850  # MVTec AD §4.1.1: 50 epochs of 10,000 views at batch 64, any size
        assert cell["train_seconds"] == pytest.approx(78.5)
        assert cell["score_seconds"] == pytest.approx((test + validation) * 0.5 + 10 * 2.0)


def test_the_check_trains_the_asked_steps_and_estimates_the_grid_from_what_it_measured(check, tmp_path):
    out = tmp_path / "check.json"
    argv = ["--device", "cpu", "--budget", "smoke", "--methods", "l2ae,anogan", "--steps", "3"]
    assert check.main([*argv, "--texture-steps", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    measured = {(m["method"], m["kind"]): m for m in report["measured"]}
    assert sorted(measured) == [
        ("anogan", "object"),
        ("anogan", "texture"),
        ("l2ae", "object"),
        ("l2ae", "texture"),
    ]
    for (_, kind), m in measured.items():
        assert m["steps"] == (3 if kind == "object" else 2)
        assert m["steps_per_second"] * m["seconds_per_step"] == pytest.approx(1.0)
        assert m["collapsed"] == (m["input_sensitivity"] < COLLAPSE_THRESHOLD)
        assert 0.0 <= m["image_auroc"] <= 1.0 and math.isfinite(m["input_sensitivity"])

    estimate = report["estimate"]["methods"]["l2ae"]
    assert len(estimate["categories"]) == 15
    for category, kind in (("carpet", "texture"), ("bottle", "object")):
        cell = estimate["categories"][category]
        budget = load_method("l2ae").default_budget(CategorySpec(category, kind, 3), "smoke")
        assert cell["steps"] == budget.steps
        assert cell["train_seconds"] == pytest.approx(
            cell["steps"] * measured["l2ae", kind]["seconds_per_step"]
        )
    seconds = sum(cell["train_seconds"] + cell["score_seconds"] for cell in estimate["categories"].values())
    assert estimate["hours"] == pytest.approx(seconds / 3600)
    total = sum(method["hours"] for method in report["estimate"]["methods"].values())
    assert report["estimate"]["hours"] == pytest.approx(total)
