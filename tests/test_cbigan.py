import dataclasses

import pytest
import torch

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import CategorySpec, TrainingBudget
from adbench.evaluation.metrics.image import image_auroc
from adbench_methods.cbigan import networks
from adbench_methods.cbigan.detector import EGBAD, CBiGAN
from adbench_methods.cbigan.networks import LATENT_DIM, Discriminator, Encoder, Generator
from adbench_methods.cbigan.training import consistency_loss, gradient_penalty
from adbench_methods.common.patches import extract_patches, stitch_average


def _parameters(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("side", "channels"), [(128, 3), (64, 1)])
def test_network_shapes(side, channels):
    x, z = torch.rand(2, channels, side, side) * 2 - 1, torch.randn(2, LATENT_DIM)
    encoder, generator, discriminator = (
        Encoder(channels, side),
        Generator(channels, side),
        Discriminator(channels, side),
    )
    assert encoder(x).shape == (2, LATENT_DIM)
    generated = generator(z)
    assert generated.shape == (2, channels, side, side) and generated.abs().max() <= 1
    assert discriminator(x, z).shape == (2,)
    assert discriminator.features(x).shape == (2, 3, side, side)  # the first 3×3 conv: 3 filters


def test_parameter_counts_match_the_authors_model():
    counts = {
        "G": _parameters(Generator(3, 128)),
        "E": _parameters(Encoder(3, 128)),
        "D": _parameters(Discriminator(3, 128)),
    }
    print("CBiGAN parameters at 128 px:", counts)
    for name, authors in {"G": 83_000, "E": 88_000, "D": 666_000}.items():
        assert abs(counts[name] - authors) / authors < 0.03, (name, counts[name])


