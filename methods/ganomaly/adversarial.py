"""What GANomaly and Skip-GANomaly share: a generator that reconstructs its input and a discriminator, trained
together on augmented views (one G update, then one D update, per step), scored patch by patch.

Both codes re-initialise D when its loss falls below 1e-5 (it has won, and G would get no signal); both
scale images to [−1, 1] (G ends in tanh). The training views are augmented as for every method here
(MVTec AD §4.2: rotated crops for textures, shifts and permitted rotations for objects; no mirroring).
On MVTec AD, which neither paper used, the `paper` budget follows MVTec AD's protocol for AnoGAN
(§4.1.1), the other GAN it evaluated, as `fanogan` does: objects whole at 128 px, textures resized to
512 px and processed in 128-px patches (random crops in training, non-overlapping patches at test time,
the image score the largest patch score); length: the codes' 15 epochs (niter), each of MVTec AD's 10,000
augmented views, at the codes' batch 64.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from torch import nn

from adbench.detector import (
    BudgetName,
    CategorySpec,
    Detector,
    InputSpec,
    Scores,
    StepCallback,
    TrainingBudget,
)
from adbench_methods.common.augment import AugmentPolicy, random_views
from adbench_methods.common.patches import reconstruct_gan_tiled, score_gan_tiled
from adbench_methods.common.schedule import paper_steps
from adbench_methods.common.state import ModulesState
from adbench_methods.ganomaly.networks import initialise

PAPER_EPOCHS = 15  # niter in both codes
# D is re-initialised when its loss falls below this (both codes' reinit_d).
D_REINIT_LOSS = 1e-5
# (width, steps, batch) at the CPU budgets; the papers' width is 64.
CPU_SETTINGS: dict[BudgetName, tuple[int, int, int]] = {"default": (16, 500, 16), "smoke": (8, 10, 8)}


@dataclass(frozen=True)
class PatchGeometry:
    """Where a category's images are cut: (image side, patch side) per budget (AnoGAN's protocol)."""

    image_size: int
    patch_size: int
    min_angle_deg: float
    max_angle_deg: float
    max_shift: float

    @classmethod
    def of(cls, category: CategorySpec, budget: BudgetName) -> PatchGeometry:
        if category.kind == "texture":
            image, patch = {"paper": (512, 128), "default": (256, 64), "smoke": (128, 64)}[budget]
            return cls(image, patch, -45.0, 45.0, 0.0)
        side = 128 if budget == "paper" else 64
        angle = 45.0 if category.rotation_invariant else 0.0
        return cls(side, side, -angle, angle, 0.05)


def paper_budget(budget: BudgetName) -> TrainingBudget:
    if budget == "paper":
        return TrainingBudget(steps=paper_steps(PAPER_EPOCHS, 64), batch_size=64)
    _, steps, batch = CPU_SETTINGS[budget]
    return TrainingBudget(steps=steps, batch_size=batch)


def protocol_departures(budget: BudgetName) -> list[str]:
    found = [
        "MVTec AD's AnoGAN protocol (objects whole at 128 px, textures 512 px in 128-px patches; the codes' "
        "default images are 32 px)",
        "no min-max scaling of the scores over the test set (a benchmark uses nothing of the test set; "
        "AUROC is unchanged)",
        "the anomaly map |x − G(x)| averaged over channels: the paper defines none",
    ]
    if budget != "paper":
        width, steps, batch = CPU_SETTINGS[budget]
        found.append(
            f"width {width} instead of 64, objects at 64 px, textures 256 px in 64-px patches (smoke "
            f"128 px), {steps} steps at batch {batch} instead of 2,355 at 64: minutes on a CPU"
        )
    return found


ParamsT = TypeVar("ParamsT", bound="AdversarialParams")


@dataclass(frozen=True)
class AdversarialParams:
    channels: int
    image_size: int  # side the harness resizes images to
    patch_size: int  # the networks' side; equal to image_size for whole objects
    width: int  # ngf = ndf
    min_angle_deg: float
    max_angle_deg: float
    max_shift: float  # objects' random translation, fraction of the side
    learning_rate: float = 2e-4  # Adam, both networks
    beta1: float = 0.5
    adversarial_weight: float = 1.0
    score_batch_size: int = 64  # patches scored together


class AdversarialAutoencoder(ModulesState, Detector[ParamsT], Generic[ParamsT]):
    """G and D built by `_networks`, a training step by `_train_step`, a patch score by `_score`."""

    def __init__(self, params: ParamsT, device: str | torch.device = "cpu") -> None:
        super().__init__(params, device)
        self.generator, self.discriminator = self._networks()
        for network in (self.generator, self.discriminator):
            initialise(network)
            network.to(self.device)

    @abc.abstractmethod
    def _networks(self) -> tuple[nn.Module, nn.Module]:
        """Untrained G and D for the params."""

    @abc.abstractmethod
    def _train_step(
        self, real: torch.Tensor, g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer
    ) -> dict[str, float]:
        """One G update, then one D update, on a batch of [−1, 1] views; the losses by name ("d" for D's)."""

    @abc.abstractmethod
    def _reconstruct(self, patches: torch.Tensor) -> torch.Tensor:
        """x̂ = G(x) for [−1, 1] patches, in eval mode."""

    @abc.abstractmethod
    def _score(self, patches: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
        """The anomaly score per patch."""

    @classmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> ParamsT:
        """AnoGAN's protocol (`PatchGeometry`), width 64 at `paper`; the rest are the Params' defaults."""
        at = PatchGeometry.of(category, budget)
        width = 64 if budget == "paper" else CPU_SETTINGS[budget][0]
        return cls.Params(
            category.channels,
            at.image_size,
            at.patch_size,
            width,
            at.min_angle_deg,
            at.max_angle_deg,
            at.max_shift,
        )

    @classmethod
    def default_budget(cls, category: CategorySpec, budget: BudgetName) -> TrainingBudget:
        return paper_budget(budget)

    @classmethod
    def departures(cls, category: CategorySpec, budget: BudgetName) -> tuple[str, ...]:
        return tuple(protocol_departures(budget))

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
            losses = self._train_step(random_views(data, budget.batch_size, policy), g_optimizer, d_optimizer)
            if losses["d"] < D_REINIT_LOSS:
                initialise(self.discriminator)
            if on_step is not None:
                on_step(step, losses)
        self.generator.eval()
        self.discriminator.eval()

    def score(self, images: torch.Tensor) -> Scores:
        def score_patches(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            reconstructions = self._reconstruct(patches)
            return self._score(patches, reconstructions), (patches - reconstructions).abs().mean(dim=1)

        p = self.params
        return score_gan_tiled(images, self.device, p.patch_size, p.score_batch_size, score_patches)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        p = self.params
        return reconstruct_gan_tiled(images, self.device, p.patch_size, p.score_batch_size, self._reconstruct)

    def _modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}
