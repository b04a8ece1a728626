"""`fanogan`: f-AnoGAN (Schlegl et al., Medical Image Analysis 54, 2019), a single-pass detector: a
WGAN-GP, then the izi_f encoder trained into its latent space with G and D frozen.

Every setting from the authors' public code (tSchlegl/f-AnoGAN; wgangp_64x64.py for the GAN,
z_encoding_izif.py for the encoder, anomaly_detection.py for the score):
- Networks (networks.py): residual G, critic D and encoder E of wgangp_64x64.py at DIM = 64 (`width`),
  ZDIM = 128, latent prior z ~ N(0, I) (RAND_SAMPLING = 'normal'); batch norm in G and E, layer norm in
  D (MODE = 'wgan-gp'); E ends in tanh (Z_REG_TYPE = 'tanh_fc', "paper version"). Images in [−1, 1].
- GAN training: WGAN-GP (Gulrajani et al. 2017): critic loss D(G(z)) − D(x) + λ·(‖∇D(x̂)‖₂ − 1)² on
  x̂ = x + α(G(z) − x), α ~ U(0, 1) per image, λ = 10 (LAMBDA); generator loss −D(G(z)); 5 critic
  updates per generator update (CRITIC_ITERS); Adam lr 1e-4, β = (0, 0.9) for both; batch 64.
- Encoder training (izi_f): E alone, G and D frozen, on MSE(x, G(E(x))) + κ·MSE(f(G(E(x))), f(x)),
  f = D's last features before its linear score, κ = 1; RMSProp lr 5e-5 (the code's default `lr`),
  batch 64.
- Score (anomaly_detection.py): A(x) = MSE(x, G(E(x))) + κ·MSE(f(G(E(x))), f(x)) per image, κ = 1 (the
  paper's A_R + κ·A_D); map = the per-pixel residual |x − G(E(x))|, averaged over colour channels.
- No mirroring; the training views are augmented as for AnoGAN (MVTec AD §4.2): rotated crops for
  textures, shifts (and rotations for categories photographed in any orientation) for objects.

On MVTec AD, which the paper never used (it trained on retinal OCT patches), the `paper` budget follows
MVTec AD's protocol for AnoGAN (§4.1.1), the GAN f-AnoGAN replaces, so that the two are compared alike:
objects whole at 128 px, textures resized to 512 px and processed in 128-px patches (random crops in
training, non-overlapping patches at test time, the image score the largest patch score); G, D and E
gain one residual block for 128 px (the code's blocks for 64 px, widths by its rule). Length: AnoGAN's 50
epochs of 10,000 views at batch 64 (7,850 generator updates, each after 5 critic updates), then the
code's 50,000 encoder updates (ITERS_ENC).

`default` and `smoke` (CPU budgets, set by time, not chosen on test data) use width 8 instead of 64,
objects at 64 px, textures at 256 px in 64-px patches (smoke 128 px), and 150 GAN + 300 encoder updates
at batch 16 (smoke 6 + 4 at batch 8): a GAN update (5 critic updates with the gradient penalty) takes
1.75 s at width 8 and batch 16 on 2 CPU cores, 3.4 s at width 16, an encoder update 0.16 s. Their GAN
learns at lr 1e-3 instead of 1e-4, chosen on the synthetic generator's seed 1 (never on the reported
data): at 1e-4, 150 updates left G drawing one grey template for washer (image AUROC 0.38, its output
independent of the input); at 1e-3 it draws washers. The encoder learns at 2e-4 instead of 5e-5: at
the code's 5e-5, 300 updates left one of three encoder initialisations on that GAN mapping every washer
to nearly one latent (input sensitivity 0.001, image AUROC 0.23), at 2e-4 none (sensitivity 0.137 to
0.156); at 1e-3 the encoder saturated tanh and mapped every image to one latent (sensitivity 0.000, a
template that scored image AUROC 1.000 only by differing from every defect). At `default` on seed 1:
washer image AUROC 1.000 with sensitivity 0.60 (its reconstructions follow the washer; the maps light
the defects, looked at); sand 1.000, weave 1.000, pin 0.969 with the encoder still at 5e-5, none
flagged.
"""

from __future__ import annotations

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
from adbench_methods.common.augment import AugmentPolicy, random_views
from adbench_methods.common.patches import reconstruct_gan_tiled, score_gan_tiled
from adbench_methods.common.schedule import paper_steps
from adbench_methods.common.state import ModulesState, frozen
from adbench_methods.fanogan.networks import LATENT_DIM, Critic, Encoder, Generator

_PAPER_GAN_EPOCHS = 50  # AnoGAN's, MVTec AD §4.1.1
_PAPER_ENCODER_STEPS = 50_000  # ITERS_ENC
_CPU_STEPS = {"default": (150, 300), "smoke": (6, 4)}  # (generator updates, encoder updates)


