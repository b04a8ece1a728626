"""The conformance kit over every registered method: what a third-party plugin runs too."""

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from adbench.detector import CategorySpec
from adbench.errors import AdbenchError
from adbench.registry import load_method, method_names
from adbench.testing import detector_checks
from adbench_methods.autoencoder.detector import L2Autoencoder


def _cases():
    return [
        pytest.param(check, id=f"{name}-{check.__name__}")
        for name in method_names()
        for check in detector_checks(load_method(name))
    ]


@pytest.mark.parametrize("check", _cases())
def test_detector_contract(check):
    check()


def test_checkpoint_that_does_not_match_the_networks_is_refused(tmp_path):
    detector = L2Autoencoder(L2Autoencoder.default_params(CategorySpec("pin", "object", 1), "smoke"))
    path = tmp_path / "checkpoint.safetensors"
    detector.save(path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(AdbenchError, match="does not match l2ae's current parameters or networks"):
        L2Autoencoder.load(path)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(AdbenchError, match="not a readable adbench checkpoint"):
        L2Autoencoder.load(path)
