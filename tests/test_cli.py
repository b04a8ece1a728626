"""End to end through the `adbench` command, as a user runs it."""

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from adbench.evaluation.metrics.catalogue import METRICS
from adbench.machine.timing import FIT_SECONDS, TIMING_METRICS
from adbench.run.results import COLUMNS
from tests.helpers import adbench, one_line, quality_rows, wait_until


def smoke_run(data, out, *args):
    """`adbench run --methods l2ae --budget smoke` on `data` into `out`, plus `args`."""
    return adbench(
        "run", "--methods", "l2ae", "--budget", "smoke", "--data", str(data), "--out", str(out), *args
    )


def _printed_table(stdout: str, title: str) -> dict[str, float]:
    """Header names -> values of the l2ae row in the table under `title`."""
    block = stdout.split(title, 1)[1].split("└", 1)[0]
    lines = [line for line in block.splitlines() if "│" in line or "┃" in line]
    header_rows = [re.split(r"\s*[┃]\s*", line.strip("┃ ")) for line in lines if "┃" in line]
    names = [" ".join(parts).strip() for parts in zip(*header_rows, strict=True)]
    values = re.split(r"\s*│\s*", next(line for line in lines if "l2ae" in line).strip("│ "))
    return dict(zip(names, values, strict=True))


