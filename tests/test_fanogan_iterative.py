"""fanogan-iterative: AnoGAN's latent search on f-AnoGAN's trained networks, sharing fanogan's training
in a run (Detector.trained_by / adopt), and the report's controlled comparison."""

import dataclasses
import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from adbench.detector import CategorySpec, TrainingBudget
from adbench.machine.timing import LATENCY_MEDIAN
from adbench_methods.anogan.detector import AnoGAN
from adbench_methods.anogan.latent_search import search_latents
from adbench_methods.fanogan.detector import FAnoGAN
from adbench_methods.fanogan.iterative import FAnoGANIterative
from adbench_methods.fanogan.networks import LATENT_DIM
from tests.helpers import adbench, copy_run, edit_manifest, one_line, quality_rows

PIN = CategorySpec("pin", "object", 1)


def _pair(search_steps: int = 25) -> tuple[FAnoGAN, FAnoGANIterative]:
    """fanogan and fanogan-iterative at 32 px, each built from seed 0."""
    iterative_params = dataclasses.replace(
        FAnoGANIterative.default_params(PIN, "smoke"),
        image_size=32,
        patch_size=32,
        encoder_share=0.5,
        search_steps=search_steps,
    )
    torch.manual_seed(0)
    fanogan = FAnoGAN(iterative_params.gan_params())
    torch.manual_seed(0)
    return fanogan, FAnoGANIterative(iterative_params)


def test_on_its_own_it_trains_fanogans_gan_and_no_encoder():
    fanogan, iterative = _pair()
    images = torch.rand(8, 1, 32, 32)
    budget = TrainingBudget(steps=4, batch_size=4)
    torch.manual_seed(1)
    fanogan.fit(images, budget)
    steps = []
    torch.manual_seed(1)
    iterative.fit(images, budget, lambda step, losses: steps.append((step, set(losses))))
    assert iterative.training_steps(budget, 8) == 2  # the budget's 4 less fanogan's half for the encoder
    assert steps == [(0, {"critic", "generator"}), (1, {"critic", "generator"})]
    fanogan_state = fanogan.state_tensors()
    for name, tensor in iterative.state_tensors().items():
        assert torch.equal(tensor, fanogan_state[name]), name
    assert not any(name.startswith("encoder.") for name in iterative.state_tensors())


def test_adopt_takes_the_very_networks_and_refuses_others():
    fanogan, iterative = _pair()
    iterative.adopt(fanogan)
    assert iterative.model.generator is fanogan.generator and iterative.model.critic is fanogan.critic
    ours, theirs = iterative.state_tensors(), fanogan.state_tensors()
    assert all(ours[name].data_ptr() == theirs[name].data_ptr() for name in ours)  # the same tensors

    other = FAnoGAN(dataclasses.replace(fanogan.params, width=16))
    with pytest.raises(ValueError, match="width: 8 against 16"):
        _pair()[1].adopt(other)
    with pytest.raises(TypeError, match="not anogan's"):
        _pair()[1].adopt(AnoGAN(AnoGAN.default_params(PIN, "smoke")))


@pytest.mark.parametrize("steps", [0, 3])
def test_the_score_is_fanogans_at_the_searched_latent(steps):
    """A(x) = MSE(x, G(z*)) + κ·MSE(f(G(z*)), f(x)) and the map |x − G(z*)|, with z* AnoGAN's search from
    the seeded N(0, I) start (z* = the start at 0 steps)."""
    _, iterative = _pair(search_steps=steps)
    iterative.load_state_tensors(iterative.state_tensors())  # eval mode, as after loading
    images = torch.rand(3, 1, 32, 32)
    scores = iterative.score(images)
    x = images * 2 - 1
    start = torch.randn(3, LATENT_DIM, generator=torch.Generator().manual_seed(0))
    generator, critic = iterative.model.generator, iterative.model.critic
    p = iterative.params
    _, _, fakes = search_latents(
        generator, critic.trunk, x, start, steps, p.search_learning_rate, p.score_lambda, p.search_beta1
    )
    with torch.no_grad():
        if steps == 0:
            torch.testing.assert_close(fakes, generator(start))
        a_r = (x - fakes).pow(2).mean(dim=(1, 2, 3))
        a_d = (critic.features(x) - critic.features(fakes)).pow(2).mean(1)
    torch.testing.assert_close(
        torch.from_numpy(scores.image_scores), (a_r + a_d).double(), rtol=1e-5, atol=1e-6
    )
    assert scores.anomaly_maps is not None
    torch.testing.assert_close(torch.from_numpy(scores.anomaly_maps), (x - fakes).abs()[:, 0])


