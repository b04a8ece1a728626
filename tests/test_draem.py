"""methods/draem and the simulated-anomaly machinery it shares with DSR: Perlin masks, textures, the blend,
the focal loss, DRAEM's networks as the authors' code builds them, its score, and a detector that separates
synthetic defects."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import CategorySpec, Scores, TrainingBudget
from adbench.errors import AdbenchError
from adbench.evaluation.metrics.image import image_auroc
from adbench.evaluation.sensitivity import input_sensitivity
from adbench_methods.common.focal import focal_loss
from adbench_methods.common.perlin import perlin_masks, perlin_noise
from adbench_methods.common.simulated_anomalies import (
    FolderTextures,
    ProceduralTextures,
    augment_textures,
    blend_anomalies,
    texture_files,
)
from adbench_methods.draem.detector import DRAEM
from adbench_methods.draem.networks import DiscriminativeNetwork, ReconstructiveNetwork
from tests.helpers import adbench, one_line


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_perlin_masks_are_seeded_binary_and_cover_what_drams_code_covers():
    masks = perlin_masks(200, 64, _generator(0))
    assert masks.shape == (200, 1, 64, 64)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(masks, perlin_masks(200, 64, _generator(0)))
    assert not torch.equal(masks, perlin_masks(200, 64, _generator(1)))
    coverage = masks.mean(dim=(1, 2, 3))
    # The code's noise thresholded at 0.5 covers a few per cent of an image, never a large part of it;
    # a few masks come out empty (the training then uses those views as defect-free).
    assert 0.02 < coverage.mean() < 0.08
    assert coverage.max() < 0.3
    assert 0 < (coverage == 0).float().mean() < 0.2


def test_perlin_noise_is_smooth_between_lattice_corners_and_zero_on_them():
    noise = perlin_noise(64, 64, (1, 1), _generator(0))
    assert noise.abs().max() <= math.sqrt(2)
    # One cell across the image: neighbouring pixels differ little.
    assert (noise[1:] - noise[:-1]).abs().max() < 0.1
    # Gradient noise is zero at the lattice corners: the corner pixels (0.5 px from them) are near zero.
    assert noise[0, 0].abs() < 0.05 and noise[-1, -1].abs() < 0.05


def test_blend_leaves_pixels_outside_the_mask_unchanged_and_mixes_inside_at_one_opacity():
    generator = _generator(0)
    images, textures = torch.rand(16, 3, 32, 32), torch.rand(16, 3, 32, 32)
    masks = (torch.rand(16, 1, 32, 32) > 0.7).float()
    blended, used = blend_anomalies(images, textures, masks, generator)
    outside = (1 - used).expand_as(images).bool()
    assert torch.equal(blended[outside], images[outside])
    anomalous = used.flatten(1).amax(1) > 0
    assert 0 < anomalous.sum() < 16  # about half left defect-free
    assert torch.equal(used[anomalous], masks[anomalous]) and not used[~anomalous].any()
    for index in torch.nonzero(anomalous).flatten():
        inside = used[index].expand(3, -1, -1).bool()
        x, t, y = images[index][inside], textures[index][inside], blended[index][inside]
        opacity = ((y - t) / (x - t)).median()  # y = (1 − β)·t + β·x for one β per image
        assert 0 <= opacity < 0.8
        torch.testing.assert_close(y, (1 - opacity) * t + opacity * x)


def test_procedural_textures_and_augmentation_stay_images_and_vary():
    textures = ProceduralTextures().textures(6, 32, _generator(0))
    augmented = augment_textures(textures, _generator(1))
    for batch in (textures, augmented):
        assert batch.shape == (6, 3, 32, 32) and batch.min() >= 0 and batch.max() <= 1
    assert textures.std(dim=(1, 2, 3)).min() > 0.01  # patterns, not flat colours
    assert not torch.allclose(textures, augmented)


def test_a_folder_of_textures_as_dtd_distributes_it(tmp_path):
    """DTD's images/ holds one folder per class; every image under it is a texture."""
    for name, colour in (("banded/banded_0001.jpg", (255, 0, 0)), ("dotted/dotted_0001.png", (0, 0, 255))):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (40, 30), colour).save(tmp_path / name)
    (tmp_path / "README.txt").write_text("not an image")
    assert [p.name for p in texture_files(tmp_path)] == ["banded_0001.jpg", "dotted_0001.png"]
    textures = FolderTextures(tmp_path).textures(8, 16, _generator(0))
    assert textures.shape == (8, 3, 16, 16)
    reds = textures[:, 0].mean(dim=(1, 2)) > 0.9
    assert 0 < reds.sum() < 8  # both files drawn
    (tmp_path / "dotted" / "dotted_0002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(AdbenchError, match=r"dotted_0002\.jpg: unreadable"):
        texture_files(tmp_path)
    (tmp_path / "dotted" / "dotted_0002.jpg").unlink()
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdbenchError, match="holds no images"):
        texture_files(tmp_path / "empty")


