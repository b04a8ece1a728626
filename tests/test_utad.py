"""methods/utad: the inception block, AdaIN, the mutual-information negatives, the two stages in order, the
perceptual distance and its VGG-19 weights, the settings, and a detector that separates synthetic
defects."""

import dataclasses
import json

import pytest
import torch

from adbench.detector import CategorySpec, TrainingBudget
from adbench.errors import AdbenchError
from adbench.run.config import RunConfig
from adbench.run.runner import resolve_grid
from adbench.weights.registry import vgg19_shapes
from adbench_methods.utad.detector import UTAD
from adbench_methods.utad.networks import InceptionBlock, adain, shuffled_latents
from adbench_methods.utad.perceptual import LAYERS, PerceptualDistance, pixel_distance, vgg19_features
from tests.helpers import adbench, auroc_on_test_set, one_line, smoke_fit

OBJECT = CategorySpec("washer", "object", 3)


def _tiny() -> UTAD:
    return UTAD(UTAD.default_params(OBJECT, "smoke"))


def test_the_inception_block_keeps_the_side_and_concatenates_four_branches():
    torch.manual_seed(0)
    block = InceptionBlock(3, 16).train()
    x = torch.randn(4, 3, 12, 12)
    y = block(x)
    assert y.shape == (4, 16, 12, 12)
    # Each branch ends in batch norm and ReLU: its quarter of the channels is non-negative, about half of
    # it zero, and (before the ReLU) normalised over the batch.
    assert (y >= 0).all() and 0.3 < (y == 0).float().mean() < 0.7
    # Each quarter of the output is its own branch's: changing one branch's last weights changes only it.
    with torch.no_grad():
        block.branches[2][1][0].weight.mul_(2)  # the 5×5 convolution of the third branch
    changed = (block(x) - y).abs().amax(dim=(0, 2, 3)) > 0
    assert changed.tolist() == [False] * 8 + [True] * 4 + [False] * 4
    with pytest.raises(ValueError, match="multiple of 4"):
        InceptionBlock(3, 10)


def test_adain_gives_each_channel_the_mlps_mean_and_standard_deviation():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, 8) * 4 + 2
    scale, shift = torch.rand(3, 5) + 0.5, torch.randn(3, 5)
    y = adain(x, scale, shift)
    torch.testing.assert_close(y.mean(dim=(2, 3)), shift, atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), scale, atol=1e-4, rtol=0)


def test_the_mutual_information_negatives_are_the_batch_permuted_with_no_image_paired_with_itself():
    latents = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 2, 3, 3)
    for seed in range(20):
        negatives = shuffled_latents(latents, torch.Generator().manual_seed(seed))
        order = negatives[:, 0, 0, 0].long()
        assert sorted(order.tolist()) == list(range(6))  # a permutation of the batch
        assert (order != torch.arange(6)).all()
        assert torch.equal(negatives, latents[order])
    with pytest.raises(ValueError, match="at least 2"):
        shuffled_latents(latents[:1])


def test_the_two_stages_train_in_order_and_the_ie_net_stays_fixed_while_the_expert_net_trains():
    torch.manual_seed(0)
    detector = _tiny()
    images = torch.rand(6, 3, 32, 32)
    initial = {name: tensor.clone() for name, tensor in detector.state_tensors().items()}
    seen: list[set[str]] = []
    ie_after_stage_1: dict[str, torch.Tensor] = {}

    def on_step(step: int, losses: dict[str, float]) -> None:
        if "reconstruction" in losses and not ie_after_stage_1:
            ie_after_stage_1.update({k: v.clone() for k, v in detector.ie_net.state_dict().items()})
        seen.append(set(losses))

    detector.fit(images, TrainingBudget(steps=10, batch_size=4), on_step)
    assert detector.stage_steps(10) == (5, 5)
    assert seen == [{"mi", "kl", "impression"}] * 5 + [{"reconstruction", "naive", "detail"}] * 5
    final = detector.state_tensors()
    changed = {name.split(".")[0] for name in initial if not torch.equal(initial[name], final[name])}
    assert changed == {"ie_net", "expert_net"}
    for key, value in detector.ie_net.state_dict().items():
        assert torch.equal(value, ie_after_stage_1[key]), key


def test_perceptual_distance_is_zero_for_identical_images_and_grows_with_a_perturbation():
    torch.manual_seed(0)
    distance = PerceptualDistance()
    images = torch.rand(2, 3, 32, 32)
    assert distance(images, images).abs().max() == 0
    noise = torch.randn_like(images)
    growing = [float(distance(images, (images + s * noise).clamp(0, 1)).mean()) for s in (0.02, 0.1, 0.3)]
    assert 0 < growing[0] < growing[1] < growing[2]
    # A local change shows where it is.
    changed = images.clone()
    changed[:, :, 4:12, 4:12] = 1 - changed[:, :, 4:12, 4:12]
    heat = distance(images, changed)
    assert heat.shape == (2, 32, 32)
    assert heat[:, 4:12, 4:12].mean() > 5 * heat[:, 20:, 20:].mean()
    assert torch.equal(pixel_distance(images, changed)[:, 20:, 20:], torch.zeros(2, 12, 12))


