"""AnoGAN's batched latent search against a per-image loop, and the SSIM map per 256×256 image.

Search: 32 images at the default budget's 64 px and width 16, 50 Adam steps each; the batched search
optimises all 32 latents as one tensor, the loop one image at a time; both reach the same latents
(checked here too). extra_info holds images/s. SSIM: ssimae's map (kornia) on one 256×256 grayscale pair,
with scikit-image's full map as the peer.
"""

import pytest
import torch

from adbench.detector import CategorySpec
from adbench_methods.anogan.detector import AnoGAN
from adbench_methods.anogan.latent_search import search_latents
from adbench_methods.anogan.networks import LATENT_DIM
from adbench_methods.autoencoder.ssim import ssim_map
from tests.helpers import skimage_ssim_map

IMAGES = 32
STEPS = 50


pytestmark = pytest.mark.usefixtures("two_threads")


@pytest.fixture(scope="module")
def search_case():
    torch.manual_seed(0)
    detector = AnoGAN(AnoGAN.default_params(CategorySpec("bench_object", "object", 3), "default"))
    detector.generator.eval()
    detector.discriminator.eval()
    images = torch.rand(IMAGES, 3, 64, 64) * 2 - 1
    initial = torch.randn(IMAGES, LATENT_DIM)
    return detector.generator, detector.discriminator.features, images, initial


def _batched(generator, features, images, initial):
    return search_latents(generator, features, images, initial, STEPS, 0.02, 0.1)[0]


def _per_image(generator, features, images, initial):
    return torch.cat(
        [
            search_latents(generator, features, images[i : i + 1], initial[i : i + 1], STEPS, 0.02, 0.1)[0]
            for i in range(len(images))
        ]
    )


@pytest.mark.benchmark(group="anogan-search")
@pytest.mark.parametrize("search", [_batched, _per_image], ids=["batched", "per-image"])
def test_latent_search(benchmark, search_case, search):
    latents = benchmark.pedantic(search, args=search_case, rounds=3, iterations=1)
    torch.testing.assert_close(latents, _batched(*search_case), rtol=1e-3, atol=1e-3)
    benchmark.extra_info["images_per_s"] = IMAGES / benchmark.stats.stats.mean


@pytest.fixture(scope="module")
def ssim_pair():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(1, 1, 256, 256, generator=generator)
    return target, (target + 0.1 * torch.rand(1, 1, 256, 256, generator=generator)).clamp(0, 1)


@pytest.mark.benchmark(group="ssim-map-256")
def test_ssim_map_kornia(benchmark, ssim_pair):
    target, reconstruction = ssim_pair
    with torch.no_grad():
        benchmark(ssim_map, reconstruction, target)


@pytest.mark.benchmark(group="ssim-map-256")
def test_ssim_map_scikit_image(benchmark, ssim_pair):
    target, reconstruction = (image[0, 0].numpy() for image in ssim_pair)
    benchmark(skimage_ssim_map, reconstruction, target)
