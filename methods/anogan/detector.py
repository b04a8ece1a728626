"""`anogan`: AnoGAN (Schlegl et al. 2017) as MVTec AD §4.1.1 evaluated it, an iterative detector.

MVTec AD used the public LeeDoYup/AnoGAN implementation; its figures are followed here:
- Networks (networks.py): DCGAN G = linear → 8×8×512 → four 5×5 stride-2 transposed convolutions
  (256, 128, 64, channels) with batch norm and ReLU, tanh; D = four 5×5 stride-2 convolutions (64 → 512),
  batch norm from the second, LeakyReLU 0.2, a linear logit; f_D = D's last convolutional feature map.
- Training: a standard GAN (binary cross-entropy on logits, non-saturating G loss), latent prior
  z ~ U(−1, 1)^64, Adam lr 2e-4 with β1 = 0.5 for both, and two G updates per D update on the same
  latents (that code's "run g_optim twice"). Images scaled to [−1, 1] (G ends in tanh).
- Length: MVTec AD §4.2 augments every category to 10,000 training views and §4.1.1 trains 50 epochs of
  them, so `paper` is 50 × ⌈10,000 / 64⌉ = 7,850 steps (D updates) at batch 64 for every category,
  objects and textures alike (common/schedule.py, the autoencoders' rule).
- Objects at 128×128 whole; textures resized to 512×512 and processed in 128×128 patches: random
  crops for training, non-overlapping patches (stride 128) at test time. Training views are augmented as
  for the autoencoders (MVTec AD §4.2): rotated crops for textures; shifts, and rotations for categories
  photographed in any orientation, for objects.
- Inference (latent_search.py): 300 Adam steps (lr 0.02, β1 = 0.5) on z from a seeded U(−1, 1) start,
  minimising (1 − λ)·||x − G(z)||₁ + λ·||f_D(x) − f_D(G(z))||₁ with λ = 0.1. Anomaly map = (x − G(z*))²
  per pixel, summed over channels, as MVTec AD evaluates it; patch score = the final loss; image score =
  the largest patch score (the whole image's loss for objects).

Departures, CPU budgets only: `default` and `smoke` use width 16 instead of 64, objects at 64 px,
textures at 256 px in 64 px patches (smoke: 128 px), and a fixed step count (300 and 10) so that a
category trains in minutes on a CPU; smoke also searches for 25 steps instead of 300. These are set by
time, not chosen on any test set; every other setting is the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from adbench.detector import (
    BudgetName,
    CategorySpec,
    Detector,
    InputSpec,
    Scores,
    StepCallback,
    TrainingBudget,
)
from adbench_methods.anogan.latent_search import PatchResult, SearchSettings, search_tiled
from adbench_methods.anogan.networks import LATENT_DIM, DCGANDiscriminator, DCGANGenerator
from adbench_methods.common.augment import AugmentPolicy, random_views
from adbench_methods.common.schedule import paper_steps
from adbench_methods.common.state import ModulesState


@dataclass(frozen=True)
class AnoGANParams:
    channels: int
    image_size: int  # side the harness resizes images to
    patch_size: int  # the networks' side; equal to image_size for whole objects
    width: int  # DCGAN base width (G's last hidden layer, D's first)
    min_angle_deg: float
    max_angle_deg: float
    max_shift: float  # objects' random translation, fraction of the side
    learning_rate: float = 2e-4
    beta1: float = 0.5
    search_steps: int = 300
    search_learning_rate: float = 0.02
    score_lambda: float = 0.1  # λ: weight of the discriminator-feature residual
    search_batch_size: int = 64  # patches whose latents are optimised together
    search_seed: int = 0  # the initial latents; scoring is deterministic


_PAPER_EPOCHS = 50
_G_STEPS_PER_D_STEP = 2


def uniform_latents(
    count: int, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z ~ U(−1, 1)^64, AnoGAN's latent prior."""
    return (torch.rand(count, LATENT_DIM, generator=generator) * 2 - 1).to(device)


