"""A third-party method, added without touching adbench/: tests/plugin_example is a package of its own."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from adbench.testing import check_detector
from tests.helpers import adbench

PLUGIN = Path(__file__).parent / "plugin_example"


def test_example_plugin_passes_the_conformance_kit(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    from adbench_example_plugin import PixelGaussian

    check_detector(PixelGaussian)


def test_conformance_kit_names_the_broken_check(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    from adbench_example_plugin import PixelGaussian

    class Forgetful(PixelGaussian):
        name = "forgetful"

        def load_state_tensors(self, tensors):  # ignores the stored model: scores change after loading
            pass

    with pytest.raises(AssertionError, match="Forgetful fails check_save_load_round_trip"):
        check_detector(Forgetful)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """The example plugin installed by pip into a folder of its own (the test environment is untouched)."""
    site = tmp_path_factory.mktemp("site")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(PLUGIN)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    return site


def test_installed_plugin_is_listed_and_runs_end_to_end(plugin_site, tiny_root, tmp_path):
    env = {"PYTHONPATH": str(plugin_site)}
    listed = adbench("methods", env=env, fresh=True)  # entry points are found at interpreter start
    assert listed.returncode == 0 and "pixelgauss" in listed.stdout
    assert "pixelgauss" not in adbench("methods").stdout  # only the installed entry point adds it

    result = adbench(
        *("run", "--methods", "pixelgauss", "--categories", "pin,sand", "--budget", "smoke"),
        *("--data", str(tiny_root), "--out", str(tmp_path), "--name", "plugin", "--repeats", "1"),
        env=env,
        fresh=True,
    )
    assert result.returncode == 0, result.stderr
    results = pd.read_csv(tmp_path / "plugin" / "results.csv")
    auroc = results[results.metric == "image_auroc"].set_index("category")["value"]
    assert set(auroc.index) == {"pin", "sand"}
    assert auroc["pin"] > 0.8  # defects on a fixed object layout stand out per pixel
    assert (
        tmp_path / "plugin" / "cells" / "pixelgauss" / "pin" / "seed0" / "checkpoint.safetensors"
    ).is_file()