@pytest.fixture(scope="module")
def tiny_run(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = smoke_run(tiny_root, out, "--all-categories", "--name", "tiny")
    assert result.returncode == 0, result.stderr
    return out / "tiny", result


def test_printed_tables_hold_the_stored_numbers(tiny_run):
    run_dir, result = tiny_run
    results = pd.read_csv(run_dir / "results.csv")
    assert list(results.columns) == list(COLUMNS)
    expected_metrics = {
        "image_auroc",
        "image_max_balanced_accuracy",
        "image_ap",
        "image_f1_max",
        "pixel_auroc",
        "pixel_ap",
        "pixel_f1_max",
        "pixel_aupro_0.3",
        "pixel_aupro_0.1",
        "pixel_aupro_0.05",
        "pixel_aupro_0.01",
        "pixel_aupimo",
        "threshold_balanced_accuracy",
        "threshold_tpr",
        "threshold_tnr",
        "pixel_iou",
        "input_sensitivity",
        *TIMING_METRICS,
    }
    assert set(results.metric) == expected_metrics
    assert expected_metrics <= set(METRICS), "every stored metric declares its direction"
    assert len(results) == 4 * len(expected_metrics)  # 4 categories × metrics × 1 seed
    for metric, title in [
        ("image_auroc", "image AUROC"),
        ("image_max_balanced_accuracy", "max balanced accuracy"),
        ("pixel_aupro_0.3", "pixel AU-PRO (FPR up to 0.3)"),
    ]:
        printed = _printed_table(result.stdout, title)
        stored = results[results.metric == metric].set_index("category")["value"]
        for category, value in stored.items():
            assert printed[category] == f"{value:.3f}"
        kinds = results.drop_duplicates("category").set_index("category")["category_kind"]
        textures = stored[kinds[stored.index] == "texture"]
        assert printed["textures mean"] == f"{textures.mean():.3f}"
        assert printed["objects mean"] == f"{stored[kinds[stored.index] == 'object'].mean():.3f}"
        assert printed["overall mean"] == f"{stored.mean():.3f}"
    # Textures first, as in the paper tables.
    header = _printed_table(result.stdout, "image AUROC")
    assert list(header)[1:5] == ["sand", "weave", "pin", "washer"]


def test_run_folder_records_provenance_and_cells(tiny_run):
    run_dir, _ = tiny_run
    parquet = pd.read_parquet(run_dir / "results.parquet")
    pd.testing.assert_frame_equal(
        parquet.reset_index(drop=True),
        pd.read_csv(run_dir / "results.csv").astype(COLUMNS),
        check_exact=False,
    )
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["config"]["budget"] == "smoke"
    assert manifest["environment"]["versions"]["torch"]
    # what a seeded result that moves between machines is traced through
    assert manifest["environment"]["versions"]["kornia"] and manifest["environment"]["versions"]["scipy"]
    assert manifest["environment"]["cpu_model"] not in ("", None, "x86_64")
    assert manifest["environment"]["cpu_vendor"] in ("GenuineIntel", "AuthenticAMD"), "the gate's key"
    assert "git_commit" in manifest["environment"]
    assert len(manifest["cells"]) == 4
    washer = next(cell for cell in manifest["cells"] if cell["category"] == "washer")
    assert washer["params"]["image_size"] == 64 and washer["training_budget"]["steps"] > 0
    assert washer["validation_threshold"]["min_defect_area"] >= 1
    cell = run_dir / "cells" / "l2ae" / "washer" / "seed0"
    assert (cell / "checkpoint.safetensors").stat().st_size > 0
    losses = pd.read_csv(cell / "losses.csv")
    assert len(losses) == washer["training_budget"]["steps"]
    assert len(pd.read_csv(cell / "scores.csv")) == 8 + 2 * 5


def test_existing_run_is_never_overwritten(tiny_run, tiny_root):
    run_dir, _ = tiny_run
    before = (run_dir / "results.csv").read_bytes()
    result = smoke_run(tiny_root, run_dir.parent, "--categories", "pin", "--name", "tiny")
    assert result.returncode == 2
    assert "exists and is never overwritten" in result.stderr
    assert (run_dir / "results.csv").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "l2a", "--all-categories"], "unknown method 'l2a'. Did you mean 'l2ae'?"),
        (["--methods", "AnoGAN", "--all-categories"], "unknown method 'AnoGAN'. Did you mean 'anogan'?"),
        (["--methods", "l2ae", "--all-categories", "--budget", "Smoke"], "Did you mean 'smoke'?"),
        (["--methods", "l2ae", "--categories", "wavee"], "unknown category 'wavee'"),
        (["--methods", "l2ae"], "exactly one of --categories a,b and --all-categories"),
        (["--methods", "l2ae", "--all-categories", "--budget", "huge"], "unknown budget 'huge'"),
        (["--methods", "l2ae", "--all-categories", "--seeds", "a"], "expected integers"),
        (
            ["--methods", "l2ae", "--all-categories", "--seeds", "-1"],
            "--seeds -1: seeds must be integers from 0",
        ),
        (["--methods", "l2ae,l2ae", "--all-categories"], "--methods: l2ae listed more than once"),
        (["--methods", "l2ae", "--categories", "pin,sand,pin"], "--categories: pin listed more than once"),
        (["--methods", "l2ae", "--all-categories", "--seeds", "0,1,0"], "--seeds: 0 listed more than once"),
        (
            ["--methods", "l2ae", "--all-categories", "--name", "../elsewhere"],
            "--name: run name '../elsewhere' cannot be a file or folder name (it holds a path separator)",
        ),
        (
            ["--methods", "l2ae", "--all-categories", "--name", ""],
            "--name: run name '' cannot be a file or folder name (it is empty)",
        ),
        (["--methods", "l2ae", "--all-categories", "--device", "cuda:x"], "--device cuda:x: Invalid device"),
    ],
)
def test_bad_arguments_give_one_line(args, message, tiny_root, tmp_path):
    result = adbench("run", *args, "--data", str(tiny_root), "--out", str(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir()), "nothing is created before the inputs are valid"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--bogus"],
            "error: No such option: --bogus (Possible options: --out); see adbench run --help",
        ),
        (["nosuch"], "error: No such command 'nosuch'; see adbench --help"),
        (["compare"], "error: Missing argument 'RUN'; see adbench compare --help"),
        (["run", "--seeds"], "error: Option '--seeds' requires an argument"),
        (["time", "--repeats", "x"], "error: Invalid value for '--repeats'"),
    ],
)
def test_usage_errors_are_one_line_too(args, message):
    result = adbench(*args)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(message)


def test_a_group_called_alone_shows_its_help():
    result = adbench("data")
    assert result.returncode == 2 and "Commands:" in result.stdout + result.stderr


