import json

import pandas as pd
import pytest

from adbench.errors import AdbenchError
from adbench.report.gate import read_baselines, regressions
from adbench.run.results import read_results, results_frame, write_results
from tests.helpers import adbench, one_line


def _run(tmp_path, name, changes=None, drop=None, budget="smoke", kernels=None, cpu_vendor=None):
    """A run folder with a hand-made results table (2 methods × 2 categories × 2 seeds) and the manifest
    config that says how it was made."""
    rows = []
    for method, base in (("l2ae", 0.80), ("anogan", 0.60)):
        for category, kind in (("sand", "texture"), ("pin", "object")):
            for seed in (0, 1):
                for metric, value in (
                    ("image_auroc", base + 0.01 * seed),
                    ("infer_ms_per_image", 5.0 + seed),
                ):
                    rows.append(
                        {
                            "run_id": name,
                            "method": method,
                            "category": category,
                            "category_kind": kind,
                            "seed": seed,
                            "metric": metric,
                            "value": value + (changes or {}).get((method, category, metric), 0.0),
                        }
                    )
    frame = results_frame(rows)
    if drop is not None:
        frame = frame[~((frame.method == drop[0]) & (frame.category == drop[1]))]
    run_dir = tmp_path / name
    run_dir.mkdir()
    write_results(run_dir, frame)
    config = {"budget": budget, "seeds": [0, 1], "data": None, "pixel_resolution": "native"}
    manifest = {"config": config, "cells": []}
    environment = {"kernels": kernels, "cpu_vendor": cpu_vendor}
    manifest["environment"] = {key: value for key, value in environment.items() if value is not None}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


def test_baseline_holds_seed_means_of_quality_metrics_only(tmp_path):
    run_dir = _run(tmp_path, "base")
    baseline = tmp_path / "baselines" / "smoke.json"
    result = adbench("compare", str(run_dir), "--baseline", str(baseline), "--update")
    assert result.returncode == 0, result.stderr
    (written,) = read_baselines(baseline)
    entries = written.entries
    assert set(entries.metric) == {"image_auroc"}, "timings depend on the machine and are not gated"
    l2ae_sand = entries[(entries.method == "l2ae") & (entries.category == "sand")]["value"].item()
    assert l2ae_sand == pytest.approx(0.805)  # mean of seeds 0.80 and 0.81
    assert written.runs == ["base"]


def test_gate_passes_an_unchanged_or_better_run_and_fails_a_drop_or_a_missing_row(tmp_path):
    baseline = tmp_path / "smoke.json"
    assert (
        adbench("compare", str(_run(tmp_path, "base")), "--baseline", str(baseline), "--update").returncode
        == 0
    )

    same = adbench("compare", str(_run(tmp_path, "same")), "--baseline", str(baseline))
    assert same.returncode == 0 and "no regression" in same.stdout
    better = _run(
        tmp_path, "better", {("l2ae", "pin", "image_auroc"): 0.1, ("l2ae", "pin", "infer_ms_per_image"): 99}
    )
    assert adbench("compare", str(better), "--baseline", str(baseline)).returncode == 0

    small = _run(tmp_path, "small", {("l2ae", "pin", "image_auroc"): -0.015})
    assert adbench("compare", str(small), "--baseline", str(baseline), "--tolerance", "0.02").returncode == 0
    dropped = adbench("compare", str(small), "--baseline", str(baseline), "--tolerance", "0.01")
    assert dropped.returncode == 1
    assert "l2ae" in dropped.stdout and "pin" in dropped.stdout and "-0.0150" in dropped.stdout

    missing = adbench(
        "compare", str(_run(tmp_path, "missing", drop=("anogan", "sand"))), "--baseline", str(baseline)
    )
    assert missing.returncode == 1 and "missing" in missing.stdout and "anogan" in missing.stdout


