"""AnoGAN's inference: gradient descent in G's latent space for the z that best reconstructs an image.

    L(z) = (1 − λ)·||x − G(z)||₁ + λ·||f_D(x) − f_D(G(z))||₁      (per image; Schlegl et al. eq. 3–5)

The search is batched: all images of a batch are optimised as one (B, 64) tensor of latents with the
per-image losses summed. Each latent's gradient is then exactly its own image's gradient, and Adam works
element by element, so the batch takes the same steps as a separate search per image, at the cost of
one forward pass. G and D must be in eval mode: batch norm then uses its running statistics, and no image
can influence another's latent through the batch statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from adbench_methods.common.patches import score_tiled
from adbench_methods.common.state import frozen


def reconstruction_losses(
    generator: nn.Module,
    features: nn.Module,
    images: Tensor,
    image_features: Tensor,
    latents: Tensor,
    feature_weight: float,
) -> tuple[Tensor, Tensor]:
    """L(z) per image, and the reconstructions G(z)."""
    reconstructions = generator(latents)
    residual = (images - reconstructions).abs().flatten(1).sum(1)
    feature_residual = (image_features - features(reconstructions)).abs().flatten(1).sum(1)
    return (1 - feature_weight) * residual + feature_weight * feature_residual, reconstructions


def search_latents(
    generator: nn.Module,
    features: nn.Module,
    images: Tensor,
    initial: Tensor,
    steps: int,
    learning_rate: float,
    feature_weight: float,
    beta1: float = 0.5,
) -> tuple[Tensor, Tensor, Tensor]:
    """Optimise one latent per image from `initial` with Adam (β1 = `beta1`, as the training's in the
    LeeDoYup/AnoGAN code); return z*, L(z*) and G(z*)."""
    if generator.training or features.training:
        raise ValueError("put G and D in eval mode before the latent search (batch norm would mix images)")
    with torch.no_grad():
        image_features = features(images)
    latents = initial.detach().clone().requires_grad_()
    optimizer = torch.optim.Adam([latents], lr=learning_rate, betas=(beta1, 0.999))
    # Only the latents need gradients.
    with frozen(generator, features), torch.enable_grad():
        for _ in range(steps):
            losses, _ = reconstruction_losses(
                generator, features, images, image_features, latents, feature_weight
            )
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
    with torch.no_grad():
        final, reconstructions = reconstruction_losses(
            generator, features, images, image_features, latents, feature_weight
        )
    return latents.detach(), final, reconstructions


@dataclass(frozen=True)
class SearchSettings:
    steps: int
    learning_rate: float
    feature_weight: float  # λ
    beta1: float


# (patches, L(z*) per patch, G(z*)) -> a score per patch (B,) and a map (B, [C,] p, p) to stitch.
PatchResult = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def search_tiled(
    generator: nn.Module,
    features: nn.Module,
    images: Tensor,
    patch_size: int,
    batch_size: int,
    initial: Tensor,
    settings: SearchSettings,
    per_patch: PatchResult,
) -> tuple[Tensor, Tensor]:
    """Search a latent for every non-overlapping patch of [−1, 1] `images`, `batch_size` patches at a
    time, each from its row of `initial` (one per patch, in tiling order); the per-patch scores (N, P)
    and stitched maps (N, [C,] S, S) that `per_patch` makes of each batch's outcome. G and D are put in
    eval mode first."""
    generator.eval()
    features.eval()
    searched = 0

    def search(patches: Tensor) -> tuple[Tensor, Tensor]:
        nonlocal searched
        start = initial[searched : searched + len(patches)]
        searched += len(patches)
        _, losses, reconstructions = search_latents(
            generator,
            features,
            patches,
            start,
            settings.steps,
            settings.learning_rate,
            settings.feature_weight,
            settings.beta1,
        )
        return per_patch(patches, losses, reconstructions.detach())

    return score_tiled(images, patch_size, patch_size, batch_size, search)
