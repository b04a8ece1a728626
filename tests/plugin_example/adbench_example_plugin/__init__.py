"""An example third-party method for adbench: each pixel of the defect-free images as a Gaussian.

The anomaly map is the per-pixel z-score |x − mean| / std averaged over channels, the image score its
maximum. `fit` streams the images in batches, one batch per step, accumulating the moments. It has no
`reconstruct`: its mean image is the same for every input, not a reconstruction of it (adbench's
input-sensitivity check would rightly call such a "reconstruction" collapsed), so adbench measures
that check on its maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class PixelGaussianParams:
    channels: int
    image_size: int
    min_std: float = 0.02  # keeps flat pixels from dividing by zero


class PixelGaussian(Detector):
    name = "pixelgauss"
    inference_kind = "single-pass"
    Params = PixelGaussianParams

    def __init__(self, params: PixelGaussianParams, device: str | torch.device = "cpu") -> None:
        super().__init__(params, device)
        shape = (params.channels, params.image_size, params.image_size)
        self.mean = torch.zeros(shape, device=self.device)
        self.std = torch.ones(shape, device=self.device)

    @classmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> PixelGaussianParams:
        return PixelGaussianParams(category.channels, 64 if budget == "smoke" else 128)

    @classmethod
    def default_budget(cls, category: CategorySpec, budget: BudgetName) -> TrainingBudget:
        return TrainingBudget(steps=None, batch_size=16, epochs=1)

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.params.image_size, self.params.channels)

    def fit(self, images: torch.Tensor, budget: TrainingBudget, on_step: StepCallback | None = None) -> None:
        images = images.to(self.device)
        total, squares, count = torch.zeros_like(self.mean), torch.zeros_like(self.mean), 0
        for step in range(self.training_steps(budget, len(images))):
            index = torch.arange(step * budget.batch_size, (step + 1) * budget.batch_size) % len(images)
            batch = images[index.to(self.device)]
            total, squares, count = total + batch.sum(0), squares + (batch**2).sum(0), count + len(batch)
            self.mean = total / count
            variance = (squares / count - self.mean**2).clamp_min(0)
            self.std = variance.sqrt().clamp_min(self.params.min_std)
            if on_step is not None:
                on_step(step, {"mean_std": float(self.std.mean())})

    def _maps(self, images: torch.Tensor) -> torch.Tensor:
        return ((images.to(self.device) - self.mean).abs() / self.std).mean(dim=1)

    def score(self, images: torch.Tensor) -> Scores:
        maps = self._maps(images)
        return Scores(maps.flatten(1).amax(dim=1).double().cpu().numpy(), maps.float().cpu().numpy())

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std}

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self.mean = tensors["mean"].to(self.device)
        self.std = tensors["std"].to(self.device)