def test_focal_loss_by_hand():
    probabilities = torch.tensor([0.8, 0.2]).view(1, 2, 1, 1)
    normal, anomalous = torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    smooth = 1e-5
    for mask, p_true in (
        (normal, (1 - smooth) * 0.8 + smooth * 0.2),
        (anomalous, smooth * 0.8 + (1 - smooth) * 0.2),
    ):
        p_true += smooth
        expected = -((1 - p_true) ** 2) * math.log(p_true)
        assert focal_loss(probabilities, mask).item() == pytest.approx(expected, rel=1e-5)
    # Confident and right costs almost nothing; confident and wrong costs most.
    right = focal_loss(torch.tensor([0.99, 0.01]).view(1, 2, 1, 1), normal)
    wrong = focal_loss(torch.tensor([0.01, 0.99]).view(1, 2, 1, 1), normal)
    assert right < 1e-4 < 1 < wrong


def _count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def test_networks_have_the_codes_parameter_counts_and_shapes():
    """Counts of VitjanZ/DRAEM's model_unet.py at its widths (128 and 64), 3-channel images."""
    assert _count(ReconstructiveNetwork(3, 128)) == 69_048_579
    assert _count(DiscriminativeNetwork(6, 64)) == 28_374_146
    x = torch.rand(2, 1, 64, 64)
    assert ReconstructiveNetwork(1, 4)(x).shape == x.shape
    assert DiscriminativeNetwork(2, 4)(torch.cat((x, x), 1)).shape == (2, 2, 64, 64)
    with pytest.raises(ValueError, match="multiple of 32"):
        DRAEM(
            dataclasses.replace(
                DRAEM.default_params(CategorySpec("pin", "object", 1), "smoke"), image_size=48
            )
        )


