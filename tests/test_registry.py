from importlib.metadata import EntryPoint

import pytest

from adbench import registry
from adbench.errors import AdbenchError
from adbench_methods.autoencoder.detector import L2Autoencoder


def test_builtin_methods_come_from_entry_points():
    assert "l2ae" in registry.method_names()
    assert registry.load_method("l2ae") is L2Autoencoder


def test_unknown_method_suggests_near_names():
    with pytest.raises(AdbenchError, match=r"unknown method 'l2e'\. Did you mean 'l2ae'\? Valid: .*l2ae"):
        registry.load_method("l2e")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("adbench_nowhere.module:Thing", "failed to import"),
        ("adbench.errors:AdbenchError", "is not an adbench.detector.Detector subclass"),
        ("adbench_methods.autoencoder.detector:L2Autoencoder", "declares name 'l2ae'"),
    ],
)
def test_broken_plugins_fail_in_one_line(monkeypatch, value, message):
    broken = EntryPoint(name="broken", value=value, group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: {"broken": broken})
    with pytest.raises(AdbenchError, match=message):
        registry.load_method("broken")
