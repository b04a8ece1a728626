"""adbench/params.py: the checks on hyperparameters. Every method's defaults pass the checks a
checkpoint gets, and out-of-range params in a grid file are one line before the run folder exists."""

from __future__ import annotations

import dataclasses

import pytest

from adbench.detector import BUDGETS, CategorySpec
from adbench.params import checked_fields
from adbench.registry import load_method
from tests.helpers import adbench


@pytest.mark.parametrize("method", ["l2ae", "ssimae", "cbigan", "egbad", "anogan"])
def test_every_default_passes_the_checks_a_checkpoint_gets(method):
    detector = load_method(method)
    for budget in BUDGETS:
        for kind in ("texture", "object"):
            for channels in (1, 3):
                params = detector.default_params(CategorySpec("x", kind, channels), budget)
                assert checked_fields(type(params), dataclasses.asdict(params)) == dataclasses.asdict(params)


@pytest.mark.parametrize(
    "line", ["image_size = -64", "latent_dim = 0", "learning_rate = nan", "image_size = 100000"]
)
def test_out_of_range_grid_params_are_one_line_and_make_no_run_folder(tiny_root, tmp_path, line):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'methods = ["l2ae"]\ncategories = ["pin"]\nbudget = "smoke"\ndata = "{tiny_root}"\n'
        f"[params.l2ae]\n{line}\n"
    )
    out = tmp_path / "runs"
    result = adbench("run", "--config", str(grid), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"params.l2ae.{line.split(' = ')[0]} = " in result.stderr
    assert not out.exists() or not any(out.iterdir())
