"""The input-sensitivity check: a detector whose output ignores its input is measured and flagged."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
import torch
from rich.console import Console

from adbench.detector import BudgetName, CategorySpec, Detector, InputSpec, Scores, TrainingBudget
from adbench.evaluation.sensitivity import (
    COLLAPSE_WARNING,
    INPUT_SENSITIVITY,
    _mean_pairwise_difference,
    input_sensitivity,
    is_collapsed,
)
from adbench.registry import load_method
from adbench.report.builder import build_report
from adbench.report.render import COLLAPSE_MARK
from adbench.run import cell, runner
from adbench.run.config import RunConfig
from adbench_methods.autoencoder.detector import L2Autoencoder
from tests.helpers import adbench


@dataclass(frozen=True)
class _TemplateParams:
    channels: int
    image_size: int


class TemplateDetector(Detector):
    """Reconstructs every input into the same grey image: the collapse the check exists for."""

    name = "template"
    inference_kind = "single-pass"
    Params = _TemplateParams

    @classmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> _TemplateParams:
        return _TemplateParams(category.channels, 32)

    @classmethod
    def default_budget(cls, category: CategorySpec, budget: BudgetName) -> TrainingBudget:
        return TrainingBudget(steps=1, batch_size=1)

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.params.image_size, self.params.channels)

    def fit(self, images, budget, on_step=None) -> None:
        if on_step is not None:
            on_step(0, {"loss": 0.0})

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return torch.full_like(images, 0.5)

    def score(self, images: torch.Tensor) -> Scores:
        maps = (images - 0.5).pow(2).sum(dim=1)  # the distance to the template: it still finds defects
        return Scores(maps.flatten(1).amax(dim=1).double().numpy(), maps.numpy())

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"template": torch.full((1,), 0.5)}

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        pass


def test_sensitivity_is_one_for_identity_and_zero_for_a_template():
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    template = TemplateDetector(_TemplateParams(3, 16))
    assert input_sensitivity(template, images) == 0.0 and is_collapsed(0.0)

    class Identity(TemplateDetector):
        def reconstruct(self, images):
            return images

    assert input_sensitivity(Identity(_TemplateParams(3, 16)), images) == pytest.approx(1.0)

    # Halving every difference halves the figure: reconstructions x/2 + 0.25.
    class Half(TemplateDetector):
        def reconstruct(self, images):
            return images / 2 + 0.25

    assert input_sensitivity(Half(_TemplateParams(3, 16)), images) == pytest.approx(0.5)
    assert not is_collapsed(float("nan")), "an unmeasurable cell is not called collapsed"


def test_a_template_that_varies_without_following_its_input_is_flagged():
    """Issue 29 item 4: a generator that redraws its template from a latent that moves with the input
    gives reconstructions that differ as much as the inputs, just not like them. Their magnitudes (the
    former figure) called it sensitive; the share of the inputs' differences reproduced is about 0."""
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    class Redrawing(TemplateDetector):
        def reconstruct(self, images):
            noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(1))
            return 0.5 + (noise - 0.5)  # as varied as the inputs, independent of them

    redrawing = Redrawing(_TemplateParams(3, 32))
    magnitudes = _mean_pairwise_difference(redrawing.reconstruct(images).numpy()) / _mean_pairwise_difference(
        images.numpy()
    )
    assert magnitudes == pytest.approx(1.0, abs=0.05), "they differ as much as the inputs: the former figure"
    assert abs(input_sensitivity(redrawing, images)) < 0.02 and is_collapsed(
        input_sensitivity(redrawing, images)
    )

    class FollowingPlusNoise(Redrawing):
        def reconstruct(self, images):
            return 0.3 * images + 0.7 * super().reconstruct(images)

    assert input_sensitivity(FollowingPlusNoise(_TemplateParams(3, 32)), images) == pytest.approx(
        0.3, abs=0.03
    )


def test_a_reconstruction_of_other_channels_or_size_is_compared_on_what_they_share():
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))

    class GrayHalfSize(TemplateDetector):
        def reconstruct(self, images):
            return torch.nn.functional.avg_pool2d(images.mean(1, keepdim=True), 2)

    assert input_sensitivity(GrayHalfSize(_TemplateParams(3, 16)), images) == pytest.approx(1.0)