class _LinearCritic(torch.nn.Module):
    """D(x, z) = a·x + b·z, whose gradient with respect to (x, z) is (a, b) everywhere."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x, z):
        return (x.flatten(1) * self.a).sum(1) + (z * self.b).sum(1)


def test_gradient_penalty_is_zero_at_unit_norm_and_positive_otherwise():
    x_real, x_fake = torch.rand(4, 1, 4, 4), torch.rand(4, 1, 4, 4)
    z_real, z_fake = torch.randn(4, 3), torch.randn(4, 3)
    a, b = torch.zeros(16), torch.zeros(3)
    a[0], b[1] = 0.6, 0.8  # joint norm 1 only when x and z are taken together
    assert gradient_penalty(_LinearCritic(a, b), x_real, z_real, x_fake, z_fake).item() == pytest.approx(
        0, abs=1e-6
    )
    assert gradient_penalty(
        _LinearCritic(2 * a, 2 * b), x_real, z_real, x_fake, z_fake
    ).item() == pytest.approx(1.0)
    assert gradient_penalty(_LinearCritic(a, 0 * b), x_real, z_real, x_fake, z_fake).item() == pytest.approx(
        0.16
    )


def test_gradient_penalty_evaluates_interpolates_of_the_pairs():
    seen = {}

    class Recorder(torch.nn.Module):
        def forward(self, x, z):
            seen["x"], seen["z"] = x.detach(), z.detach()
            return x.flatten(1).sum(1) + z.sum(1)

    x_real, x_fake = torch.zeros(8, 1, 2, 2), torch.ones(8, 1, 2, 2)
    z_real, z_fake = torch.zeros(8, 3), torch.ones(8, 3)
    torch.manual_seed(0)
    gradient_penalty(Recorder(), x_real, z_real, x_fake, z_fake)
    one_minus_epsilon = seen["x"][:, 0, 0, 0]
    assert len(set(one_minus_epsilon.tolist())) == 8, "one ε per sample"
    # The image and the latent of each interpolate use the same ε: they stay a pair.
    assert torch.allclose(seen["z"], one_minus_epsilon[:, None].expand(8, 3))
    assert torch.allclose(seen["x"].flatten(1), one_minus_epsilon[:, None].expand(8, 4))


@pytest.mark.parametrize("pairing", ["authors", "joint"])
def test_gradient_penalty_pairs_the_latents_as_named(pairing):
    """D(x, z) = ½||z||² has the gradient (0, ẑ), so the penalty reveals where ẑ was taken."""

    class HalfSquaredLatent(torch.nn.Module):
        def forward(self, x, z):
            return 0.0 * x.flatten(1).sum(1) + 0.5 * z.pow(2).sum(1)

    x_real, x_fake = torch.rand(16, 1, 2, 2), torch.rand(16, 1, 2, 2)
    encoded, prior = torch.zeros(16, 4), torch.full((16, 4), 1.5)  # E(x) and z
    torch.manual_seed(3)
    penalty = gradient_penalty(HalfSquaredLatent(), x_real, encoded, x_fake, prior, pairing)
    torch.manual_seed(3)
    epsilon = torch.rand(16, 1)[:, 0]
    # authors: ẑ = εz + (1 − ε)E(x), the ε of the real image on the prior latent; joint: ẑ = εE(x) + (1 − ε)z.
    weight_of_prior = epsilon if pairing == "authors" else 1 - epsilon
    norm = weight_of_prior * 1.5 * 2  # ||ẑ|| = w · 1.5 · √4
    assert penalty.item() == pytest.approx(((norm - 1) ** 2).mean().item(), rel=1e-5)


def test_paper_settings_follow_the_authors_code():
    for name, kind in [("grid", "texture"), ("screw", "object"), ("bottle", "object")]:
        params = CBiGAN.default_params(CategorySpec(name, kind, 1 if name != "bottle" else 3), "paper")
        assert params.channels == 3, "their loader converts grayscale categories to RGB"
        assert params.penalty_pairing == "authors" and params.learning_rate == 1e-4
        assert params.ema_decay == pytest.approx(0.9994, abs=1e-5)
        assert (params.critic_steps, params.gradient_penalty_weight) == (5, 10.0)
    assert CBiGAN.default_budget(CategorySpec("grid", "texture", 1), "paper") == TrainingBudget(200_000, 32)
    with pytest.raises(ValueError, match="penalty_pairing"):
        CBiGAN(
            dataclasses.replace(
                CBiGAN.default_params(CategorySpec("grid", "texture", 1), "smoke"), penalty_pairing="x"
            )
        )


def test_egbad_is_cbigan_with_alpha_zero():
    for kind in ("object", "texture"):
        category = CategorySpec("bottle", kind, 3)
        cbigan = CBiGAN.default_params(category, "paper")
        egbad = EGBAD.default_params(category, "paper")
        assert egbad.alpha == 0 and cbigan.alpha > 0
        assert dataclasses.replace(cbigan, alpha=0.0) == egbad
    assert CBiGAN.default_params(CategorySpec("tile", "texture", 3), "paper").alpha == 1e-5
    assert CBiGAN.default_params(CategorySpec("screw", "object", 1), "paper").alpha == 1e-4
    assert issubclass(EGBAD, CBiGAN) and EGBAD.fit is CBiGAN.fit and EGBAD.score is CBiGAN.score


def test_texture_patches_cover_every_pixel_exactly_once():
    images = torch.arange(2 * 512 * 512, dtype=torch.float32).reshape(2, 1, 512, 512)
    patches = extract_patches(images, 64, 64)
    assert patches.shape == (2 * 64, 1, 64, 64)
    values = patches.flatten()
    assert torch.equal(values.sort().values, images.flatten())  # each pixel once, none twice
    assert torch.equal(stitch_average(patches[:, 0], 512, 64), images[:, 0])


def _train(method, category, tensors, steps, seed=0):
    torch.manual_seed(seed)
    detector = method(method.default_params(category, "smoke"))
    detector.fit(CategoryTensors.as_float(tensors.train), TrainingBudget(steps, 16))
    return detector


@pytest.fixture(scope="module")
def pin(tiny_root):
    files = read_category(tiny_root, "pin", "object")
    category = describe(files)
    return category, load_category(
        files, category, CBiGAN(CBiGAN.default_params(category, "smoke")).input_spec
    )


def test_consistency_term_lowers_training_reconstruction_error(pin):
    category, tensors = pin
    images = CategoryTensors.as_float(tensors.train) * 2 - 1

    def reconstruction_error(method):
        detector = _train(method, category, tensors, steps=30)
        with torch.no_grad():
            average = detector.average.modules
            return (images - average["generator"](average["encoder"](images))).abs().mean().item()

    assert CBiGAN.default_params(category, "smoke").alpha == pytest.approx(4e-4)  # 1e-4 × (128/64)²
    assert reconstruction_error(CBiGAN) < 0.92 * reconstruction_error(EGBAD)


def test_consistency_loss_is_per_sample_l1_sums():
    class Identity(torch.nn.Module):
        def forward(self, value):
            return value

    x, z = torch.ones(2, 1, 2, 2), torch.ones(2, 3)

    class Halve(torch.nn.Module):
        def forward(self, value):
            return value * 0.5

    # G(E(x)) = x/4: |x − x/4| summed over 4 pixels = 3; E(G(z)) = z/4: 3 × 0.75 = 2.25.
    assert consistency_loss(Halve(), Halve(), x, z).item() == pytest.approx(3 + 2.25)
    assert consistency_loss(Identity(), Identity(), x, z).item() == 0


def test_objects_at_smaller_sides_keep_the_papers_alpha_balance():
    category = CategorySpec("screw", "object", 1)
    assert CBiGAN.default_params(category, "paper").alpha == 1e-4
    assert CBiGAN.default_params(category, "default").alpha == pytest.approx(1e-4 * (128 / 64) ** 2)
    texture = CategorySpec("tile", "texture", 3)
    assert {CBiGAN.default_params(texture, budget).alpha for budget in ("smoke", "default", "paper")} == {
        1e-5
    }


def _discs(count: int, defective: bool, seed: int, side: int = 32) -> torch.Tensor:
    """Bright discs on a dark noisy background; defects are mid-grey holes punched into the disc.

    A hole is closer than the disc to what an untrained generator draws (about mid-grey), so a detector
    that has not learnt the disc scores defects *lower*: only training can separate them.
    """
    generator = torch.Generator().manual_seed(seed)
    rows, cols = torch.meshgrid(torch.arange(side) + 0.5, torch.arange(side) + 0.5, indexing="ij")
    images = []
    for _ in range(count):
        cy, cx = (side / 2 + torch.randn(2, generator=generator)).tolist()
        image = 0.15 + 0.05 * torch.rand(side, side, generator=generator)
        image[(rows - cy) ** 2 + (cols - cx) ** 2 < (side * 0.3) ** 2] = 0.85
        if defective:
            hy, hx = (
                torch.tensor([cy, cx]) + (torch.rand(2, generator=generator) - 0.5) * side * 0.3
            ).tolist()
            image[((rows - hy).abs() < side * 0.1) & ((cols - hx).abs() < side * 0.1)] = 0.5
        images.append(image)
    return torch.stack(images)[:, None]


def test_briefly_trained_cbigan_separates_synthetic_defects():
    # Grayscale discs enter as RGB, as the harness gives them to CBiGAN.
    train = _discs(32, defective=False, seed=0).expand(-1, 3, -1, -1)
    test = torch.cat([_discs(10, defective=False, seed=1), _discs(10, defective=True, seed=2)])
    test = test.expand(-1, 3, -1, -1)
    labels = [0] * 10 + [1] * 10
    category = CategorySpec("disc", "object", 1)
    params = dataclasses.replace(
        CBiGAN.default_params(category, "smoke"),
        image_size=32,
        patch_size=32,
        alpha=CBiGAN.object_alpha_at(32),
    )
    torch.manual_seed(0)
    detector = CBiGAN(params)
    untrained = image_auroc(labels, detector.score(test).image_scores)
    detector.fit(train, TrainingBudget(steps=80, batch_size=16))
    trained = image_auroc(labels, detector.score(test).image_scores)
    print(f"image AUROC untrained {untrained:.2f}, trained {trained:.2f}")
    assert untrained < 0.3 and trained > 0.8


def test_score_features_are_the_chosen_layer_of_the_image_path():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    first = Discriminator(1, 64)
    assert torch.equal(first.features(x), first.trunk[0].conv1(x))
    deeper = Discriminator(1, 64, "trunk.1.conv2")
    block = deeper.trunk[1]
    expected = block.conv2(block.act(block.conv1(deeper.trunk[0](x))))
    assert torch.allclose(deeper.features(x), expected)
    with pytest.raises(ValueError, match=r"valid: .*trunk\.0\.conv1"):
        Discriminator(1, 64, "latent.0")


def test_feature_difference_equals_the_difference_of_features():
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    for layer in ("trunk.0.conv1", "trunk.0.skip", "trunk.1.conv2"):
        discriminator = Discriminator(3, 64, layer)
        expected = discriminator.features(x) - discriminator.features(y)
        assert torch.allclose(discriminator.feature_difference(x, y), expected, atol=1e-5), layer


def test_fused_inference_matches_the_training_path(monkeypatch):
    torch.manual_seed(0)
    fused_calls = []
    original = networks._fused_conv
    monkeypatch.setattr(networks, "_fused_conv", lambda *a, **k: fused_calls.append(1) or original(*a, **k))
    generator = Generator(3, 64).to(memory_format=torch.channels_last)
    z = torch.randn(4, LATENT_DIM)
    unfused = generator(z)  # gradients enabled: module by module
    assert not fused_calls
    with torch.no_grad():
        fused = generator(z)
    assert len(fused_calls) == 4 * len(generator.blocks)  # conv1, conv2, skip, conv3 + skip
    assert torch.allclose(fused, unfused, atol=1e-5)