def test_out_under_a_file_is_one_line(tiny_root, tmp_path):
    (tmp_path / "notes").write_text("keep me")
    for out in ("notes", "notes/runs"):
        result = smoke_run(tiny_root, tmp_path / out, "--categories", "pin")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{tmp_path / out}: not a folder (it, or one above it, is a file)" in result.stderr
    cache = tmp_path / "notes" / "cache"
    blocked = adbench(
        "run", "--methods", "l2ae", "--budget", "smoke", "--categories", "pin", "--data", str(tiny_root),
        "--out", str(tmp_path / "runs"), env={"ADBENCH_CACHE_DIR": str(cache)},
    )  # fmt: skip
    assert blocked.returncode == 2 and f"{cache}: not a folder" in blocked.stderr, blocked.stderr
    assert not (tmp_path / "runs").exists(), "no run folder is left behind"
    synth = adbench("data", "synth", "--out", str(tmp_path / "notes" / "data"))
    assert synth.returncode == 2 and f"{tmp_path / 'notes'}: not a folder" in synth.stderr, synth.stderr
    assert (tmp_path / "notes").read_text() == "keep me"


def test_names_and_messages_keep_their_brackets(dataset_copy, tmp_path):
    """Output goes through rich, whose markup would swallow "[kinds]" or a category named "pin[v2]"."""
    (dataset_copy / "pin").rename(dataset_copy / "pin[v2]")
    (dataset_copy / "categories.toml").unlink()
    result = smoke_run(dataset_copy, tmp_path, "--categories", "pin[v2]")
    assert result.returncode == 2
    assert f'add `"pin[v2]" = "texture"` (or "object") under [kinds] in {dataset_copy}' in result.stderr, (
        result.stderr
    )
    (dataset_copy / "categories.toml").write_text('[kinds]\n"pin[v2]" = "object"\n')
    result = smoke_run(dataset_copy, tmp_path, "--categories", "pin[v2]", "--name", "brackets")
    assert result.returncode == 0, result.stderr
    assert "done l2ae/pin[v2]/seed0: image_auroc" in result.stderr
    assert "┃ method ┃ pin[v2] ┃" in result.stdout, result.stdout


