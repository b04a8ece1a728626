"""CBiGAN speed on CPU with 2 threads, for comparison with the authors' TensorFlow code on this machine
(training 2.2 batches/s at 128 px and 6.7 at 64 px; scoring 400–450 images/s at 128 px, 1,400–1,500 at
64 px). A training step is 5 D batches and 1 E/G batch, so batches/s = 6 / (seconds per step); scoring
images/s = batch size / seconds, both from the median round (this VM's speed drifts between rounds).
Both are stored in extra_info and printed after the tables.

Scoring's "batch" is the number of images handed to one `score` call, as the harness and a user call it.
The detector runs them through the networks in its default `score_batch_size` (32): at 128 px one network
batch of 128 is 1.3-3x slower on this CPU (A/B runs), because its 128 px feature maps leave the cache.
"""

import dataclasses

import pytest
import torch

from adbench.detector import CategorySpec, TrainingBudget
from adbench_methods.cbigan.detector import CBiGAN

SIDES = {128: CategorySpec("bench_object", "object", 3), 64: CategorySpec("bench_texture", "texture", 3)}


pytestmark = pytest.mark.usefixtures("two_threads")


def _detector(side: int) -> CBiGAN:
    """The paper's networks at `side`, scoring whole images of that side with the default settings."""
    torch.manual_seed(0)
    params = CBiGAN.default_params(SIDES[side], "paper")
    return CBiGAN(dataclasses.replace(params, image_size=side))


@pytest.mark.parametrize("side", [128, 64])
@pytest.mark.benchmark(group="cbigan-train")
def test_training_step(benchmark, side):
    detector = _detector(side)
    images = torch.rand(64, 3, side, side)
    budget = TrainingBudget(steps=1, batch_size=32)
    detector.fit(images, budget)  # warm-up
    benchmark.pedantic(detector.fit, args=(images, budget), rounds=5, iterations=1)
    benchmark.extra_info["batches_per_s"] = (detector.params.critic_steps + 1) / benchmark.stats.stats.median


@pytest.mark.parametrize("batch", [32, 128])
@pytest.mark.parametrize("side", [128, 64])
@pytest.mark.benchmark(group="cbigan-score")
def test_scoring(benchmark, side, batch):
    detector = _detector(side)
    images = torch.rand(batch, 3, side, side)
    detector.score(images)  # warm-up
    benchmark.pedantic(detector.score, args=(images,), rounds=15, iterations=1)
    benchmark.extra_info["images_per_s"] = batch / benchmark.stats.stats.median
