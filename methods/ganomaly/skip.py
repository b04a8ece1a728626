"""`skipganomaly`: Skip-GANomaly (Akçay, Atapour-Abarghouei and Breckon, IJCNN 2019), a single-pass
detector: a U-Net generator with skip connections trained adversarially; an image is as anomalous as it
differs from its reconstruction, in pixels and in the discriminator's features.

Every setting from the paper and the authors' public code (samet-akcay/skip-ganomaly:
lib/models/networks.py, lib/models/skipganomaly.py, options.py):
- Networks (networks.py): G = the pix2pix U-Net (define_G: log2(side) down-samplings, width 64, batch
  norm); D = a DCGAN encoder to 100 × 1 × 1 features (BasicDiscriminator) and a 3×3 convolution with a
  sigmoid. Initialisation N(0, 0.02), batch norm scales N(1, 0.02).
- Losses: G minimises w_adv·BCE(D(G(x)), real) + w_con·|x − G(x)|₁ + w_lat·MSE(f(x), f(G(x))) with the
  paper's weights (1, 40, 1) (the code's default w_con is 50; the paper's 40 is used); D minimises
  BCE(D(x), real) + BCE(D(G(x)), fake) + w_lat·MSE(f(x), f(G(x))), the code's D loss, whose latent term
  the code back-propagates through a graph G's step has already changed (an error in current PyTorch):
  here it is computed on the generated images detached, which gives D the same gradient. One G update
  then one D update per batch, D re-initialised when its loss falls below 1e-5; Adam lr 2e-4, β1 0.5,
  batch 64, 15 epochs (niter; the code's linear decay starts after them, so the rate stays constant).
  The code allocates a noise tensor for G's input but never fills it (set_input is called without
  noise), so no noise is added.
- Score: λ·R(x) + (1 − λ)·L(x) with λ = 0.9, R the mean squared pixel residual and L the mean squared
  feature residual, per image (the code's test()); not min-max scaled over the test set (a benchmark uses
  nothing of it; AUROC is unchanged).
- The paper gives no anomaly map: the map is the per-pixel |x − G(x)| averaged over channels (a
  departure). Protocol, patches and budgets: adversarial.py.

`default` and `smoke` (CPU budgets, set by time, not chosen on test data) use width 16 (smoke 8) and
500 steps at batch 16 (smoke 10 at 8), about 40 s per category on 2 CPU cores, at the paper's lr. On the
synthetic generator's seed 1 (never the reported data), looked at: through its skip connections G
rebuilds the defects too, blurred, so the maps light their outlines rather than their areas (the
method's nature, not a collapse); image AUROC washer 0.900, pin 0.969, sand 1.000, weave 1.000, input
sensitivity 0.87 to 0.99.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from adbench.detector import BudgetName, CategorySpec
from adbench_methods.ganomaly.adversarial import (
    AdversarialAutoencoder,
    AdversarialParams,
)
from adbench_methods.ganomaly.networks import SkipGANomalyDiscriminator, UNetGenerator


@dataclass(frozen=True)
class SkipGANomalyParams(AdversarialParams):
    contextual_weight: float = 40.0  # w_con, the paper's
    latent_weight: float = 1.0  # w_lat
    score_lambda: float = 0.9  # λ of the score


class SkipGANomaly(AdversarialAutoencoder[SkipGANomalyParams]):
    name = "skipganomaly"
    inference_kind = "single-pass"
    loss_labels: ClassVar[dict[str, str]] = {
        "d": "discriminator loss",
        "adversarial": "adversarial BCE (w_adv)",
        "contextual": "contextual L1 (w_con)",
        "latent": "latent L2 (w_lat)",
    }
    Params = SkipGANomalyParams
    discriminator: SkipGANomalyDiscriminator

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        p = self.params
        return (
            UNetGenerator(p.channels, p.patch_size, p.width),
            SkipGANomalyDiscriminator(p.channels, p.patch_size, p.width),
        )

    @classmethod
    def departures(cls, category: CategorySpec, budget: BudgetName) -> tuple[str, ...]:
        return (
            *super().departures(category, budget),
            "D's latent term on the generated images detached (the code's graph errs in current PyTorch)",
        )

    def _train_step(
        self, real: torch.Tensor, g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer
    ) -> dict[str, float]:
        p = self.params
        fake = self.generator(real)
        real_p, real_features = self.discriminator(real)
        fake_p, fake_features = self.discriminator(fake)
        detached_p, detached_features = self.discriminator(fake.detach())
        adversarial = F.binary_cross_entropy(fake_p, torch.ones_like(fake_p))
        contextual = F.l1_loss(fake, real)
        latent = F.mse_loss(fake_features, real_features)
        g_loss = (
            p.adversarial_weight * adversarial + p.contextual_weight * contextual + p.latent_weight * latent
        )
        d_loss = (
            F.binary_cross_entropy(real_p, torch.ones_like(real_p))
            + F.binary_cross_entropy(detached_p, torch.zeros_like(detached_p))
            + p.latent_weight * F.mse_loss(detached_features, real_features)
        )
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward(retain_graph=True)  # D's loss shares D(x)'s graph
        g_optimizer.step()
        d_optimizer.zero_grad(set_to_none=True)  # what G's loss left in D's gradients
        d_loss.backward()
        d_optimizer.step()
        return {
            "d": d_loss.item(),
            "adversarial": adversarial.item(),
            "contextual": contextual.item(),
            "latent": latent.item(),
        }

    def _reconstruct(self, patches: torch.Tensor) -> torch.Tensor:
        return self.generator(patches)

    def _score(self, patches: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
        """λ·MSE(x, G(x)) + (1 − λ)·MSE(f(x), f(G(x))) per patch."""
        residual = (patches - reconstructions).pow(2).flatten(1).mean(dim=1)
        features = self.discriminator(patches)[1] - self.discriminator(reconstructions)[1]
        lam = self.params.score_lambda
        return lam * residual + (1 - lam) * features.pow(2).flatten(1).mean(dim=1)