def test_regressions_lists_exactly_the_failing_entries(tmp_path):
    baseline = pd.DataFrame(
        {
            "method": ["a", "a", "b"],
            "category": ["x", "y", "x"],
            "metric": ["image_auroc"] * 3,
            "value": [0.9, 0.9, 0.9],
        }
    )
    current = results_frame(
        [
            {
                "run_id": "r",
                "method": "a",
                "category": "x",
                "category_kind": "texture",
                "seed": 0,
                "metric": "image_auroc",
                "value": 0.85,
            },
            {
                "run_id": "r",
                "method": "a",
                "category": "y",
                "category_kind": "object",
                "seed": 0,
                "metric": "image_auroc",
                "value": 0.89,
            },
        ]
    )
    failing = regressions(current, baseline, tolerance=0.02)
    assert failing[["method", "category"]].values.tolist() == [["a", "x"], ["b", "x"]]
    assert failing["change"].iloc[0] == pytest.approx(-0.05) and pd.isna(failing["current"].iloc[1])


def test_unreadable_baseline_is_one_line(tmp_path):
    run_dir = _run(tmp_path, "base")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = adbench("compare", str(run_dir), "--baseline", str(bad))
    assert result.returncode == 2 and "not an adbench baseline" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    absent = adbench("compare", str(run_dir), "--baseline", str(tmp_path / "none.json"))
    assert absent.returncode == 2 and "--update" in absent.stderr


def test_an_undefined_metric_is_left_out_of_the_baseline_and_missing_when_it_becomes_undefined(tmp_path):
    run_dir = _run(tmp_path, "base")
    results = pd.read_parquet(run_dir / "results.parquet")
    undefined = results[results.metric == "image_auroc"].assign(metric="pixel_aupimo", value=float("nan"))
    undefined.loc[undefined.method == "l2ae", "value"] = 0.4  # defined for one method only
    write_results(run_dir, results_frame(pd.concat([results, undefined]).to_dict("records")))
    baseline = tmp_path / "smoke.json"
    assert adbench("compare", str(run_dir), "--baseline", str(baseline), "--update").returncode == 0
    (written,) = read_baselines(baseline)
    entries = written.entries
    assert set(entries[entries.metric == "pixel_aupimo"].method) == {"l2ae"}
    assert adbench("compare", str(run_dir), "--baseline", str(baseline)).returncode == 0

    later = _run(tmp_path, "later")  # pixel_aupimo absent (undefined) for l2ae too
    failed = adbench("compare", str(later), "--baseline", str(baseline))
    assert failed.returncode == 1 and "pixel_aupimo" in failed.stdout and "missing" in failed.stdout


def test_compare_ci_passes_a_drop_within_the_runs_interval_and_fails_one_beyond_it(tmp_path):
    baseline = tmp_path / "smoke.json"
    assert (
        adbench("compare", str(_run(tmp_path, "base")), "--baseline", str(baseline), "--update").returncode
        == 0
    )

    def with_interval(name, drop, upper_margin):
        run_dir = _run(tmp_path, name, {("l2ae", "pin", "image_auroc"): -drop})
        results = pd.read_parquet(run_dir / "results.parquet")
        quality = results.metric == "image_auroc"
        results.loc[quality, "ci_low"] = results.loc[quality, "value"] - 0.1
        results.loc[quality, "ci_high"] = results.loc[quality, "value"] + upper_margin
        write_results(run_dir, results)
        return run_dir

    noisy = with_interval("noisy", drop=0.05, upper_margin=0.1)  # the baseline 0.805 is inside 0.755..0.855
    assert adbench("compare", str(noisy), "--baseline", str(baseline)).returncode == 1, "default mode: a drop"
    within = adbench("compare", str(noisy), "--baseline", str(baseline), "--ci")
    assert within.returncode == 0 and "no baseline value above" in within.stdout
    dropped = with_interval("dropped", drop=0.05, upper_margin=0.01)  # upper bound 0.765 < 0.805
    beyond = adbench("compare", str(dropped), "--baseline", str(baseline), "--ci")
    assert beyond.returncode == 1 and "l2ae" in beyond.stdout and "upper confidence bound" in beyond.stdout
    tolerated = adbench("compare", str(dropped), "--baseline", str(baseline), "--ci", "--tolerance", "0.05")
    assert tolerated.returncode == 0, "0.04 above the bound is within a tolerance of 0.05"


