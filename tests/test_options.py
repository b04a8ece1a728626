"""Each run option is declared once (adbench/run/options.py); what the command line, grid files, manifests,
--eval-only and --resume accept is derived from the declarations."""

from __future__ import annotations

import dataclasses

import pytest

from adbench.data.formats import FORMAT_NAMES
from adbench.detector import BUDGETS
from adbench.run import options
from adbench.run.config import OPTION_KEYS, RunConfig
from adbench.run.options import RUN_OPTIONS, flag_name
from tests.helpers import adbench, one_line

# Fields only the harness sets: `adbench time` and --eval-only choose them, no flag does.
HARNESS_ONLY = {"eval_only_from", "score_metrics"}


def test_every_config_field_is_declared_as_an_option_and_every_option_names_a_field():
    fields = {field.name for field in dataclasses.fields(RunConfig)}
    declared = {option.field for option in RUN_OPTIONS}
    assert declared <= fields
    assert fields - declared == HARNESS_ONLY
    assert set(OPTION_KEYS) == {option.key for option in RUN_OPTIONS}
    assert options.FORMAT_NAMES == FORMAT_NAMES
    budget = options.OPTIONS_BY_KEY["budget"]
    assert all(name in budget.help and name in budget.expected for name in BUDGETS)


@pytest.mark.parametrize("command", ["run", "time"])
def test_every_declared_option_is_a_flag_of_its_commands(command):
    shown = adbench(command, "--help", env={"COLUMNS": "200"}).stdout
    for option in RUN_OPTIONS:
        assert (f"{flag_name(option)} " in shown or f"{option.flag} " in shown) == (
            command in option.commands
        ), option.flag


def test_a_config_with_every_option_set_survives_the_manifest(tmp_path):
    config = RunConfig(
        methods=("l2ae", "cbigan"),
        categories=("pin",),
        data=tmp_path / "data",
        data_format="mvtec_ad",
        seeds=(3, 1),
        budget="smoke",
        out=tmp_path / "runs",
        run_name="r",
        device="cuda:1",
        amp=True,
        kinds=(("pin", "texture"),),
        method_params={"l2ae": {"latent_dim": 7}},
        executor="dask",
        scheduler="tcp://h:1",
        timing_repeats=7,
        pixel_resolution="input",
        save_maps=True,
        pixel_ci_max_pixels=5,
    )
    stored = config.to_manifest()
    assert set(stored) == (set(OPTION_KEYS) - {"all_categories"}) | HARNESS_ONLY
    assert RunConfig.from_options(stored) == config


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--seeds", "1"], "--seeds"),
        (["--budget", "paper"], "--budget"),
        (["--format", "mvtec_ad"], "--format"),
        (["--set", "l2ae.latent_dim=4"], "--set"),
        (["--methods", "l2ae", "--kinds", "pin=object"], "--methods, --kinds"),
    ],
)
def test_eval_only_refuses_every_option_that_would_change_the_grid(one_cell_run, flags, named):
    """Before the declarations, --seeds, --budget, --format and --set were taken and silently ignored."""
    run_dir = one_cell_run
    result = adbench("run", "--eval-only", str(run_dir), *flags)
    assert result.returncode == 2
    assert one_line(result.stderr) == f"error: {run_dir}: the grid comes from that run; drop {named}"


def test_resume_accepts_only_the_options_that_change_nothing_it_computes(tmp_path):
    result = adbench("run", "--resume", str(tmp_path), "--seeds", "1", "--amp")
    assert result.returncode == 2
    resuming = [flag_name(option) for option in RUN_OPTIONS if option.resuming]
    assert resuming == ["--scheduler"]
    assert one_line(result.stderr) == (
        f"error: {tmp_path}: --resume continues that run's own grid; drop --seeds, --amp "
        "(only --scheduler may be given, for a run on an existing Dask cluster)"
    )
