"""`ganomaly`: GANomaly (Akçay, Atapour-Abarghouei and Breckon, ACCV 2018), a single-pass detector: an
encoder–decoder–encoder generator trained adversarially against a DCGAN discriminator; an image is as
anomalous as its latent code differs from the code of its reconstruction.

Every setting from the paper and the authors' public code (samet-akcay/ganomaly: lib/networks.py,
lib/model.py, options.py):
- Networks (networks.py): G = G_E → G_D → E, DCGAN encoders and decoder at width 64 (ngf, ndf), latent
  size 100 (nz); D = a DCGAN encoder whose last convolution and a sigmoid classify, the layers before it
  giving the features f. Initialisation N(0, 0.02), batch norm scales N(1, 0.02).
- Losses: G minimises w_adv·MSE(f(x), f(G(x))) (feature matching) + w_con·|x − G(x)|₁ (contextual) +
  w_enc·MSE(G_E(x), E(G(x))) (encoder), with the paper's weights (1, 50, 1), the code's defaults too;
  D minimises the binary cross-entropy of real against generated images, halved (the code's). One G
  update then one D update per batch, D re-initialised when its loss falls below 1e-5; Adam lr 2e-4,
  β1 0.5, batch 64, 15 epochs (the code's niter).
- Score: the code's mean over the 100 latent dimensions of (G_E(x) − E(G(x)))², per image; the paper
  writes it as the norm ‖G_E(x) − E(G(x))‖₁, and its tables come from the code. The code then min-max
  scales the scores over the test set; here they are not scaled (the ranking, hence AUROC, is the same,
  and a benchmark uses nothing of the test set).
- The paper gives no anomaly map: the map is the per-pixel |x − G(x)| averaged over channels (a
  departure, as `--dry-run` says). Protocol, patches and budgets: adversarial.py.

`default` and `smoke` (CPU budgets, set by time, not chosen on test data) use width 16 (smoke 8) and
500 steps at batch 16 (smoke 10 at 8), about 30 s per category on 2 CPU cores, at the paper's lr. On the
synthetic generator's seed 1 (never the reported data), looked at: the reconstructions follow each washer
and sand patch and leave the defects out, the maps light them; image AUROC washer 0.988, pin 0.994, sand
1.000, weave 1.000, input sensitivity 0.54 to 0.97.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from adbench_methods.common.state import frozen
from adbench_methods.ganomaly.adversarial import (
    AdversarialAutoencoder,
    AdversarialParams,
)
from adbench_methods.ganomaly.networks import GANomalyDiscriminator, GANomalyGenerator


@dataclass(frozen=True)
class GANomalyParams(AdversarialParams):
    contextual_weight: float = 50.0  # w_con
    encoder_weight: float = 1.0  # w_enc


class GANomaly(AdversarialAutoencoder[GANomalyParams]):
    name = "ganomaly"
    inference_kind = "single-pass"
    loss_labels: ClassVar[dict[str, str]] = {
        "d": "discriminator loss",
        "adversarial": "feature matching (w_adv)",
        "contextual": "contextual L1 (w_con)",
        "encoder": "encoder L2 (w_enc)",
    }
    Params = GANomalyParams
    generator: GANomalyGenerator
    discriminator: GANomalyDiscriminator

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        p = self.params
        return (
            GANomalyGenerator(p.channels, p.patch_size, p.width),
            GANomalyDiscriminator(p.channels, p.patch_size, p.width),
        )

    def _train_step(
        self, real: torch.Tensor, g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer
    ) -> dict[str, float]:
        p = self.params
        fake, latent, relatent = self.generator(real)
        real_p, real_features = self.discriminator(real)
        fake_p, _ = self.discriminator(fake.detach())
        with frozen(self.discriminator):  # D's gradients from G's loss would be discarded
            adversarial = F.mse_loss(self.discriminator(fake)[1], real_features.detach())
        contextual = F.l1_loss(fake, real)
        encoder = F.mse_loss(relatent, latent)
        g_loss = (
            p.adversarial_weight * adversarial + p.contextual_weight * contextual + p.encoder_weight * encoder
        )
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()
        d_loss = 0.5 * (
            F.binary_cross_entropy(real_p, torch.ones_like(real_p))
            + F.binary_cross_entropy(fake_p, torch.zeros_like(fake_p))
        )
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()
        return {
            "d": d_loss.item(),
            "adversarial": adversarial.item(),
            "contextual": contextual.item(),
            "encoder": encoder.item(),
        }

    def _reconstruct(self, patches: torch.Tensor) -> torch.Tensor:
        return self.generator(patches)[0]

    def _score(self, patches: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
        """(G_E(x) − E(G(x)))² averaged over the latent's dimensions."""
        latent = self.generator.encoder(patches).flatten(1)
        relatent = self.generator.reencoder(reconstructions).flatten(1)
        return (latent - relatent).pow(2).mean(dim=1)