def test_compare_refuses_a_run_made_otherwise_and_exact_is_two_sided(tmp_path):
    baseline = tmp_path / "smoke.json"
    assert (
        adbench("compare", str(_run(tmp_path, "base")), "--baseline", str(baseline), "--update").returncode
        == 0
    )
    assert read_baselines(baseline)[0].protocol == {
        "budget": "smoke",
        "dataset": "built-in synthetic",
        "seeds": [0, 1],
        "pixel_resolution": "native",
        "kernels": "native",  # a run made before kernels were recorded used the machine's own
    }
    other = adbench("compare", str(_run(tmp_path, "other", budget="default")), "--baseline", str(baseline))
    assert other.returncode == 2
    assert f"{tmp_path / 'other'}: budget 'default', but {baseline} was made with 'smoke'" in one_line(
        other.stderr
    )
    portable_run = _run(tmp_path, "portable", kernels="portable")
    portable = adbench("compare", str(portable_run), "--baseline", str(baseline))
    assert portable.returncode == 2
    assert (
        f"{tmp_path / 'portable'}: kernels 'portable', but {baseline} was made with 'native'; compare a run "
        "made like it (ADBENCH_PORTABLE_KERNELS=1 selects portable kernels)" in one_line(portable.stderr)
    )
    same_kernels = _run(tmp_path, "same-kernels", kernels="native")
    assert adbench("compare", str(same_kernels), "--baseline", str(baseline)).returncode == 0

    better = _run(tmp_path, "better", {("l2ae", "pin", "image_auroc"): 0.1}, drop=("anogan", "sand"))
    assert adbench("compare", str(better), "--baseline", str(baseline)).returncode == 1, "anogan/sand missing"
    exact = adbench("compare", str(better), "--baseline", str(baseline), "--exact", "--tolerance", "0.01")
    assert exact.returncode == 1 and "+0.1000" in exact.stdout, "an improvement is a change too"
    assert "1 metric(s) changed by more than 0.01; 1 missing from the run" in " ".join(exact.stdout.split())
    same = adbench("compare", str(_run(tmp_path, "same")), "--baseline", str(baseline), "--exact")
    assert same.returncode == 0 and "every baseline metric within 0.0" in same.stdout


def test_a_run_of_fewer_categories_reports_the_others_as_not_run_apart_from_drops(tmp_path):
    baseline = tmp_path / "smoke.json"
    assert (
        adbench("compare", str(_run(tmp_path, "base")), "--baseline", str(baseline), "--update").returncode
        == 0
    )
    pin_only = _run(tmp_path, "pin-only", {("l2ae", "pin", "image_auroc"): -0.1})
    table = read_results(pin_only)
    write_results(pin_only, table[table.category == "pin"])
    result = adbench("compare", str(pin_only), "--baseline", str(baseline))
    assert result.returncode == 1, "pin's drop still fails"
    assert (
        "not run here, so not compared: 2 cell(s) of the baseline (anogan/sand, l2ae/sand)" in result.stdout
    )
    assert "1 metric(s) dropped by more than 0.02; 0 missing from the run" in result.stdout

    pin_unchanged = _run(tmp_path, "pin-unchanged")
    write_results(pin_unchanged, read_results(pin_unchanged)[lambda table: table.category == "pin"])
    passed = adbench("compare", str(pin_unchanged), "--baseline", str(baseline))
    assert passed.returncode == 0 and "no regression beyond 0.02" in passed.stdout

    other = _run(tmp_path, "other")
    write_results(other, read_results(other).assign(category="bolt"))
    nothing = adbench("compare", str(other), "--baseline", str(baseline))
    assert nothing.returncode == 2
    assert (
        one_line(nothing.stderr)
        == f"error: {other}: runs no method on any category of {baseline}, so nothing was compared"
    )


