"""The conformance kit over every registered method: what a third-party plugin runs too."""

import pytest

from adbench.registry import load_method, method_names
from adbench.testing import detector_checks


def _cases():
    return [
        pytest.param(check, id=f"{name}-{check.__name__}")
        for name in method_names()
        for check in detector_checks(load_method(name))
    ]


@pytest.mark.parametrize("check", _cases())
def test_detector_contract(check):
    check()