class AnoGAN(ModulesState, Detector[AnoGANParams]):
    name = "anogan"
    inference_kind = "iterative"
    loss_labels: ClassVar[dict[str, str]] = {"d": "discriminator loss", "g": "generator loss"}
    Params = AnoGANParams

    def __init__(self, params: AnoGANParams, device: str | torch.device = "cpu") -> None:
        super().__init__(params, device)
        self.generator = DCGANGenerator(params.channels, params.patch_size, params.width).to(self.device)
        self.discriminator = DCGANDiscriminator(params.channels, params.patch_size, params.width).to(
            self.device
        )

    @classmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> AnoGANParams:
        paper = budget == "paper"
        width = 64 if paper else 16
        search_steps = 25 if budget == "smoke" else 300
        if category.kind == "texture":
            image, patch = {"paper": (512, 128), "default": (256, 64), "smoke": (128, 64)}[budget]
            return AnoGANParams(
                category.channels, image, patch, width, -45.0, 45.0, 0.0, search_steps=search_steps
            )
        side = 128 if paper else 64
        angle = 45.0 if category.rotation_invariant else 0.0
        return AnoGANParams(
            category.channels, side, side, width, -angle, angle, 0.05, search_steps=search_steps
        )

    @classmethod
    def departures(cls, category: CategorySpec, budget: BudgetName) -> tuple[str, ...]:
        found = ["no mirroring in the augmentation: flipped objects can be defects of their own"]
        if budget != "paper":
            found += [
                "width 16 instead of 64, objects at 64 px, textures 256 px in 64 px patches (smoke 128 px), "
                "300 steps (smoke 10) at batch 32 instead of 7,850 at 64: minutes on a CPU",
            ]
        if budget == "smoke":
            found.append("latent search of 25 steps instead of 300")
        return tuple(found)

    @classmethod
    def default_budget(cls, category: CategorySpec, budget: BudgetName) -> TrainingBudget:
        if budget == "paper":
            return TrainingBudget(steps=paper_steps(_PAPER_EPOCHS, 64), batch_size=64)
        if budget == "default":
            return TrainingBudget(steps=300, batch_size=32)
        return TrainingBudget(steps=10, batch_size=8)

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.params.image_size, self.params.channels)

    def fit(self, images: torch.Tensor, budget: TrainingBudget, on_step: StepCallback | None = None) -> None:
        p = self.params
        data = images.to(self.device) * 2 - 1
        policy = AugmentPolicy(p.patch_size, p.min_angle_deg, p.max_angle_deg, p.max_shift)
        betas = (p.beta1, 0.999)
        g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=p.learning_rate, betas=betas)
        d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=p.learning_rate, betas=betas)
        self.generator.train()
        self.discriminator.train()
        for step in range(self.training_steps(budget, len(images))):
            real = random_views(data, budget.batch_size, policy)
            latents = uniform_latents(len(real), self.device)
            fake = self.generator(latents)
            real_logits, fake_logits = self.discriminator(real), self.discriminator(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(
                real_logits, torch.ones_like(real_logits)
            ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()

            for _ in range(_G_STEPS_PER_D_STEP):
                fooled = self.discriminator(self.generator(latents))
                g_loss = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
                g_optimizer.zero_grad(set_to_none=True)
                g_loss.backward()
                g_optimizer.step()
            if on_step is not None:
                on_step(step, {"d": d_loss.item(), "g": g_loss.item()})
        self.generator.eval()
        self.discriminator.eval()

    def score(self, images: torch.Tensor) -> Scores:
        patch_scores, maps = self._search_tiled(
            images, lambda patches, losses, fakes: (losses, (patches - fakes).pow(2).sum(dim=1))
        )
        return Scores(patch_scores.amax(dim=1).double().cpu().numpy(), maps.float().cpu().numpy())

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        _, reconstructions = self._search_tiled(images, lambda _, losses, fakes: (losses, fakes))
        return ((reconstructions + 1) / 2).cpu()

    def _search_tiled(
        self, images: torch.Tensor, per_patch: PatchResult
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Search a latent for every patch of `images` from seeded U(−1, 1) starts (one per patch, in
        tiling order): per-patch losses (N, P) and the stitched `per_patch` outcome."""
        p = self.params
        patches_per_image = (p.image_size // p.patch_size) ** 2
        seeds = torch.Generator().manual_seed(p.search_seed)
        initial = uniform_latents(len(images) * patches_per_image, self.device, seeds)
        settings = SearchSettings(p.search_steps, p.search_learning_rate, p.score_lambda, p.beta1)
        return search_tiled(
            self.generator,
            self.discriminator.features,
            images.to(self.device) * 2 - 1,
            p.patch_size,
            p.search_batch_size,
            initial,
            settings,
            per_patch,
        )

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}
