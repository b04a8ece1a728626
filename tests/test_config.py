"""Grid files (`--config grid.toml`), the manifest as a grid file, per-method parameters, devices."""

import json

import pandas as pd
import pytest

from adbench.errors import AdbenchError
from adbench.run.config import RunConfig, read_grid_file
from tests.helpers import adbench, one_line, quality_rows

GRID = """
methods = ["cbigan"]
categories = ["pin"]
seeds = [0]
budget = "smoke"
repeats = 1
device = "auto"

[params.cbigan]
alpha = 0.002
score_lambda = 0.25
"""


@pytest.fixture(scope="module")
def grid_run(tiny_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    # Top-level keys before the [params] table: TOML puts every later key inside the table.
    (folder / "grid.toml").write_text(f'data = "{tiny_root}"\nout = "{folder}"\n' + GRID)
    result = adbench("run", "--config", str(folder / "grid.toml"), "--name", "from-file")
    assert result.returncode == 0, result.stderr
    return folder / "from-file"


def test_grid_file_sets_the_grid_and_method_params(grid_run):
    manifest = json.loads((grid_run / "manifest.json").read_text())
    assert manifest["config"]["params"] == {"cbigan": {"alpha": 0.002, "score_lambda": 0.25}}
    (cell,) = manifest["cells"]
    assert (cell["method"], cell["category"]) == ("cbigan", "pin")
    assert cell["params"]["alpha"] == 0.002 and cell["params"]["score_lambda"] == 0.25
    assert manifest["device"] == "cpu" and cell["device"] == "cpu"  # auto on a machine without a GPU
    assert manifest["config"]["device"] == "auto"


def test_the_manifest_reproduces_the_run(grid_run, tmp_path):
    again = adbench("run", "--config", str(grid_run / "manifest.json"), "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    (reproduced,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    pd.testing.assert_frame_equal(quality_rows(reproduced), quality_rows(grid_run))
    first = json.loads((grid_run / "manifest.json").read_text())["config"]
    second = json.loads((reproduced / "manifest.json").read_text())["config"]
    assert {k: v for k, v in first.items() if k not in ("name", "out")} == {
        k: v for k, v in second.items() if k not in ("name", "out")
    }


def test_flags_override_the_file(tmp_path, tiny_root):
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["l2ae"]\ncategories = ["pin"]\nseeds = [0, 1]\nbudget = "paper"\n')
    options = read_grid_file(grid)
    config = RunConfig.from_options(
        options | {"seeds": (3,), "budget": "smoke", "categories": None, "all_categories": True}
    )
    assert config.seeds == (3,) and config.budget == "smoke" and config.categories is None
    assert config.methods == ("l2ae",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'methods = ["l2ae"]\ncategory = ["pin"]\n',
            "unknown key 'category'. Did you mean 'categories', 'all_categories'? "
            "Valid keys: methods, categories",
        ),
        ('methods = "l2ae"\n', "methods = 'l2ae' has the wrong type; expected a list of method names"),
        ("seeds = [0, 1.5]\n", "seeds = [0, 1.5] has the wrong type; expected a list of integers"),
        ("repeats = true\n", "repeats = True has the wrong type; expected an integer"),
        ("[params]\ncbigan = 3\n", "params = {'cbigan': 3} has the wrong type"),
        ("methods = [\n", "not valid TOML"),
    ],
)
def test_bad_grid_files_name_the_key(tmp_path, text, message):
    grid = tmp_path / "grid.toml"
    grid.write_text(text)
    with pytest.raises(AdbenchError, match=r"grid\.toml: ") as error:
        read_grid_file(grid)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            "[params.cbigan]\nalpha_weight = 1.0\n",
            "params.cbigan: unknown key 'alpha_weight'. Valid keys: channels,",
        ),
        (
            "[params.cbigan]\nscore_lamda = 0.1\n",
            "params.cbigan: unknown key 'score_lamda'. Did you mean 'score_lambda'? Valid keys: channels,",
        ),
        (
            "[params.cbigan]\nAlpha = 0.1\n",
            "params.cbigan: unknown key 'Alpha'. Did you mean 'alpha'? Valid keys: channels,",
        ),
        ('[params.cbigan]\nalpha = "big"\n', "params.cbigan.alpha = 'big': expected float like the default"),
        ("[params.cbigan]\ncritic_steps = 2.5\n", "params.cbigan.critic_steps = 2.5: expected int"),
        (
            '[params.cbigan]\nfeature_layer = "latent.0"\n',
            "params.cbigan: unknown discriminator feature layer",
        ),
        ("[params.l2ae]\nlearning_rate = 1.0\n", "params for l2ae: not among the run's methods (cbigan)"),
    ],
)
def test_bad_method_params_give_one_line_before_training(tmp_path, tiny_root, params, message):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'methods = ["cbigan"]\ncategories = ["pin"]\nbudget = "smoke"\ndata = "{tiny_root}"\n{params}'
    )
    result = adbench("run", "--config", str(grid), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_amp_runs_on_cpu_and_is_recorded(tiny_root, tmp_path):
    result = adbench(
        *("run", "--methods", "l2ae", "--categories", "pin", "--budget", "smoke", "--repeats", "1", "--amp"),
        *("--data", str(tiny_root), "--out", str(tmp_path), "--name", "amp"),
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "amp" / "manifest.json").read_text())
    assert manifest["config"]["amp"] is True and manifest["cells"][0]["amp"] is True
    results = pd.read_csv(tmp_path / "amp" / "results.csv")
    defined = results[results.metric != "pixel_aupimo"]  # undefined on the tiny set's 64 px images
    assert (
        defined["value"].notna().all() and 0 <= results.set_index("metric").loc["image_auroc", "value"] <= 1
    )