def _gan_and_encoder_steps(budget: BudgetName) -> tuple[int, int]:
    if budget == "paper":
        return paper_steps(_PAPER_GAN_EPOCHS, 64), _PAPER_ENCODER_STEPS
    return _CPU_STEPS[budget]


@dataclass(frozen=True)
class FAnoGANParams:
    channels: int
    image_size: int  # side the harness resizes images to
    patch_size: int  # the networks' side; equal to image_size for whole objects
    width: int  # DIM: the critic's first width, the generator's last
    min_angle_deg: float
    max_angle_deg: float
    max_shift: float  # objects' random translation, fraction of the side
    # The share of the training budget's steps that train E after the GAN (rounded to whole steps), so
    # that a budget of another length (a grid file's, the dry run's estimate) keeps both phases.
    encoder_share: float
    critic_steps: int = 5  # CRITIC_ITERS
    gradient_penalty: float = 10.0  # LAMBDA
    learning_rate: float = 1e-4  # the GAN's Adam
    beta1: float = 0.0
    beta2: float = 0.9
    encoder_learning_rate: float = 5e-5  # RMSProp
    kappa: float = 1.0  # weight of the critic-feature residual, in training E and in the score
    score_batch_size: int = 64  # patches scored together


class FAnoGAN(ModulesState, Detector[FAnoGANParams]):
    name = "fanogan"
    inference_kind = "single-pass"
    loss_labels: ClassVar[dict[str, str]] = {
        "critic": "critic loss (WGAN-GP)",
        "generator": "generator loss",
        "encoder": "encoder loss (izi_f)",
    }
    Params = FAnoGANParams

    def __init__(self, params: FAnoGANParams, device: str | torch.device = "cpu") -> None:
        super().__init__(params, device)
        if not 0 <= params.encoder_share <= 1:
            raise ValueError(f"encoder_share {params.encoder_share} must lie in [0, 1]")
        side, width = params.patch_size, params.width
        self.generator = Generator(params.channels, side, width).to(self.device)
        self.critic = Critic(params.channels, side, width).to(self.device)
        self.encoder = Encoder(params.channels, side, width).to(self.device)

    @classmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> FAnoGANParams:
        width = 64 if budget == "paper" else 8
        # (GAN, encoder): the code's for the paper, faster for the CPU budgets (module docstring).
        learning_rate, encoder_learning_rate = (1e-4, 5e-5) if budget == "paper" else (1e-3, 2e-4)
        gan_steps, encoder_steps = _gan_and_encoder_steps(budget)
        encoder_share = encoder_steps / (gan_steps + encoder_steps)
        if category.kind == "texture":
            image, patch = {"paper": (512, 128), "default": (256, 64), "smoke": (128, 64)}[budget]
            return FAnoGANParams(
                category.channels,
                image,
                patch,
                width,
                -45.0,
                45.0,
                0.0,
                encoder_share,
                learning_rate=learning_rate,
                encoder_learning_rate=encoder_learning_rate,
            )
        side = 128 if budget == "paper" else 64
        angle = 45.0 if category.rotation_invariant else 0.0
        return FAnoGANParams(
            category.channels,
            side,
            side,
            width,
            -angle,
            angle,
            0.05,
            encoder_share,
            learning_rate=learning_rate,
            encoder_learning_rate=encoder_learning_rate,
        )

    @classmethod
    def default_budget(cls, category: CategorySpec, budget: BudgetName) -> TrainingBudget:
        """Steps count generator updates and encoder updates together (`encoder_share` of them E's)."""
        gan, encoder = _gan_and_encoder_steps(budget)
        return TrainingBudget(
            steps=gan + encoder, batch_size={"paper": 64, "default": 16, "smoke": 8}[budget]
        )

    @classmethod
    def departures(cls, category: CategorySpec, budget: BudgetName) -> tuple[str, ...]:
        found = [
            "MVTec AD's AnoGAN protocol (objects whole at 128 px, textures 512 px in 128-px patches; the "
            "paper used 64-px OCT patches)"
            + (": one more residual block per network for 128 px" if budget == "paper" else ""),
            "colour images where the category has colour (the paper's are grayscale)",
            "torch's default initialisation (the authors' tflib: He/Glorot uniform)",
        ]
        if budget != "paper":
            found.append(
                "width 8 instead of 64, objects at 64 px, textures 256 px in 64-px patches (smoke 128 px), "
                "150 GAN + 300 encoder updates at batch 16 (smoke 6 + 4 at batch 8) instead of 7,850 + "
                "50,000 at 64: minutes on a CPU"
            )
            found.append(
                "lr 1e-3 (GAN) and 2e-4 (encoder) instead of 1e-4 and 5e-5: at those, 150 and 300 updates "
                "left G drawing a template, or the encoder mapping every image to one latent"
            )
        return tuple(found)

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.params.image_size, self.params.channels)

    def fit(self, images: torch.Tensor, budget: TrainingBudget, on_step: StepCallback | None = None) -> None:
        steps = self.training_steps(budget, len(images))
        gan_steps = self.gan_steps(budget, len(images))
        self.fit_gan(images, budget.batch_size, gan_steps, on_step)
        data, policy = self._training_views(images)
        self._fit_encoder(data, policy, budget.batch_size, gan_steps, steps - gan_steps, on_step)

    def gan_steps(self, budget: TrainingBudget, train_images: int) -> int:
        """The generator updates of the budget's steps: what the encoder's share leaves."""
        steps = self.training_steps(budget, train_images)
        return steps - round(steps * self.params.encoder_share)

    def _training_views(self, images: torch.Tensor) -> tuple[torch.Tensor, AugmentPolicy]:
        p = self.params
        policy = AugmentPolicy(p.patch_size, p.min_angle_deg, p.max_angle_deg, p.max_shift)
        return images.to(self.device) * 2 - 1, policy

    def fit_gan(
        self, images: torch.Tensor, batch_size: int, steps: int, on_step: StepCallback | None = None
    ) -> None:
        """The WGAN-GP stage alone: `steps` generator updates on [0, 1] `images`, each after
        `critic_steps` critic updates."""
        p = self.params
        data, policy = self._training_views(images)
        betas = (p.beta1, p.beta2)
        g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=p.learning_rate, betas=betas)
        d_optimizer = torch.optim.Adam(self.critic.parameters(), lr=p.learning_rate, betas=betas)
        self.generator.train()
        self.critic.train()
        for step in range(steps):
            for _ in range(p.critic_steps):
                real = random_views(data, batch_size, policy)
                with torch.no_grad():
                    fake = self.generator(self._latents(len(real)))
                critic_loss = self.critic(fake).mean() - self.critic(real).mean()
                critic_loss = critic_loss + p.gradient_penalty * self._gradient_penalty(real, fake)
                d_optimizer.zero_grad(set_to_none=True)
                critic_loss.backward()
                d_optimizer.step()
            generator_loss = -self.critic(self.generator(self._latents(batch_size))).mean()
            g_optimizer.zero_grad(set_to_none=True)
            generator_loss.backward()
            g_optimizer.step()
            if on_step is not None:
                on_step(step, {"critic": critic_loss.item(), "generator": generator_loss.item()})
        self.generator.eval()
        self.critic.eval()

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        alpha = torch.rand(len(real), 1, 1, 1, device=self.device)
        between = (real + alpha * (fake - real)).requires_grad_()
        (gradients,) = torch.autograd.grad(self.critic(between).sum(), between, create_graph=True)
        return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def _fit_encoder(
        self,
        data: torch.Tensor,
        policy: AugmentPolicy,
        batch_size: int,
        first_step: int,
        steps: int,
        on_step: StepCallback | None,
    ) -> None:
        p = self.params
        optimizer = torch.optim.RMSprop(self.encoder.parameters(), lr=p.encoder_learning_rate)
        self.encoder.train()
        with frozen(self.generator, self.critic):
            for step in range(steps):
                real = random_views(data, batch_size, policy)
                loss = self._izi_f(real)[0].mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if on_step is not None:
                    on_step(first_step + step, {"encoder": loss.item()})
        self.encoder.eval()

    def _latents(self, count: int) -> torch.Tensor:
        return torch.randn(count, LATENT_DIM, device=self.device)

    def _izi_f(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image of [−1, 1] `images`, MSE(x, G(E(x))) + κ·MSE(f(G(E(x))), f(x)): the encoder's loss
        and the anomaly score; and the reconstructions G(E(x))."""
        reconstructions = self.generator(self.encoder(images))
        return self.anomaly_scores(images, reconstructions), reconstructions

    def anomaly_scores(self, images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
        """A(x) = A_R(x) + κ·A_D(x) per image: MSE(x, x̂) + κ·MSE(f(x̂), f(x)) for [−1, 1] `images` and
        their reconstructions x̂, whichever mapping found them."""
        residual = (images - reconstructions).pow(2).flatten(1).mean(1)
        features = self.critic.features(reconstructions) - self.critic.features(images)
        return residual + self.params.kappa * features.pow(2).mean(1)

    def score(self, images: torch.Tensor) -> Scores:
        def score_patches(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            scores, reconstructions = self._izi_f(patches)
            return scores, (patches - reconstructions).abs().mean(dim=1)

        p = self.params
        return score_gan_tiled(images, self.device, p.patch_size, p.score_batch_size, score_patches)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        p = self.params
        return reconstruct_gan_tiled(
            images,
            self.device,
            p.patch_size,
            p.score_batch_size,
            lambda patches: self.generator(self.encoder(patches)),
        )

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "critic": self.critic, "encoder": self.encoder}