def test_image_score_is_the_maximum_of_the_mean_filtered_map(monkeypatch):
    """At 64 px DRAEM's 21-px window (at 256 px) is 5 px: one hot pixel scores 1/25, a 5×5 block its
    value, whatever single pixel is highest."""
    detector = DRAEM(
        dataclasses.replace(DRAEM.default_params(CategorySpec("pin", "object", 1), "smoke"), image_size=64)
    )
    maps = torch.zeros(2, 64, 64)
    maps[0, 10, 10] = 1.0
    maps[1, 30:35, 40:45] = 0.5
    maps[1, 5, 5] = 0.9
    monkeypatch.setattr(detector, "_segment", lambda images: (images, maps))
    scores = detector.score(torch.zeros(2, 1, 64, 64))
    assert isinstance(scores, Scores)
    np.testing.assert_allclose(scores.image_scores, [1 / 25, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(scores.anomaly_maps, maps.numpy())


def test_the_map_is_the_segmentations_anomalous_probability():
    detector = DRAEM(DRAEM.default_params(CategorySpec("pin", "object", 1), "smoke"))
    detector.load_state_tensors(detector.state_tensors())  # eval mode, as after loading
    images = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        reconstruction = detector.reconstructive(images)
        expected = detector.discriminative(torch.cat((reconstruction, images), 1)).softmax(1)[:, 1]
    maps = detector.score(images).anomaly_maps
    assert maps is not None
    torch.testing.assert_close(torch.from_numpy(maps), expected)


def test_paper_settings():
    texture, obj = CategorySpec("carpet", "texture", 3), CategorySpec("transistor", "object", 3)
    params = DRAEM.default_params(texture, "paper")
    assert (params.image_size, params.reconstructive_width, params.discriminative_width) == (256, 128, 64)
    assert (params.learning_rate, params.max_rotation_deg, params.anomaly_source) == (1e-4, 90.0, "")
    assert DRAEM.default_params(obj, "paper").max_rotation_deg == 0.0  # a turned transistor is a defect
    budget = DRAEM.default_budget(obj, "paper")
    assert budget == TrainingBudget(steps=None, batch_size=8, epochs=700)
    assert DRAEM(DRAEM.default_params(obj, "smoke")).training_steps(budget, 213) == 700 * 27


def test_briefly_trained_draem_segments_synthetic_defects(tiny_root):
    """A few hundred seeded steps on 32-px washers with procedural textures: the segmentation separates the
    real (synthetic) defects it never saw better than chance, and the reconstructions follow the input."""
    files = read_category(tiny_root, "washer", "object")
    category = describe(files)
    params = dataclasses.replace(
        DRAEM.default_params(category, "smoke"),
        reconstructive_width=8,
        discriminative_width=8,
        learning_rate=1e-3,
    )
    torch.manual_seed(0)
    detector = DRAEM(params)
    tensors = load_category(files, category, detector.input_spec)
    detector.fit(CategoryTensors.as_float(tensors.train), TrainingBudget(150, 8))
    test = CategoryTensors.as_float(tensors.test)
    auroc = image_auroc(tensors.test_labels, detector.score(test).image_scores)
    sensitivity = input_sensitivity(detector, test)
    print(f"draem on washer: image AUROC {auroc:.3f}, input sensitivity {sensitivity:.3f}")
    assert sensitivity > 0.05 and auroc > 0.65


def test_a_missing_texture_folder_stops_the_run_before_its_folder_exists(tiny_root, tmp_path):
    missing = tmp_path / "dtd" / "images"
    result = adbench(
        "run", "--data", str(tiny_root), "--methods", "draem", "--categories", "washer", "--budget", "smoke",
        "--set", f"draem.anomaly_source={missing}", "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    assert result.returncode == 2
    assert str(missing) in one_line(result.stderr) and "no such folder" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_dry_run_lists_the_procedural_texture_departure_only_without_a_texture_folder(tiny_root, tmp_path):
    textures = tmp_path / "textures"
    textures.mkdir()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(textures / "one.png")
    run = ("run", "--data", str(tiny_root), "--methods", "draem", "--categories", "washer", "--dry-run")
    assert "procedurally" in adbench(*run).stdout
    assert "procedurally" not in adbench(*run, "--set", f"draem.anomaly_source={textures}").stdout


def test_rescoring_needs_no_texture_folder(tiny_root, tmp_path):
    """The texture folder is needed to train, not to score a checkpoint again: --eval-only-from works
    after it is gone."""
    textures = tmp_path / "textures"
    textures.mkdir()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(textures / "one.png")
    run = (
        "run", "--data", str(tiny_root), "--methods", "draem", "--categories", "washer", "--budget", "smoke",
        "--repeats", "1", "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    first = adbench(*run, "--name", "trained", "--set", f"draem.anomaly_source={textures}")
    assert first.returncode == 0, first.stderr
    (textures / "one.png").unlink()
    textures.rmdir()
    trained = tmp_path / "runs" / "trained"
    again = adbench("run", "--eval-only", str(trained), "--out", str(tmp_path / "runs"), "--name", "again")
    assert again.returncode == 0, again.stderr