def test_unavailable_devices_give_one_line(tiny_root, tmp_path):
    for device, message in (("cuda:3", "--device cuda:3: CUDA is not available"), ("tpu", "--device tpu:")):
        result = adbench(
            *("run", "--methods", "l2ae", "--categories", "pin", "--budget", "smoke", "--device", device),
            *("--data", str(tiny_root), "--out", str(tmp_path)),
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_a_run_on_the_built_in_data_survives_a_cleared_cache(tmp_path):
    """The built-in dataset is regenerated byte-identical, so its folder's absence is not an error;
    any other missing dataset stays missing (and is named by resume and eval-only)."""
    from adbench.data.synth import DEFAULT_DATASET_NAME

    def stored_data(config_data, dataset):
        run_dir = tmp_path / "run"
        run_dir.mkdir(exist_ok=True)
        config = RunConfig(("l2ae",), ("pin",), None if config_data is None else tmp_path / config_data)
        manifest = {"config": config.to_manifest(), "dataset": str(dataset), "cells": []}
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
        return RunConfig.from_manifest(run_dir).data

    cleared = tmp_path / "old-cache" / DEFAULT_DATASET_NAME
    assert stored_data(None, cleared) is None
    assert (
        stored_data(None, tmp_path / "old-cache" / "synthetic-v0-seed0")
        == tmp_path / "old-cache" / "synthetic-v0-seed0"
    )
    assert stored_data("mine", tmp_path / "mine") == tmp_path / "mine"
    cleared.mkdir(parents=True)
    assert stored_data(None, cleared) == cleared


def test_set_on_the_command_line_is_checked_like_a_grid_files_params(tmp_path):
    import json as json_module

    grid = tmp_path / "grid.toml"
    grid.write_text(
        'methods = ["cbigan"]\ncategories = ["pin"]\nbudget = "smoke"\n[params.cbigan]\ncritic_steps = 3\n'
    )
    result = adbench(
        "run", "--config", str(grid), "--set", "cbigan.alpha=0.5", "--set", "cbigan.penalty_pairing=authors",
        "--dry-run", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    params = json_module.loads(result.stdout.splitlines()[0])["params"]
    assert (params["alpha"], params["penalty_pairing"], params["critic_steps"]) == (0.5, "authors", 3)
    for flag, message in (
        ("cbigan.alph=1", "params.cbigan: unknown key 'alph'. Did you mean 'alpha'?"),
        ("cbigan.alpha=big", "params.cbigan.alpha = 'big': expected float"),
        ("alpha=1", "--set alpha=1: expected METHOD.PARAM=VALUE"),
        ("l2ae.width=64", "params for l2ae: not among the run's methods"),
    ):
        bad = adbench("run", "--config", str(grid), "--set", flag, "--dry-run")
        assert bad.returncode == 2 and message in one_line(bad.stderr), (flag, bad.stderr)
