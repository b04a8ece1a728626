"""Measure what an autoencoder learns on real photographs, step by step (issue 29's measurements).

    python tools/autoencoder_probe.py --variant base --variant mean-loss --steps 300

For each variant and category of the photo set (tests/photos.py, written with --seed, default 1: the
measurements choose settings, so they never look at the seed-0 set the tests use), trains ssimae as it
was before issue 29 (SSIM loss alone, sigmoid output; `current` is ssimae now), or --method l2ae, at
the `default` parameters with one thing changed and prints, every --every steps: the loss; the
gradient norm reaching the first encoder layer; the latent's spread over inputs (mean over latent
units of the standard deviation across 8 held-out patches, divided by the mean |latent|); the share
of sigmoid inputs beyond ±4 (saturated); and input_sensitivity on those patches. The photographs'
local variance against SSIM's c2 is printed once per category.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.formats.mvtec_ad import read_category
from adbench.data.synth import generate
from adbench.evaluation.sensitivity import input_sensitivity
from adbench_methods.autoencoder import ssim as ssim_module
from adbench_methods.autoencoder.detector import L2Autoencoder, per_image_sum
from adbench_methods.autoencoder.ssim import SSIMAutoencoder
from adbench_methods.common.augment import AugmentPolicy, random_views
from tests.photos import write_photo_dataset

Variant = Callable[[L2Autoencoder], L2Autoencoder]
# ssimae before issue 29: the SSIM loss alone, a sigmoid output. `current` is ssimae as it is now.
FORMER_SSIMAE = {"l2_weight": 0.0, "sigmoid_output": True}


def _torch_default_init(detector: L2Autoencoder) -> L2Autoencoder:
    for layer in detector.network.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            layer.reset_parameters()
    return detector


def _replace(**changes) -> Variant:
    def variant(detector: L2Autoencoder) -> L2Autoencoder:
        return type(detector)(dataclasses.replace(detector.params, **changes))

    return variant


def _mean_loss(detector: L2Autoencoder) -> L2Autoencoder:
    detector.reconstruction_loss = lambda r, t: detector.anomaly_map(r, t).mean()
    return detector


def _window(size: int) -> Variant:
    def variant(detector: L2Autoencoder) -> L2Autoencoder:
        ssim_module.SSIM_WINDOW = size
        return detector

    return variant


def _colour(detector: L2Autoencoder) -> L2Autoencoder:
    return type(detector)(dataclasses.replace(detector.params, channels=detector.category.channels))


def _output_layer_scaled(factor: float) -> Variant:
    def variant(detector: L2Autoencoder) -> L2Autoencoder:
        layers = [m for m in detector.network.decoder if isinstance(m, nn.ConvTranspose2d)]
        with torch.no_grad():
            layers[-1].weight.mul_(factor)
        return detector

    return variant


def _l2_warm_up(steps: int) -> Variant:
    def variant(detector: L2Autoencoder) -> L2Autoencoder:
        ssim_loss, calls = detector.reconstruction_loss, [0]

        def loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            calls[0] += 1
            if calls[0] <= steps:
                return per_image_sum(L2Autoencoder.anomaly_map(detector, reconstruction, target))
            return ssim_loss(reconstruction, target)

        detector.reconstruction_loss = loss
        return detector

    return variant


def _linear_small_start(learning_rate: float) -> Variant:
    def variant(detector: L2Autoencoder) -> L2Autoencoder:
        params = dataclasses.replace(detector.params, sigmoid_output=False, learning_rate=learning_rate)
        detector = type(detector)(params)
        layers = [m for m in detector.network.decoder if isinstance(m, nn.ConvTranspose2d)]
        with torch.no_grad():
            layers[-1].weight.mul_(0.01)
            layers[-1].bias.fill_(0.5)
        return detector

    return variant


VARIANTS: dict[str, Variant] = {
    "base": lambda detector: detector,
    "current": lambda detector: type(detector)(type(detector).default_params(detector.category, "default")),
    "current-paper-optimiser": lambda detector: type(detector)(
        type(detector).default_params(detector.category, "paper")
    ),
    "mean-loss": _mean_loss,
    "lr-2e-4": _replace(learning_rate=2e-4),
    "lr-1e-4": _replace(learning_rate=1e-4),
    "no-weight-decay": _replace(weight_decay=0.0),
    "linear-output": _replace(sigmoid_output=False),
    "linear-output-lr-2e-4": _replace(sigmoid_output=False, learning_rate=2e-4),
    "torch-init": _torch_default_init,
    "window-7": _window(7),
    "colour": _colour,
    "ssim-plus-l2-linear": _replace(l2_weight=1.0, sigmoid_output=False),
    "ssim-plus-l2-sigmoid": _replace(l2_weight=1.0),
    "linear-small-start": _linear_small_start(1e-3),
    "linear-small-start-lr-2e-4": _linear_small_start(2e-4),
    "l2-warm-up-30": _l2_warm_up(30),
    "l2-warm-up-60": _l2_warm_up(60),
    "output-layer-x0.1": _output_layer_scaled(0.1),
    "output-layer-x0.01": _output_layer_scaled(0.01),
    "no-upscale": _replace(image_size=128, patch_size=64, patch_stride=16),
}


def _local_variance_report(patches: torch.Tensor) -> str:
    gray = patches.mean(dim=1, keepdim=True)
    mean = nn.functional.avg_pool2d(gray, 11, 1)
    variance = (nn.functional.avg_pool2d(gray**2, 11, 1) - mean**2).clamp(min=0)
    below = (variance < 0.03**2).float().mean().item()
    median = variance.sqrt().median().item()
    return f"local sd (11×11) median {median:.3f}, share below sqrt(c2)=0.03 {below:.2f}"


def probe(
    method: type[L2Autoencoder], root: Path, name: str, kind: str, variant: str, steps: int, every: int
):
    files = read_category(root, name, kind)
    category = describe(files)
    torch.manual_seed(0)
    params = method.default_params(category, "default")
    if method is SSIMAutoencoder:  # the variants change one thing of the paper's loss with a sigmoid output
        params = dataclasses.replace(params, **FORMER_SSIMAE)
    detector = method(params)
    detector.category = category
    detector = VARIANTS[variant](detector)
    tensors = load_category(files, category, detector.input_spec)
    train = CategoryTensors.as_float(tensors.train)
    held_out = CategoryTensors.as_float(tensors.validation)
    p = detector.params
    plain = AugmentPolicy(p.patch_size, 0.0, 0.0, 0.0)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        patches = random_views(held_out, 8, plain) if p.patch_size < p.image_size else held_out[:8]
    print(f"  {name}: {_local_variance_report(patches)}")
    network = detector.network
    optimiser = torch.optim.Adam(network.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    policy = detector._policy()
    pre_sigmoid: list[torch.Tensor] = []
    if p.sigmoid_output:
        network.decoder[-1].register_forward_hook(
            lambda module, inputs, output: pre_sigmoid.append(inputs[0])
        )
    for step in range(steps + 1):
        if step % every == 0:
            network.eval()
            with torch.no_grad():
                latent = network.encoder(patches).flatten(1)
                spread = (latent.std(dim=0).mean() / latent.abs().mean().clamp(min=1e-12)).item()
                pre_sigmoid.clear()
                network(patches)
                saturated = (pre_sigmoid[0].abs() > 4).float().mean().item() if pre_sigmoid else float("nan")
                sensitivity = input_sensitivity(_PatchView(network), patches)
                outputs = network(patches)
            network.train()
        batch = random_views(train, 16, policy)
        loss = detector.reconstruction_loss(network(batch), batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if step % every == 0:
            gradient = network.encoder[0].weight.grad.norm().item()
            print(
                f"  {name:7s} {variant:16s} step {step:4d} loss {loss.item():10.4g} "
                f"encoder grad {gradient:9.3g} "
                f"latent spread {spread:7.3g} saturated {saturated:5.2f} sensitivity {sensitivity:6.3f} "
                f"output {outputs.min().item():.3g}..{outputs.max().item():.3g}"
            )
        optimiser.step()


class _PatchView:
    """input_sensitivity's view of a bare network: reconstructions of the patches as they are."""

    def __init__(self, network: nn.Module) -> None:
        self.network = network

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("ssimae", "l2ae"), default="ssimae")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    parser.add_argument("--category", action="append")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--synthetic", action="store_true", help="the synthetic generator's data instead")
    arguments = parser.parse_args()
    method = SSIMAutoencoder if arguments.method == "ssimae" else L2Autoencoder
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "data"
        if arguments.synthetic:
            generate(root, seed=arguments.seed)
        else:
            write_photo_dataset(root, seed=arguments.seed)
        kinds = tomllib.loads((root / "categories.toml").read_text())["kinds"]
        for variant in arguments.variant or ["base"]:
            for name, kind in kinds.items():
                if arguments.category and name not in arguments.category:
                    continue
                probe(method, root, name, kind, variant, arguments.steps, arguments.every)


if __name__ == "__main__":
    main()
