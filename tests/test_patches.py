import pytest
import torch

from adbench_methods.common.patches import patch_positions, reconstruct_tiled, score_tiled


def _sum_and_identity(patches):
    return patches.flatten(1).sum(1), patches[:, 0]


@pytest.mark.parametrize(("size", "patch", "stride"), [(16, 16, 16), (16, 8, 8), (16, 8, 3)])
def test_tiled_scoring_returns_every_patch_score_and_the_image_back(size, patch, stride):
    images = torch.rand(5, 1, size, size)
    per_image = len(patch_positions(size, patch, stride)) ** 2
    reference = None
    for batch_size in (1, 3, 1000):  # grouping images or cutting them must not change anything
        scores, maps = score_tiled(images, patch, stride, batch_size, _sum_and_identity)
        assert scores.shape == (5, per_image) and maps.shape == (5, size, size)
        assert torch.allclose(maps, images[:, 0])  # overlapping copies of a pixel average to itself
        assert torch.allclose(scores[:, 0], images[:, 0, :patch, :patch].flatten(1).sum(1))
        if reference is not None:
            assert torch.allclose(scores, reference)
        reference = scores


def test_tiled_scoring_never_passes_more_than_the_batch_size():
    seen = []

    def record(patches):
        seen.append(len(patches))
        return _sum_and_identity(patches)

    score_tiled(torch.rand(7, 1, 16, 16), 8, 8, 6, record)
    assert max(seen) <= 6 and sum(seen) == 7 * 4


@pytest.mark.parametrize(("size", "patch", "stride"), [(16, 16, 16), (16, 8, 3)])
def test_tiled_reconstruction_stitches_every_channel(size, patch, stride):
    images = torch.rand(3, 3, size, size)
    offset = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1)
    rebuilt = reconstruct_tiled(images, patch, stride, 4, lambda patches: patches + offset)
    assert rebuilt.shape == (3, 3, size, size)
    assert torch.allclose(rebuilt, images + offset)  # channels kept apart, overlaps averaged
