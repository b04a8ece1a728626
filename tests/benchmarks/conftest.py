import pytest
import torch


@pytest.fixture
def two_threads():
    """torch on 2 threads, the setting the authors' TensorFlow figures were measured with."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)