def test_paper_settings():
    params = FAnoGANIterative.default_params(CategorySpec("screw", "object", 1), "paper")
    assert (params.search_steps, params.score_lambda, params.width, params.image_size) == (500, 0.1, 64, 128)
    assert FAnoGANIterative.inference_kind == "iterative" and FAnoGANIterative.trained_by == "fanogan"
    assert dataclasses.asdict(params.gan_params()) == dataclasses.asdict(
        FAnoGAN.default_params(CategorySpec("screw", "object", 1), "paper")
    )


GRID = ("--categories", "pin", "--budget", "smoke", "--repeats", "1")


@pytest.fixture(scope="module")
def shared_run(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("shared")
    result = adbench(
        "run", "--methods", "fanogan-iterative,fanogan", *GRID, "--data", str(tiny_root), "--out", str(out),
        "--name", "r",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out / "r"


def test_a_run_trains_the_gan_once_and_both_methods_score_with_it(shared_run):
    manifest = json.loads((shared_run / "manifest.json").read_text())
    cells = {cell["method"]: cell for cell in manifest["cells"]}
    assert [cell["method"] for cell in manifest["cells"]] == ["fanogan", "fanogan-iterative"]  # trainer first
    assert cells["fanogan"]["steps"] == 10 and "trained_by" not in cells["fanogan"]
    assert cells["fanogan-iterative"]["trained_by"] == "fanogan"
    assert cells["fanogan-iterative"]["steps"] is None and cells["fanogan-iterative"]["fit_seconds"] is None
    iterative_cell = shared_run / "cells" / "fanogan-iterative" / "pin" / "seed0"
    assert not (iterative_cell / "losses.csv").exists()  # it trained nothing
    trained = load_file(shared_run / "cells" / "fanogan" / "pin" / "seed0" / "checkpoint.safetensors")
    scored_with = load_file(iterative_cell / "checkpoint.safetensors")
    assert scored_with and all(torch.equal(tensor, trained[name]) for name, tensor in scored_with.items())
    assert {name.split(".")[0] for name in scored_with} == {"generator", "critic"}


def test_the_report_shows_the_controlled_comparison_with_the_measured_numbers(shared_run, tmp_path):
    result = adbench("report", str(shared_run), "--out", str(tmp_path / "report.md"))
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "report.md").read_text()
    section = report.split("## Controlled comparison")[1].split("\n## ")[0]
    results = pd.read_csv(shared_run / "results.csv")
    value = results.set_index(["method", "metric"])["value"]
    row = next(line for line in section.splitlines() if line.startswith("| pin |"))
    for method in ("fanogan", "fanogan-iterative"):
        assert f"{value[(method, 'image_auroc')]:.3f} [" in row
    ratio = value[("fanogan-iterative", LATENCY_MEDIAN)] / value[("fanogan", LATENCY_MEDIAN)]
    assert row.endswith(f"| {ratio:,.1f}× |") or "—" in row.split("|")[-2]
    assert "`fanogan-iterative` scored with the networks `fanogan` trained" in section
    assert "the networks fanogan trained (same category and seed)" in report  # provenance


def test_without_the_method_that_trains_or_with_other_settings_the_run_stops_first(tiny_root, tmp_path):
    alone = adbench(
        "run", "--methods", "fanogan-iterative", *GRID, "--data", str(tiny_root), "--out", str(tmp_path)
    )
    assert alone.returncode != 0
    assert "add fanogan to --methods" in one_line(alone.stderr)
    differing = adbench(
        "run", "--methods", "fanogan,fanogan-iterative", *GRID, "--data", str(tiny_root),
        "--out", str(tmp_path), "--set", "fanogan-iterative.width=16",
    )  # fmt: skip
    assert differing.returncode != 0
    assert "width: 16 against 8" in one_line(differing.stderr)
    assert list(tmp_path.iterdir()) == []  # no run folder


def test_resuming_redoes_the_adopting_cell_with_the_kept_training(shared_run, tmp_path):
    """A run stopped after fanogan's cell: resuming keeps it and the iterative cell adopts its networks."""
    run = copy_run(shared_run, tmp_path / "r")
    edit_manifest(run, lambda manifest: manifest["cells"].pop())  # as if stopped before the last cell
    trained = (run / "cells" / "fanogan" / "pin" / "seed0" / "checkpoint.safetensors").read_bytes()
    result = adbench("run", "--resume", str(run))
    assert result.returncode == 0, result.stderr
    assert "kept fanogan/pin/seed0" in result.stderr
    assert (run / "cells" / "fanogan" / "pin" / "seed0" / "checkpoint.safetensors").read_bytes() == trained
    cells = json.loads((run / "manifest.json").read_text())["cells"]
    assert [(cell["method"], cell.get("trained_by")) for cell in cells] == [
        ("fanogan", None),
        ("fanogan-iterative", "fanogan"),
    ]
    pd.testing.assert_frame_equal(quality_rows(run), quality_rows(shared_run))  # the same scores again