def test_a_baseline_per_cpu_vendor_compares_each_run_with_its_own_vendors(tmp_path):
    baseline = tmp_path / "smoke.json"
    intel = _run(tmp_path, "intel", cpu_vendor="GenuineIntel")
    written = adbench("compare", str(intel), "--baseline", str(baseline), "--update")
    assert written.returncode == 0 and "(for GenuineIntel CPUs)" in written.stdout

    amd = _run(tmp_path, "amd", {("l2ae", "pin", "image_auroc"): 0.1}, cpu_vendor="AuthenticAMD")
    refused = adbench("compare", str(amd), "--baseline", str(baseline))
    assert refused.returncode == 2
    assert (
        f"{amd}: made on CPU vendor AuthenticAMD, but {baseline} holds baselines for GenuineIntel only"
        in one_line(refused.stderr)
    )
    added = adbench("compare", str(amd), "--baseline", str(baseline), "--update")
    assert added.returncode == 0
    assert "kept the GenuineIntel baseline (intel) as it was" in " ".join(added.stdout.split())
    assert [b.cpu_vendor for b in read_baselines(baseline)] == ["AuthenticAMD", "GenuineIntel"]

    assert adbench("compare", str(intel), "--baseline", str(baseline)).returncode == 0
    assert adbench("compare", str(amd), "--baseline", str(baseline)).returncode == 0
    # Intel's numbers on an AMD CPU: 0.1 below the AMD baseline, which is the one compared
    amd_as_intel = _run(tmp_path, "amd-as-intel", cpu_vendor="AuthenticAMD")
    dropped = adbench("compare", str(amd_as_intel), "--baseline", str(baseline))
    assert dropped.returncode == 1 and "-0.1000" in dropped.stdout

    otherwise = _run(tmp_path, "amd-default", budget="default", cpu_vendor="AuthenticAMD")
    replaced = adbench("compare", str(otherwise), "--baseline", str(baseline), "--update")
    assert "dropped the GenuineIntel baseline (intel): made otherwise" in " ".join(replaced.stdout.split())
    assert [b.runs for b in read_baselines(baseline)] == [["amd-default"]]

    intel_default = _run(tmp_path, "intel-default", budget="default", cpu_vendor="GenuineIntel")
    assert adbench("compare", str(intel_default), "--baseline", str(baseline), "--update").returncode == 0
    assert len(read_baselines(baseline)) == 2
    old = _run(tmp_path, "old", budget="default")  # made before the vendor was recorded
    unrecorded = adbench("compare", str(old), "--baseline", str(baseline), "--update")
    assert "stands for every vendor" in " ".join(unrecorded.stdout.split())
    (alone,) = read_baselines(baseline)
    assert alone.cpu_vendor is None and alone.runs == ["old"]


def test_a_single_baseline_without_a_vendor_compares_a_run_of_any_vendor(tmp_path):
    baseline = tmp_path / "smoke.json"
    entries = [
        {"method": "l2ae", "category": "pin", "metric": "image_auroc", "value": 0.85},  # above the run's
        {"method": "anogan", "category": "pin", "metric": "image_auroc", "value": 0.6},
    ]
    baseline.write_text(json.dumps({"format": 1, "runs": ["old"], "entries": entries}))
    for vendor in ("GenuineIntel", "AuthenticAMD"):
        result = adbench(
            "compare", str(_run(tmp_path, vendor, cpu_vendor=vendor)), "--baseline", str(baseline)
        )
        assert result.returncode == 1 and "-0.0450" in result.stdout, "l2ae/pin: 0.805 against 0.85"


@pytest.mark.parametrize(
    ("vendors", "message"),
    [
        (["GenuineIntel", "GenuineIntel"], "need one CPU vendor each"),
        (["GenuineIntel", None], "need one"),
        (["GenuineIntel", ["AuthenticAMD"]], 'baseline 1: cpu_vendor is ["AuthenticAMD"], not a CPU vendor'),
    ],
)
def test_baselines_of_one_vendor_twice_are_refused(tmp_path, vendors, message):
    baseline = tmp_path / "smoke.json"
    entry = {"method": "l2ae", "category": "pin", "metric": "image_auroc", "value": 0.8}
    sets = [
        {"runs": ["r"], "protocol": {} if v is None else {"cpu_vendor": v}, "entries": [entry]}
        for v in vendors
    ]
    baseline.write_text(json.dumps({"format": 2, "baselines": sets}))
    with pytest.raises(AdbenchError) as raised:
        read_baselines(baseline)
    assert str(raised.value).startswith(f"{baseline}: not an adbench baseline (") and message in str(
        raised.value
    )
