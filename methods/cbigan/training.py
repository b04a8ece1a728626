"""CBiGAN training: Wasserstein BiGAN with gradient penalty plus the consistency loss (paper eq. 5–13).

One training step = `critic_steps` discriminator updates, then one update of E and G together:

    L_D   = −mean D(x, E(x)) + mean D(G(z), z) + w · GP
    L_EG  =  mean D(x, E(x)) − mean D(G(z), z)
    L_C   =  mean_i ( ||x_i − G(E(x_i))||₁ + ||z_i − E(G(z_i))||₁ )      (per-sample L1 sums)
    L*_EG = (1 − α) L_EG + α L_C                                          (α = 0 is EGBAD)

GP is the two-sided penalty (||∇D||₂ − 1)², the gradient norm taken jointly over the image and the
latent, at interpolates with one ε ~ U(0, 1) per sample. Two pairings (`PENALTY_PAIRINGS`):
- "authors" (the `paper` budget): as the authors' code and DESIGN §4, x̂ = εx + (1−ε)G(z) and
  ẑ = εz + (1−ε)E(x): the same ε weights the real image and the *prior* latent.
- "joint" (the CPU budgets): x̂ = εx + (1−ε)G(z), ẑ = εE(x) + (1−ε)z, the straight line between a real
  pair (x, E(x)) and a generated pair (G(z), z), where WGAN-GP's argument (Gulrajani et al. 2017,
  Prop. 1) puts the optimal critic's unit gradient; the CPU schedules were measured with it.

E and G weights are tracked by an exponential moving average used for scoring, updated after every E/G
step. Its decay warms up as min(decay, (1 + t) / (10 + t)), a departure from the authors' fixed decay:
with the short CPU budgets a fixed decay would leave the averaged weights mostly at their random
initialisation; over the paper's 200,000 steps the warm-up is over after the first 1 %.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from adbench_methods.cbigan.networks import LATENT_DIM, Discriminator, Encoder, Generator

PENALTY_PAIRINGS = ("authors", "joint")


def gradient_penalty(
    discriminator: nn.Module,
    x_real: Tensor,
    z_real: Tensor,
    x_fake: Tensor,
    z_fake: Tensor,
    pairing: str = "joint",
) -> Tensor:
    """mean over samples of (||∇_(x̂, ẑ) D(x̂, ẑ)||₂ − 1)² at the interpolates of `pairing` (above);
    z_real = E(x), z_fake = z."""
    epsilon = torch.rand(len(x_real), 1, device=x_real.device, dtype=x_real.dtype)
    x_hat = (epsilon.view(-1, 1, 1, 1) * x_real + (1 - epsilon.view(-1, 1, 1, 1)) * x_fake).requires_grad_()
    z_from, z_to = (z_fake, z_real) if pairing == "authors" else (z_real, z_fake)
    z_hat = (epsilon * z_from + (1 - epsilon) * z_to).requires_grad_()
    critic = discriminator(x_hat, z_hat)
    grad_x, grad_z = torch.autograd.grad(critic.sum(), (x_hat, z_hat), create_graph=True)
    norm = torch.sqrt(grad_x.flatten(1).pow(2).sum(1) + grad_z.pow(2).sum(1) + 1e-12)
    return ((norm - 1) ** 2).mean()


def consistency_loss(encoder: Encoder, generator: Generator, x: Tensor, z: Tensor) -> Tensor:
    """L_C: per-sample L1 sums of the image and latent cycles, averaged over the batch."""
    image_cycle = (x - generator(encoder(x))).abs().flatten(1).sum(1)
    latent_cycle = (z - encoder(generator(z))).abs().sum(1)
    return (image_cycle + latent_cycle).mean()


class MovingAverage:
    """EMA copies of modules, updated after every E/G step, with a warm-up of the decay."""

    def __init__(self, modules: dict[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.modules = {name: copy.deepcopy(module).requires_grad_(False) for name, module in modules.items()}
        self._sources = modules

    @torch.no_grad()
    def update(self) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for name, source in self._sources.items():
            for averaged, current in zip(self.modules[name].parameters(), source.parameters(), strict=True):
                averaged.lerp_(current, 1 - decay)


@dataclass
class CBiGANTrainer:
    encoder: Encoder
    generator: Generator
    discriminator: Discriminator
    alpha: float
    gradient_penalty_weight: float
    critic_steps: int
    learning_rate: float
    generator_betas: tuple[float, float]
    discriminator_betas: tuple[float, float]
    penalty_pairing: str = "joint"

    def __post_init__(self) -> None:
        eg_parameters = [*self.encoder.parameters(), *self.generator.parameters()]
        self.eg_optimizer = torch.optim.Adam(eg_parameters, lr=self.learning_rate, betas=self.generator_betas)
        self.d_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=self.learning_rate, betas=self.discriminator_betas
        )

    def _latents(self, count: int, like: Tensor) -> Tensor:
        return torch.randn(count, LATENT_DIM, device=like.device, dtype=like.dtype)

    def critic_step(self, x: Tensor) -> tuple[float, float]:
        z = self._latents(len(x), x)
        with torch.no_grad():
            encoded, generated = self.encoder(x), self.generator(z)
        wasserstein = -self.discriminator(x, encoded).mean() + self.discriminator(generated, z).mean()
        penalty = gradient_penalty(self.discriminator, x, encoded, generated, z, self.penalty_pairing)
        self.d_optimizer.zero_grad(set_to_none=True)
        (wasserstein + self.gradient_penalty_weight * penalty).backward()
        self.d_optimizer.step()
        return wasserstein.item(), penalty.item()

    def encoder_generator_step(self, x: Tensor) -> tuple[float, float]:
        z = self._latents(len(x), x)
        self.discriminator.requires_grad_(False)  # D is fixed here; skip its weight gradients
        try:
            adversarial = (
                self.discriminator(x, self.encoder(x)).mean()
                - self.discriminator(self.generator(z), z).mean()
            )
            if self.alpha > 0:
                consistency = consistency_loss(self.encoder, self.generator, x, z)
                loss = (1 - self.alpha) * adversarial + self.alpha * consistency
            else:
                loss = adversarial
                with torch.no_grad():  # logged only: EGBAD does not train on it
                    consistency = consistency_loss(self.encoder, self.generator, x, z)
            self.eg_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.eg_optimizer.step()
        finally:
            self.discriminator.requires_grad_(True)
        return adversarial.item(), consistency.item()