def test_a_template_detector_is_flagged_in_the_line_the_manifest_and_the_report(
    tiny_root, tmp_path, monkeypatch
):
    def methods(name: str) -> type[Detector]:
        return TemplateDetector if name == "template" else load_method(name)

    monkeypatch.setattr(runner, "load_method", methods)  # the grid checks the names
    monkeypatch.setattr(cell, "load_method", methods)  # the cell builds the detector
    printed = io.StringIO()
    config = RunConfig(
        methods=("template", "l2ae"),
        categories=("pin",),
        data=tiny_root,
        budget="smoke",
        out=tmp_path,
        run_name="r",
        timing_repeats=1,
    )
    outcome = runner.run(config, Console(file=printed, width=300))
    lines = {line.split(":")[0]: line for line in printed.getvalue().splitlines() if line.startswith("done")}
    assert COLLAPSE_WARNING in lines["done template/pin/seed0"]
    assert COLLAPSE_WARNING not in lines["done l2ae/pin/seed0"], "the trained autoencoder follows its input"

    cells = {
        cell["method"]: cell for cell in json.loads((outcome.run_dir / "manifest.json").read_text())["cells"]
    }
    # Besides, each cell notes that AUPIMO is undefined on the tiny set's 64 px images.
    warnings = {
        # AUPIMO's note is about the tiny images, a timing's about the machine: neither about the method.
        method: [
            w for w in cell["warnings"] if "pixel_aupimo undefined" not in w and not w.startswith("timing:")
        ]
        for method, cell in cells.items()
    }
    assert warnings["template"] == [COLLAPSE_WARNING] and cells["template"]["input_sensitivity"] == 0.0
    assert warnings["l2ae"] == [] and cells["l2ae"]["input_sensitivity"] > 0.2
    stored = outcome.results[outcome.results.metric == INPUT_SENSITIVITY].set_index("method")["value"]
    assert stored["template"] == 0.0 and stored["l2ae"] == cells["l2ae"]["input_sensitivity"]

    report = build_report([outcome.run_dir], tmp_path / "report.md").read_text()
    # Every row of its values (metric tables, defect types); a comparison row is a pair of methods.
    before_comparisons = report.split("## Method comparisons")[0]
    value_rows = [line for line in before_comparisons.splitlines() if line.startswith("| template |")]
    assert len(value_rows) > 5 and all(COLLAPSE_MARK in row for row in value_rows)
    assert not any(COLLAPSE_MARK in line for line in report.splitlines() if line.startswith("| l2ae |"))
    assert COLLAPSE_WARNING in report


def test_autoencoder_signal_reaches_the_latent_at_initialisation():
    """The collapse's cause: at torch's default initialisation the latent barely moved with the input."""
    torch.manual_seed(0)
    category = CategorySpec("bottle", "object", 3)
    detector = L2Autoencoder(L2Autoencoder.default_params(category, "paper"))
    images = torch.rand(4, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        latents = detector.network.encoder(images).flatten(1)
        reconstructions = detector.network(images)
    assert latents.std(dim=0).mean() > 0.05, "the latent must vary with the input"
    assert reconstructions.std(dim=0).mean() > 0.02, "so must the reconstruction"


@pytest.mark.slow
def test_builtin_methods_at_the_default_budget_follow_their_input(tmp_path):
    """The README's grid at the default budget on the built-in synthetic data (about 90 minutes on 2 CPU
    cores, so `nox -s slow`, not CI): no cell's output may be independent of its input, except ssimae
    on sand, whose contrast (local σ ≈ 0.01) is below what SSIM's c2 = 0.03² can see, so that the SSIM
    loss is already minimal for a flat reconstruction (methods/autoencoder/ssim.py). That cell must be
    flagged: it is the check catching a real collapse."""
    methods = "l2ae,ssimae,cbigan,egbad,anogan"
    result = adbench(
        *("run", "--methods", methods, "--all-categories", "--out", str(tmp_path), "--name", "r"),
        timeout=3 * 3600,
    )
    assert result.returncode == 0, result.stderr
    print(result.stdout)
    cells = json.loads((tmp_path / "r" / "manifest.json").read_text())["cells"]
    assert len(cells) == 5 * 4
    flagged = {(c["method"], c["category"]) for c in cells if COLLAPSE_WARNING in c["warnings"]}
    assert flagged == {("ssimae", "sand")}, f"outputs independent of the input: {flagged}"
