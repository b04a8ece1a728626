"""`ssimae`: the SSIM autoencoder of MVTec AD §4.1.2 as an adbench Detector.

The same network, augmentation, tiling and budgets as `l2ae` (it subclasses it); what differs is the
loss and the map, as the paper specifies:
- Grayscale input: colour categories are converted by the harness (InputSpec channels = 1).
- Loss: the sum over the image's pixels of 1 − SSIM(x, x̂) (the map below), averaged over the batch, with
  an 11×11 window; `l2ae`'s reduction, so the same optimiser settings apply.
- The decoder ends in a sigmoid, a departure from the linear output of `l2ae`: SSIM's structure term
  σ_xy / (σ_x² + σ_y²) rises towards 0 from below as the reconstruction's amplitude grows wherever it
  correlates negatively with the input, so an unbounded output runs away (measured on the synthetic pin
  at the paper's lr: outputs of ±8,000 within 20 steps, SSIM 0 everywhere, no gradient left). Bounded in
  [0, 1], like the images, it trains (loss falling, reconstructions that follow the input).
- A property of the method, not a defect of this code: SSIM's constant c2 = 0.03² makes a window
  whose standard deviation is well below 0.03 look flat, so on a low-contrast texture a constant
  reconstruction already scores SSIM ≈ 1 and the autoencoder learns one. The synthetic `sand` (local
  σ ≈ 0.01 in 11×11 windows) is such a texture: there ssimae's reconstruction does not depend on its
  input, and adbench's input-sensitivity check says so (its AUROC is then the contrast of the defects
  against a flat grey).
- Anomaly map: 1 − SSIM(x, x̂) per pixel; image score = the maximum of the map (as `l2ae`). Textures
  are reconstructed in 128×128 patches at stride 30 with the patch maps averaged; objects whole.

SSIM comes from kornia: a per-pixel, differentiable map with Wang et al.'s Gaussian window
(σ = 1.5, 11 taps), c1 = 0.01², c2 = 0.03² for data in [0, 1]. Borders are reflect-padded, so the
map keeps the input size; the tests check it against scikit-image away from the 5-pixel border,
where the two pad differently.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from kornia.metrics import ssim

from adbench.detector import BudgetName, CategorySpec
from adbench_methods.autoencoder.detector import AutoencoderParams, L2Autoencoder

SSIM_WINDOW = 11


def ssim_map(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) pairs in [0, 1] -> per-pixel SSIM (B, H, W), averaged over channels."""
    return ssim(reconstruction, target, SSIM_WINDOW, max_val=1.0, eps=0.0).mean(dim=1)


class SSIMAutoencoder(L2Autoencoder):
    name = "ssimae"
    loss_labels: ClassVar[dict[str, str]] = {"loss": "reconstruction loss (1 − SSIM, summed per image)"}

    @classmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> AutoencoderParams:
        return dataclasses.replace(super().default_params(category, budget), channels=1, sigmoid_output=True)

    @classmethod
    def departures(cls, category: CategorySpec, budget: BudgetName) -> tuple[str, ...]:
        return (
            *super().departures(category, budget),
            "the decoder ends in a sigmoid: with a linear output the SSIM loss runs the reconstruction away",
        )

    def anomaly_map(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1 - ssim_map(reconstruction, target)
