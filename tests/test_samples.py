import numpy as np
import pytest
import torch

from adbench.errors import AdbenchError
from adbench.run.samples import collect_samples, pick_samples, read_samples, write_samples


def test_picks_one_good_image_then_each_defect_type_in_turn():
    labels = np.array([0, 0, 1, 1, 1, 1, 1])
    defects = ("good", "good", "crack", "crack", "hole", "color", "hole")
    assert pick_samples(labels, defects, 4) == [0, 2, 4, 5]
    assert pick_samples(labels, defects, 6) == [0, 2, 4, 5, 3, 6]
    assert pick_samples(labels, defects, 2) == [0, 2]
    assert pick_samples(np.array([0, 0]), ("good", "good"), 4) == [0]
    assert pick_samples(np.array([1, 1]), ("hole", "hole"), 4) == [0, 1]
    # MVTec AD's folders sort by name: the defect-free image comes last in test order, first in the figure.
    assert pick_samples(np.array([1, 1, 1, 0]), ("broken", "broken", "crack", "good"), 4) == [3, 0, 2, 1]


def test_samples_round_trip_and_unreadable_file(tmp_path):
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    masks = torch.zeros(5, 8, 8, dtype=torch.uint8)
    masks[3, 2:4, 2:4] = 1
    maps = np.random.default_rng(0).random((5, 8, 8)).astype(np.float32)
    reconstructions = torch.rand(2, 1, 8, 8)
    names = tuple(f"test/x/{i}.png" for i in range(5))
    samples = collect_samples([0, 3], names, np.array([0, 0, 0, 1, 1]), images, masks, maps, reconstructions)
    path = tmp_path / "samples.npz"
    write_samples(path, samples)
    read = read_samples(path)
    assert list(read.names) == ["test/x/0.png", "test/x/3.png"] and list(read.labels) == [0, 1]
    np.testing.assert_array_equal(read.images, images[[0, 3]].numpy())
    np.testing.assert_array_equal(read.maps, maps[[0, 3]])
    assert read.masks.dtype == bool and read.masks[1].sum() == 4
    assert read.reconstructions.dtype == np.uint8
    np.testing.assert_allclose(read.reconstructions / 255, reconstructions.numpy(), atol=0.5 / 255 + 1e-6)

    path.write_bytes(b"not a zip")
    with pytest.raises(AdbenchError, match=r"samples\.npz: unreadable"):
        read_samples(path)
