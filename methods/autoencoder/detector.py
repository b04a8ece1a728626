"""`l2ae`: the L2 convolutional autoencoder of MVTec AD §4.1.2 as an adbench Detector.

Protocol (MVTec AD §4.1.2, §4.2):
- Objects: whole images at 256×256 with the extra stride-2 layer; random translation (±5 % of the side)
  and, for categories photographed in any orientation, rotation up to ±45°. No mirroring: it would turn
  some objects into their own defects (MVTec's metal_nut "flip").
- Textures: images resized to 512×512, trained on random rotated 128×128 crops (rotation in ±45°),
  reconstructed at test time in 128×128 patches at stride 30 with the per-patch maps averaged.
- Anomaly map: per-pixel squared L2 distance between input and reconstruction, summed over channels.
- Image score: the maximum of the map after DRAEM's mean filter (21 px at 256 px, scaled with the map;
  common/image_score.py gives the sources). The paper decides images by the largest defect region
  above a validation threshold, which adbench's threshold metrics do; for the ranking metrics it states
  no score. The raw maximum (`image_score="max"`), decided by one pixel, put l2ae's image AUROC at
  chance on real photographs whose maps separated the defects.
- Adam lr 2e-4, weight decay 1e-5. The paper trains 200 epochs of 10,000 patches in batches of 128
  (the `paper` budget: 200 × ⌈10,000 / 128⌉ = 15,800 steps, common/schedule.py). The loss is the
  per-image sum over pixels averaged over the batch, and the network starts He-initialised
  (networks.py): with a per-pixel mean and torch's default start, these settings rebuilt every input
  into one template image. `default` trains a few hundred steps so that a CPU finishes in minutes (the
  step counts are set by time), with lr 1e-3 instead of 2e-4. That choice is checked on data the
  benchmark never reports, the synthetic generator's seed 1 (`adbench data synth --seed 1`), not on the
  seed-0 test set. l2ae image AUROC at 1e-3 against 2e-4: sand 0.53 / 0.38, weave 0.54 / 0.49, pin and
  washer 1.00 / 1.00 (mean 0.77 / 0.72). `smoke` also shrinks the images (objects
  64 px whole, textures 128 px in 64 px patches).
- `default` length, 300 steps for objects and 500 for textures (ssimae keeps 150 / 300). At 150 / 300,
  l2ae rebuilt real photographs as blurs whose largest errors sat on every image's edges and
  highlights: on the seed-1 photo set (tests/photos.py; the tests use seed 0) image AUROC brick 0.75,
  gravel 0.50, stained tissue 0.76, coffee cup 0.48 (mean 0.62; cup pixel AUROC 0.76). Training longer
  was the cause measured, not the score: the cup at 250 / 300 / 400 steps 0.50 / 0.66 / 0.70 (pixel
  0.84 / 0.86 / 0.88), brick at 500 / 800 0.98 / 0.98; gravel stays near chance at any length (its
  pasted patches differ from gravel only in texture, and a blurred reconstruction misses both). The
  harness run at these lengths: brick 0.98, gravel 0.63, tissue 0.73, cup 0.66 (mean 0.75), input
  sensitivity 0.46 to 0.98. The README main job grew from 280 s to 318 s on 2 CPU cores (measured the
  same day; channels-last convolutions, networks.py, pay back part of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from adbench.detector import (
    BudgetName,
    CategorySpec,
    Detector,
    InputSpec,
    Scores,
    StepCallback,
    TrainingBudget,
)
from adbench_methods.autoencoder.networks import ConvAutoencoder
from adbench_methods.common.augment import AugmentPolicy, random_views
from adbench_methods.common.image_score import ImageScore, image_scores
from adbench_methods.common.patches import reconstruct_tiled, score_tiled
from adbench_methods.common.schedule import paper_steps

_PAPER_EPOCHS = 200


@dataclass(frozen=True)
class AutoencoderParams:
    channels: int  # 1 or 3
    image_size: int  # side the harness resizes images to
    patch_size: int  # the network's input side; equal to image_size for whole-image objects
    patch_stride: int  # test-time tiling stride when patch_size < image_size
    extra_layer: bool  # the 256-px object variant's additional stride-2 layer
    min_angle_deg: float
    max_angle_deg: float
    max_shift: float  # objects' random translation, fraction of the side
    latent_dim: int = 100
    learning_rate: float = 2e-4
    weight_decay: float = 1e-5
    score_batch_size: int = 64  # patches per forward pass when scoring
    sigmoid_output: bool = False  # the decoder ends in a sigmoid (ssim.py measured it) instead of linearly
    image_score: ImageScore = "mean-filtered-max"  # or "max", the raw maximum (common/image_score.py)


def per_image_sum(pixel_losses: torch.Tensor) -> torch.Tensor:
    """(B, ...) per-pixel losses -> their per-image sums averaged over the batch.

    Not the mean over pixels: Adam's update does not depend on the loss's scale, but its ε and the
    weight-decay term (1e-5·w, added to the gradient) do, and a mean over a 256² image divides the
    gradients by 65,536, which put them below both at initialisation.
    """
    return pixel_losses.flatten(1).sum(1).mean()


class L2Autoencoder(Detector[AutoencoderParams]):
    name = "l2ae"
    inference_kind = "single-pass"
    loss_labels: ClassVar[dict[str, str]] = {"loss": "reconstruction loss (squared error, summed per image)"}
    Params = AutoencoderParams
    # `default` budget (module docstring: fewer steps left real photographs' objects at chance)
    default_steps: ClassVar[dict[str, int]] = {"texture": 500, "object": 300}

    def __init__(self, params: AutoencoderParams, device: str | torch.device = "cpu") -> None:
        super().__init__(params, device)
        self.network = ConvAutoencoder(
            params.channels, params.patch_size, params.latent_dim, params.extra_layer, params.sigmoid_output
        ).to(self.device)

    @classmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> AutoencoderParams:
        learning_rate = 2e-4 if budget == "paper" else 1e-3
        if category.kind == "texture":
            image, patch, stride = (128, 64, 32) if budget == "smoke" else (512, 128, 30)
            return AutoencoderParams(
                channels=category.channels,
                image_size=image,
                patch_size=patch,
                patch_stride=stride,
                extra_layer=False,
                min_angle_deg=-45.0,
                max_angle_deg=45.0,
                max_shift=0.0,
                learning_rate=learning_rate,
            )
        size = 64 if budget == "smoke" else 256
        angle = 45.0 if category.rotation_invariant else 0.0
        return AutoencoderParams(
            channels=category.channels,
            image_size=size,
            patch_size=size,
            patch_stride=size,
            extra_layer=size >= 256,
            min_angle_deg=-angle,
            max_angle_deg=angle,
            max_shift=0.05,
            learning_rate=learning_rate,
        )

    @classmethod
    def departures(cls, category: CategorySpec, budget: BudgetName) -> tuple[str, ...]:
        found = [
            "He-uniform initialisation (transposed convolutions' fan-in = taps per output pixel; the paper "
            "states none): torch's default left every input decoded to one template image",
            "no mirroring: flipped objects can be defects of their own (metal_nut 'flip')",
            "image score: the map's maximum after DRAEM's mean filter (21/256 of the side), not stated by "
            "the paper (its image decision is the threshold protocol's); image_score='max' for the raw one",
        ]
        if budget != "paper":
            found += [
                f"lr 1e-3 instead of 2e-4 and {cls.default_steps['object']} (objects) / "
                f"{cls.default_steps['texture']} (textures) steps at batch 16 instead of 15,800 at "
                "batch 128: minutes on a CPU",
            ]
        if budget == "smoke":
            found.append("objects at 64 px, textures 128 px in 64 px patches: seconds, to test the pipeline")
        return tuple(found)

    @classmethod
    def default_budget(cls, category: CategorySpec, budget: BudgetName) -> TrainingBudget:
        if budget == "paper":
            return TrainingBudget(steps=paper_steps(_PAPER_EPOCHS, 128), batch_size=128)
        if budget == "default":
            return TrainingBudget(steps=cls.default_steps[category.kind], batch_size=16)
        return TrainingBudget(steps=40, batch_size=8)

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.params.image_size, self.params.channels)

    def _policy(self) -> AugmentPolicy:
        p = self.params
        return AugmentPolicy(p.patch_size, p.min_angle_deg, p.max_angle_deg, p.max_shift)

    def reconstruction_loss(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image sum over pixels and channels, averaged over the batch (Bergmann et al.'s reduction)."""
        return per_image_sum(self.anomaly_map(reconstruction, target))

    def anomaly_map(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) pairs -> (B, H, W) per-pixel anomaly."""
        return ((reconstruction - target) ** 2).sum(dim=1)

    def fit(self, images: torch.Tensor, budget: TrainingBudget, on_step: StepCallback | None = None) -> None:
        images = images.to(self.device)
        policy = self._policy()
        optimizer = torch.optim.Adam(
            self.network.parameters(), lr=self.params.learning_rate, weight_decay=self.params.weight_decay
        )
        self.network.train()
        for step in range(self.training_steps(budget, len(images))):
            batch = random_views(images, budget.batch_size, policy)
            loss = self.reconstruction_loss(self.network(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step, {"loss": loss.item()})
        self.network.eval()

    @torch.no_grad()
    def score(self, images: torch.Tensor) -> Scores:
        p = self.params
        self.network.eval()

        def score_patches(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            patch_maps = self.anomaly_map(self.network(patches), patches)
            return patch_maps.flatten(1).amax(dim=1), patch_maps

        _, maps = score_tiled(
            images.to(self.device), p.patch_size, p.patch_stride, p.score_batch_size, score_patches
        )
        # The image score is taken on the stitched map (overlaps averaged), not on the patch maps.
        maps = maps.float()
        return Scores(image_scores(maps, p.image_score).double().cpu().numpy(), maps.cpu().numpy())

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        p = self.params
        self.network.eval()
        reconstructions = reconstruct_tiled(
            images.to(self.device), p.patch_size, p.patch_stride, p.score_batch_size, self.network
        )
        # The decoder's output is unbounded; the maps compare it as it is, a picture of it is clipped.
        return reconstructions.clamp(0, 1).cpu()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.network.state_dict())

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self.network.load_state_dict(dict(tensors))