def test_the_perceptual_network_is_torchvisions_vgg19_layers_and_takes_its_tensors():
    features = vgg19_features()
    # conv1_2, conv2_2 and conv3_4 are the 2nd, 4th and 8th convolutions, at torchvision's indices.
    convolutions = [index for index, layer in enumerate(features) if isinstance(layer, torch.nn.Conv2d)]
    assert convolutions[1] == LAYERS["conv1_2"] and convolutions[3] == LAYERS["conv2_2"]
    assert convolutions[7] == LAYERS["conv3_4"] == len(features) - 1
    shapes = vgg19_shapes()
    ours = {f"features.{key}": tuple(value.shape) for key, value in features.state_dict().items()}
    assert ours.items() <= shapes.items()
    torch.manual_seed(1)
    published = {f"features.{k}": torch.randn_like(v) for k, v in features.state_dict().items()}
    published["classifier.0.bias"] = torch.zeros(4096)  # the rest of the file is not needed
    distance = PerceptualDistance(published)
    assert torch.equal(distance.features[16].weight, published["features.16.weight"])


def test_paper_settings():
    params = UTAD.default_params(OBJECT, "paper")
    assert (params.image_size, params.ie_blocks, params.expert_residual_blocks) == (256, 4, 2)
    assert (params.perceptual, params.ie_learning_rate, params.expert_learning_rate) == ("vgg19", 1e-2, 1e-4)
    budget = UTAD.default_budget(OBJECT, "paper")
    assert budget == TrainingBudget(steps=None, batch_size=4, epochs=400)
    detector = UTAD(params)
    count = sum(w.numel() for m in (detector.ie_net, detector.expert_net) for w in m.parameters())
    assert abs(count - 16.77e6) < 0.05e6  # the paper's Table 4
    assert detector.stage_steps(detector.training_steps(budget, 10)) == (600, 600)  # 200 epochs each
    assert UTAD.params_departures(params) == ()
    smoke = UTAD.default_params(OBJECT, "smoke")
    assert smoke.perceptual == "pixel" and "VGG-19" in UTAD.params_departures(smoke)[0]


def test_briefly_trained_utad_separates_synthetic_defects(tiny_root):
    """300 seeded steps on 32-px washers at the `smoke` widths, pixel maps: better than chance."""
    detector, tensors = smoke_fit(UTAD, tiny_root, "washer", "object", 300, batch_size=4)
    auroc = auroc_on_test_set(detector, tensors)
    print(f"utad on washer: image AUROC {auroc:.3f}")
    assert auroc > 0.7


def test_a_run_needing_the_missing_vgg19_stops_before_its_folder_exists(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ADBENCH_CACHE_DIR", str(tmp_path / "cache"))
    result = adbench(
        "run", "--data", str(tiny_root), "--methods", "utad", "--categories", "washer", "--budget", "smoke",
        "--set", "utad.perceptual=vgg19", "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    line = one_line(result.stderr)
    assert result.returncode == 2
    assert "vgg19-dcbb9e9d.pth" in line and "adbench weights fetch vgg19" in line
    assert "utad.perceptual=pixel" in line
    assert not (tmp_path / "runs").exists()
    # A dry run shows the plan, then fails as the run would, naming the same file.
    dry = adbench(
        "run", "--data", str(tiny_root), "--methods", "utad", "--categories", "washer", "--budget", "paper",
        "--dry-run", "--json", "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    assert dry.returncode == 2 and "would stop before training" in one_line(dry.stderr)
    plan = json.loads(dry.stdout.splitlines()[0])
    assert (plan["image_size"], plan["params"]["perceptual"]) == (256, "vgg19")
    assert "adbench weights fetch vgg19" in plan["stops_before_training"]
    assert not (tmp_path / "runs").exists()


def test_rescoring_still_needs_the_vgg19_its_maps_are_computed_with(tiny_root, tmp_path, monkeypatch):
    """Re-scoring a checkpoint skips what only training needs (DRAEM's texture folder), not what scoring
    needs (utad's VGG-19): that stops the re-scoring before its folder exists too."""
    monkeypatch.setenv("ADBENCH_CACHE_DIR", str(tmp_path / "cache"))
    config = RunConfig(
        methods=("utad", "draem"),
        categories=("washer",),
        data=tiny_root,
        budget="smoke",
        method_params={"utad": {"perceptual": "vgg19"}, "draem": {"anomaly_source": str(tmp_path / "gone")}},
    )
    rescoring = dataclasses.replace(config, eval_only_from=tmp_path / "earlier-run")
    with pytest.raises(AdbenchError, match="adbench weights fetch vgg19") as stopped:
        resolve_grid(rescoring)
    # The re-scoring run's params are the earlier run's: `--set`, which it refuses, is not offered.
    assert "--set" not in str(stopped.value)
    without_vgg19 = dataclasses.replace(rescoring, method_params={"draem": config.method_params["draem"]})
    assert set(resolve_grid(without_vgg19).methods) == {"utad", "draem"}
    with pytest.raises(AdbenchError, match="gone"):  # training needs the texture folder
        resolve_grid(dataclasses.replace(config, method_params={"draem": config.method_params["draem"]}))


def test_the_pixel_maps_are_recorded_as_a_departure(tiny_root, tmp_path):
    dry = adbench(
        "run", "--data", str(tiny_root), "--methods", "utad", "--categories", "washer", "--budget", "smoke",
        "--dry-run", "--json", "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "VGG-19" in dry.stdout and "pixel-wise" in dry.stdout
    run = adbench(
        "run", "--data", str(tiny_root), "--methods", "utad", "--categories", "washer", "--budget", "smoke",
        "--repeats", "1", "--out", str(tmp_path), "--name", "run",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert "pixel-wise" in manifest["cells"][0]["params_departures"][0]


@pytest.mark.parametrize("side", [20, 36])
def test_a_side_the_network_cannot_halve_is_refused(side):
    with pytest.raises(ValueError, match="multiple of 8"):
        UTAD(dataclasses.replace(UTAD.default_params(OBJECT, "smoke"), image_size=side))
