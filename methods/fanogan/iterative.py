"""`fanogan-iterative`: AnoGAN's iterative latent mapping (Schlegl et al., IPMI 2017) on f-AnoGAN's
trained WGAN, the comparison the f-AnoGAN paper (Schlegl et al. 2019) draws between its learned encoder
and iterative mapping on one and the same generator.

It trains nothing of its own (`trained_by = "fanogan"`): in a run that holds both methods, the harness
trains `fanogan`'s cell and hands its detector to `adopt`, so both score with the same G and D (one
training per category and seed) and their difference in quality and time per image is the mapping's
alone. Used on its own (the Python API, the conformance kit), `fit` trains the WGAN-GP stage exactly as
`fanogan` would from the same seed and budget (the encoder is built, so that the random draws match, but
not trained), which gives the same generator.

- Mapping (adbench_methods.anogan.latent_search, shared with `anogan`): per image (per patch for
  textures), Adam on z from a seeded draw of f-AnoGAN's prior N(0, I)^128, minimising AnoGAN's
  (1 − λ)·‖x − G(z)‖₁ + λ·‖f(x) − f(G(z))‖₁ with λ = 0.1 and f the critic's features (the layer izi_f
  uses); Adam lr 0.02 and β1 = 0.5 as `anogan`'s search (MVTec AD's AnoGAN settings).
- Steps: Γ = 500 backpropagation steps, AnoGAN's (Schlegl et al. 2017, §2.2), at `paper`. The f-AnoGAN
  manuscript's own count for its comparison could not be read here (the PDF is absent from the copy of
  the authors' repository available to us), so AnoGAN's Γ stands for it; `default` searches 300 steps,
  `anogan`'s count in this harness, so that the two iterative methods cost alike; `smoke` 10 (the
  CI gate scores every category with it).
- Score and map: f-AnoGAN's own, A(x) = MSE(x, G(z*)) + κ·MSE(f(G(z*)), f(x)) with κ = 1, and the
  per-pixel |x − G(z*)| averaged over channels, computed exactly as `fanogan` computes them on G(E(x)):
  only the way to z differs (the controlled comparison). Patches, image score (the largest patch score)
  and sizes are `fanogan`'s.
"""

from __future__ import annotations

import dataclasses
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
    shared_params_mismatch,
)
from adbench_methods.anogan.latent_search import PatchResult, SearchSettings, search_tiled
from adbench_methods.common.state import ModulesState
from adbench_methods.fanogan.detector import FAnoGAN, FAnoGANParams
from adbench_methods.fanogan.networks import LATENT_DIM

_SEARCH_STEPS: dict[BudgetName, int] = {"paper": 500, "default": 300, "smoke": 10}


@dataclass(frozen=True)
class FAnoGANIterativeParams(FAnoGANParams):
    """`fanogan`'s params (they must equal the adopted detector's) and the latent search's."""

    search_steps: int = 300
    search_learning_rate: float = 0.02
    score_lambda: float = 0.1  # λ of the search's loss
    search_beta1: float = 0.5
    search_batch_size: int = 64  # patches whose latents are searched together
    search_seed: int = 0  # the initial latents; scoring is deterministic

    def gan_params(self) -> FAnoGANParams:
        return FAnoGANParams(**{f.name: getattr(self, f.name) for f in dataclasses.fields(FAnoGANParams)})


class FAnoGANIterative(ModulesState, Detector[FAnoGANIterativeParams]):
    name = "fanogan-iterative"
    inference_kind = "iterative"
    trained_by = "fanogan"
    loss_labels: ClassVar[dict[str, str]] = FAnoGAN.loss_labels
    Params = FAnoGANIterativeParams

    def __init__(self, params: FAnoGANIterativeParams, device: str | torch.device = "cpu") -> None:
        super().__init__(params, device)
        if params.search_steps < 0:
            raise ValueError(f"search_steps {params.search_steps} must not be negative")
        self.model = FAnoGAN(params.gan_params(), device)

    @classmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> FAnoGANIterativeParams:
        trained = dataclasses.asdict(FAnoGAN.default_params(category, budget))
        return FAnoGANIterativeParams(**trained, search_steps=_SEARCH_STEPS[budget])

    @classmethod
    def default_budget(cls, category: CategorySpec, budget: BudgetName) -> TrainingBudget:
        """`fanogan`'s, whose GAN it scores with."""
        return FAnoGAN.default_budget(category, budget)

    @classmethod
    def departures(cls, category: CategorySpec, budget: BudgetName) -> tuple[str, ...]:
        found = [
            "G and D are fanogan's, trained as it trains them: its departures apply",
            "AnoGAN's Γ = 500 search steps stand for the f-AnoGAN paper's own count, which could not be read",
        ]
        if budget != "paper":
            found.append(f"latent search of {_SEARCH_STEPS[budget]} steps instead of 500: minutes on a CPU")
        return tuple(found)

    def training_steps(self, budget: TrainingBudget, train_images: int) -> int:
        """Generator updates only: the iterative mapping needs no encoder."""
        return self.model.gan_steps(budget, train_images)

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.params.image_size, self.params.channels)

    def fit(self, images: torch.Tensor, budget: TrainingBudget, on_step: StepCallback | None = None) -> None:
        self.model.fit_gan(images, budget.batch_size, self.training_steps(budget, len(images)), on_step)

    def adopt(self, trained: Detector) -> None:
        if not isinstance(trained, FAnoGAN):
            raise TypeError(f"{self.name} scores with fanogan's networks, not {trained.name}'s")
        mismatch = shared_params_mismatch(self.params, trained.params)
        if mismatch is not None:
            raise ValueError(f"{self.name}'s params differ from the fanogan detector's ({mismatch})")
        self.model = trained

    def score(self, images: torch.Tensor) -> Scores:
        def per_patch(
            patches: torch.Tensor, _losses: torch.Tensor, fakes: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                return self.model.anomaly_scores(patches, fakes), (patches - fakes).abs().mean(dim=1)

        patch_scores, maps = self._search_tiled(images, per_patch)
        return Scores(patch_scores.amax(dim=1).double().cpu().numpy(), maps.float().cpu().numpy())

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        _, reconstructions = self._search_tiled(images, lambda _, losses, fakes: (losses, fakes))
        return ((reconstructions + 1) / 2).cpu()

    def _search_tiled(
        self, images: torch.Tensor, per_patch: PatchResult
    ) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.params
        patches_per_image = (p.image_size // p.patch_size) ** 2
        seeds = torch.Generator().manual_seed(p.search_seed)
        initial = torch.randn(len(images) * patches_per_image, LATENT_DIM, generator=seeds).to(self.device)
        settings = SearchSettings(p.search_steps, p.search_learning_rate, p.score_lambda, p.search_beta1)
        return search_tiled(
            self.model.generator,
            self.model.critic.trunk,
            images.to(self.device) * 2 - 1,
            p.patch_size,
            p.search_batch_size,
            initial,
            settings,
            per_patch,
        )

    def _modules(self) -> dict[str, torch.nn.Module]:
        """G and D: what the mapping searches with (the encoder, if any, is `fanogan`'s to keep)."""
        return {"generator": self.model.generator, "critic": self.model.critic}