def test_a_crashing_method_leaves_its_finished_cells_and_says_why_in_the_manifest(
    tiny_root, tmp_path, monkeypatch
):
    """A bug in a method keeps its traceback, but the run folder must not claim to be still running."""
    from adbench.run.config import RunConfig
    from adbench.run.runner import run
    from adbench_methods.autoencoder.detector import L2Autoencoder

    fit = L2Autoencoder.fit
    calls = []

    def fit_then_crash(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom in the second cell")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(L2Autoencoder, "fit", fit_then_crash)
    config = RunConfig(("l2ae",), ("sand", "pin"), tiny_root, budget="smoke", out=tmp_path, run_name="crash")
    with pytest.raises(RuntimeError, match="boom in the second cell"):
        run(config)
    manifest = json.loads((tmp_path / "crash" / "manifest.json").read_text())
    assert manifest["status"] == "failed: RuntimeError: boom in the second cell"
    assert [cell["category"] for cell in manifest["cells"]] == ["sand"]
    assert set(pd.read_csv(tmp_path / "crash" / "results.csv")["category"]) == {"sand"}


def test_bad_data_gives_one_line_naming_the_file(dataset_copy, tmp_path):
    image = dataset_copy / "pin" / "test" / "good" / "000.png"
    image.write_bytes(image.read_bytes()[:80])
    result = smoke_run(dataset_copy, tmp_path, "--categories", "pin")
    assert result.returncode == 2
    # One line besides the log's progress lines (stderr is no terminal here): the error.
    assert f"{image}: unreadable or truncated image" in one_line(result.stderr)


@pytest.mark.parametrize("command", ["run", "time", "evaluate", "report", "compare", "methods", "data synth"])
def test_help_shows_the_defaults_and_types_only_for_options_that_take_a_value(command):
    result = adbench(*command.split(), "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout and "<str>" not in result.stdout and "RUN..." not in result.stdout
    expected = {
        "run": [
            "--repeats N",
            "[default: 10]",
            "--budget BUDGET",
            "[default: default]",
            "--all-categories  ",
        ],
        "time": ["[default: 10]", "--from RUN"],
        "report": ["[default: <first run>/report.md]", "[default: image_auroc]"],
        "compare": ["[default: 0.02; with --ci or --exact: 0]", "--baseline FILE", "--exact"],
        "data synth": ["--out DIR", "[default: 0]"],
    }.get(command, [])
    for text in expected:
        assert text in result.stdout, (text, result.stdout)


def test_version():
    from importlib import metadata

    result = adbench("--version")
    assert (
        result.returncode == 0 and result.stdout.strip() == f"adbench {metadata.version('adbench-harness')}"
    )


def test_methods_lists_l2ae_with_its_kind_and_who_trains_for_fanogan_iterative():
    result = adbench("methods")
    assert result.returncode == 0
    assert re.search(r"l2ae\s+│\s+single-pass", result.stdout)
    assert re.search(r"fanogan-iterative\s+│\s+iterative, on fanogan's networks", result.stdout)


def test_data_synth_writes_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "synthetic"
    first = adbench("data", "synth", "--out", str(out), "--seed", "3")
    assert first.returncode == 0, first.stderr
    assert (out / "weave" / "train" / "good").is_dir() and (out / "categories.toml").is_file()
    second = adbench("data", "synth", "--out", str(out))
    assert second.returncode == 2 and "never overwritten" in second.stderr


def test_eval_only_rescores_the_checkpoints_without_training(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    result = adbench("run", "--eval-only", str(run_dir), "--out", str(tmp_path), "--name", "again")
    assert result.returncode == 0, result.stderr
    original = pd.read_csv(run_dir / "results.csv").drop(columns="run_id")
    rescored = pd.read_csv(tmp_path / "again" / "results.csv").drop(columns="run_id")
    quality = [metric for metric in original.metric.unique() if metric not in TIMING_METRICS]
    pd.testing.assert_frame_equal(
        rescored[rescored.metric.isin(quality)].reset_index(drop=True),
        original[original.metric.isin(quality)].reset_index(drop=True),
    )
    assert FIT_SECONDS not in set(rescored.metric) and set(TIMING_METRICS) - {FIT_SECONDS} <= set(
        rescored.metric
    )
    manifest = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert manifest["config"]["eval_only_from"] == str(run_dir)
    assert all(cell["training_budget"] is None for cell in manifest["cells"])
    assert not list((tmp_path / "again").rglob("losses.csv")), "nothing was trained"


def test_eval_only_names_a_missing_checkpoint(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    source = tmp_path / "copy"
    shutil.copytree(run_dir, source)
    checkpoint = source / "cells" / "l2ae" / "sand" / "seed0" / "checkpoint.safetensors"
    checkpoint.unlink()
    result = adbench("run", "--eval-only", str(source), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert f"{checkpoint}: missing" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    bad = adbench("run", "--eval-only", str(tmp_path), "--methods", "l2ae", "--out", str(tmp_path / "runs"))
    assert bad.returncode == 2
    assert one_line(bad.stderr) == f"error: {tmp_path}: the grid comes from that run; drop --methods"


def test_a_runs_moved_data_is_named_and_eval_only_takes_its_new_place(tiny_run, tiny_root, tmp_path):
    run_dir, _ = tiny_run
    moved = Path(shutil.copytree(tiny_root, tmp_path / "data"))
    source = Path(shutil.copytree(run_dir, tmp_path / "source"))
    manifest = json.loads((source / "manifest.json").read_text())
    gone = tmp_path / "gone"
    manifest["dataset"] = manifest["config"]["data"] = str(gone)
    (source / "manifest.json").write_text(json.dumps(manifest))

    for command in (
        ["run", "--eval-only", str(source), "--out", str(tmp_path)],
        ["run", "--resume", str(source)],
    ):
        result = adbench(*command)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{source}: its dataset {gone} is not there any more" in result.stderr, result.stderr

    rescored = adbench(
        "run", "--eval-only", str(source), "--data", str(moved), "--out", str(tmp_path), "--name", "e"
    )
    assert rescored.returncode == 0, rescored.stderr
    assert json.loads((tmp_path / "e" / "manifest.json").read_text())["dataset"] == str(moved.resolve())
    pd.testing.assert_frame_equal(_quality(tmp_path / "e"), _quality(run_dir))


def test_time_measures_every_method_and_category_and_compares_iterative_with_single_pass(tiny_root, tmp_path):
    result = adbench(
        "time",
        *("--methods", "l2ae,anogan", "--categories", "sand,pin", "--budget", "smoke", "--repeats", "3"),
        *("--data", str(tiny_root), "--out", str(tmp_path), "--name", "timed"),
        "--contended-timings",  # the ratios whatever else the test machine is doing
    )
    assert result.returncode == 0, result.stderr
    results = pd.read_csv(tmp_path / "timed" / "results.csv")
    assert set(results.metric) == set(TIMING_METRICS), "time measures, it does not evaluate"
    for method in ("l2ae", "anogan"):
        for category in ("sand", "pin"):
            cell = results[(results.method == method) & (results.category == category)]
            assert set(cell.metric) == set(TIMING_METRICS) and (cell.value > 0).all()
            latency = cell.set_index("metric")["value"]
            assert latency["infer_ms_per_image_p95"] >= latency["infer_ms_per_image"]
    manifest = json.loads((tmp_path / "timed" / "manifest.json").read_text())
    assert {cell["timing"]["latency_repeats"] for cell in manifest["cells"]} == {3}
    assert manifest["environment"]["torch_threads"] >= 1 and manifest["device"] == "cpu"
    assert "omp_wait_policy" in manifest["environment"], "a run beside busy processes waits passively"
    for category in ("sand", "pin"):
        ratio = re.search(
            rf"{category}: anogan \(iterative\) takes ([\d.,]+)× the time per image of l2ae", result.stdout
        )
        assert ratio, result.stdout
        by_method = results[(results.category == category) & (results.metric == "infer_ms_per_image")]
        latency = by_method.set_index("method")["value"]
        # The printed ratio is the stored latencies' ratio, rounded as printed (one decimal).
        assert ratio.group(1) == f"{latency['anogan'] / latency['l2ae']:,.1f}"


def test_time_from_an_earlier_run_loads_its_checkpoints(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    result = adbench("time", "--from", str(run_dir), "--repeats", "2", "--out", str(tmp_path), "--name", "t")
    assert result.returncode == 0, result.stderr
    results = pd.read_csv(tmp_path / "t" / "results.csv")
    assert set(results.metric) == set(TIMING_METRICS) - {FIT_SECONDS}, "nothing was trained"
    assert len(results) == 4 * 3


def _quality(run_dir: Path) -> pd.DataFrame:
    """`quality_rows` in a fixed order: a resumed run records its cells in another order."""
    kept = quality_rows(run_dir)
    return kept.sort_values(["category", "method", "seed", "metric"]).reset_index(drop=True)


def test_resume_keeps_finished_cells_and_redoes_the_inconsistent_ones(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    copy = Path(shutil.copytree(run_dir, tmp_path / "tiny"))
    manifest_path = copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["cells"] = [
        cell for cell in manifest["cells"] if cell["category"] != "washer"
    ]  # killed after results
    manifest["status"] = "running"
    manifest_path.write_text(json.dumps(manifest))
    (copy / "cells" / "l2ae" / "pin" / "seed0" / "checkpoint.safetensors").unlink()  # checkpoint lost
    result = adbench("run", "--resume", str(copy))
    assert result.returncode == 0, result.stderr
    assert "kept l2ae/sand/seed0" in result.stderr and "kept l2ae/weave/seed0" in result.stderr
    assert "kept l2ae/pin" not in result.stderr and "kept l2ae/washer" not in result.stderr
    pd.testing.assert_frame_equal(_quality(copy), _quality(run_dir))
    resumed = pd.read_csv(copy / "results.csv")
    assert not resumed.duplicated(["method", "category", "seed", "metric"]).any()
    after = json.loads(manifest_path.read_text())
    assert after["status"] == "finished" and len(after["cells"]) == 4 and len(after["resumed_at"]) == 1


def test_a_run_killed_mid_grid_and_resumed_gives_the_uninterrupted_results(tiny_run, tiny_root, tmp_path):
    run_dir, _ = tiny_run
    command = [sys.executable, "-c", "from adbench.cli import main; main()", "run", "--methods", "l2ae"]
    command += ["--budget", "smoke", "--all-categories", "--data", str(tiny_root), "--out", str(tmp_path)]
    process = subprocess.Popen(
        [*command, "--name", "killed"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    manifest_path = tmp_path / "killed" / "manifest.json"
    wait_until(
        lambda: manifest_path.exists() and bool(json.loads(manifest_path.read_text())["cells"]),
        process,
        "its first cell was recorded",
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    cells_before = len(json.loads(manifest_path.read_text())["cells"])
    assert 1 <= cells_before < 4, "the kill must land mid-grid"
    result = adbench("run", "--resume", str(tmp_path / "killed"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("kept l2ae/") == cells_before
    pd.testing.assert_frame_equal(_quality(tmp_path / "killed"), _quality(run_dir))


def test_resume_refuses_grid_options_and_folders_that_are_not_runs(tmp_path):
    mixed = adbench("run", "--resume", str(tmp_path), "--methods", "l2ae")
    assert mixed.returncode == 2 and "continues that run's own grid; drop --methods" in mixed.stderr
    missing = adbench("run", "--resume", str(tmp_path))
    assert missing.returncode == 2 and "manifest.json: not found" in missing.stderr


def test_dry_run_writes_nothing_and_plans_what_the_run_records(tiny_root, tiny_run, tmp_path):
    run_dir, _ = tiny_run
    out = tmp_path / "runs"
    result = adbench(
        *("run", "--methods", "l2ae", "--budget", "smoke", "--data", str(tiny_root), "--out", str(out)),
        *("--all-categories", "--dry-run", "--json"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == [], "a dry run writes no file"
    planned = [json.loads(line) for line in result.stdout.splitlines()]
    recorded = json.loads((run_dir / "manifest.json").read_text())["cells"]
    assert [(c["method"], c["category"], c["seed"]) for c in planned] == [
        (c["method"], c["category"], c["seed"]) for c in recorded
    ]
    for plan, cell in zip(planned, recorded, strict=True):
        assert plan["params"] == cell["params"]
        assert plan["training_budget"] == cell["training_budget"]
        assert plan["steps"] == cell["steps"] and plan["batch_size"] == cell["training_budget"]["batch_size"]
        assert plan["image_size"] == cell["params"]["image_size"]
        assert plan["patch_size"] == cell["params"]["patch_size"]
        assert plan["inference_kind"] == cell["inference_kind"]
        assert any("64 px" in departure for departure in plan["departures"]), "smoke's sizes are declared"

    table = adbench(
        *("run", "--methods", "l2ae", "--budget", "smoke", "--data", str(tiny_root)),
        *("--categories", "pin", "--dry-run", "--estimate"),
        cwd=tmp_path,
    )
    assert table.returncode == 0, table.stderr
    assert "departures from the papers" in table.stdout and "pin" in table.stdout
    assert re.search(r"estimated duration of the grid on cpu: \d+ s", table.stdout)
    # The timings take seconds per method and category: the log says so as they happen (#31 item 3).
    assert re.search(r"estimate: timing: started, 1 to do\n.*estimate: timing: done in ", table.stderr)
    assert not (tmp_path / "runs").exists()


def test_an_estimate_without_a_progress_bar_still_times_every_cell(tiny_root):
    from adbench.run.config import RunConfig
    from adbench.run.plan import plan_grid

    config = RunConfig(("l2ae",), ("pin", "sand"), tiny_root, budget="smoke")
    cells = plan_grid(config, estimate=True)
    assert sorted(cell.category for cell in cells) == ["pin", "sand"]
    assert all(cell.estimated_seconds and cell.estimated_seconds > 0 for cell in cells), cells


@pytest.mark.parametrize("waited_per_read", [0.0, 30.0])
def test_estimate_says_when_the_machine_was_contended_while_it_timed(tiny_root, monkeypatch, waited_per_read):
    """The estimate's timings are judged as the run's are (timing.MachineLoad): Linux's count of the
    seconds the threads waited for a core, here made up so that the outcome does not depend on the load."""
    from adbench.machine import timing

    reads = iter(range(1_000_000))
    monkeypatch.setattr(timing, "_waited_for_core", lambda: next(reads) * waited_per_read)
    result = adbench(
        *("run", "--methods", "l2ae", "--budget", "smoke", "--data", str(tiny_root)),
        *("--categories", "pin", "--dry-run", "--estimate"),
    )
    assert result.returncode == 0, result.stderr
    said = r"warning: the machine was contended while estimating \(l2ae/pin: (.*)"
    warning = re.search(said, result.stdout)
    if waited_per_read:
        assert warning, result.stdout
        assert "threads waited for a core" in warning[1] and "what else runs on these cores" in result.stdout
    else:
        assert warning is None and "contended" not in result.stdout
