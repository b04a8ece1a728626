import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from adbench.atomic import write_text_atomic
from adbench.report.paper import paper_rows
from adbench.report.render import COLLAPSE_MARK, CONTENDED_MARK, markdown_table
from adbench.report.sections.pixel import pixel_resolution_note
from adbench.report.sections.quality import maps_find_what_the_score_misses
from adbench.report.statistics import mean_intervals, seed_statistics
from adbench.run.folder import load_run
from adbench.run.results import read_results, results_frame
from adbench.run.samples import read_samples
from tests.helpers import adbench


def _rows(values: dict[tuple[str, str, int], float], metric="image_auroc", kinds=None):
    kinds = kinds or {}
    return results_frame(
        [
            {
                "run_id": "r",
                "method": method,
                "category": category,
                "category_kind": kinds.get(
                    category, "texture" if category in ("carpet", "sand") else "object"
                ),
                "seed": seed,
                "metric": metric,
                "value": value,
            }
            for (method, category, seed), value in values.items()
        ]
    )


def _cells(markdown: str, method: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {method} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][2:]


def test_mean_and_std_over_seeds_by_hand():
    results = _rows(
        {("a", "sand", 0): 0.6, ("a", "sand", 1): 0.8, ("a", "pin", 0): 0.5, ("a", "pin", 1): 0.9}
    )
    mean, std = seed_statistics(results, "image_auroc")
    assert mean.loc["a", "sand"] == pytest.approx(0.7) and std.loc["a", "sand"] == pytest.approx(
        np.std([0.6, 0.8], ddof=1)
    )
    # The overall mean's spread is that of the per-seed means: seed 0 → 0.55, seed 1 → 0.85.
    assert mean.loc["a", "overall_mean"] == pytest.approx(0.7)
    assert std.loc["a", "overall_mean"] == pytest.approx(np.std([0.55, 0.85], ddof=1))
    table = markdown_table(results, "image_auroc", {"a": "single-pass"})
    assert _cells(table, "a")[0] == "0.700 ± 0.141", "alone, a method is best of nothing: no bold"


def test_interval_of_the_mean_over_seeds_is_students_t_and_shown_apart_from_the_std():
    values = {("a", "sand", 0): 0.6, ("a", "sand", 1): 0.8, ("a", "sand", 2): 0.75}
    values |= {("a", "pin", 0): 0.5, ("a", "pin", 1): 0.9, ("a", "pin", 2): 0.7, ("b", "sand", 0): 0.4}
    results = _rows(values)
    low, high, how = mean_intervals(results, "image_auroc")
    for column, per_seed in {
        "sand": [0.6, 0.8, 0.75],
        "overall_mean": [0.55, 0.85, 0.725],  # per seed: the mean of sand and pin
    }.items():
        expected = stats.t.interval(0.95, 2, loc=np.mean(per_seed), scale=stats.sem(per_seed))
        assert (low.at["a", column], high.at["a", column]) == pytest.approx(expected)
    assert np.isnan(low.at["b", "sand"]), "one seed gives no interval of a mean"
    assert "3 seeds" in how and "Student's t" in how
    table = markdown_table(results, "image_auroc", {"a": "single-pass", "b": "single-pass"})
    assert _cells(table, "a")[0] == "**0.717 ± 0.104**", "the main table keeps mean ± std"
    interval_rows = table.split(how)[1]
    sand = stats.t.interval(0.95, 2, loc=np.mean([0.6, 0.8, 0.75]), scale=stats.sem([0.6, 0.8, 0.75]))
    assert f"| a | [{sand[0]:.3f}, {sand[1]:.3f}] |" in interval_rows
    assert "| b | — |" in interval_rows


def test_one_seed_shows_each_cells_own_interval():
    results = _rows({("a", "sand", 0): 0.7, ("a", "pin", 0): 0.6}).assign(
        ci_low=[0.5, 0.4], ci_high=[0.9, 0.8]
    )
    low, high, how = mean_intervals(results, "image_auroc")
    assert (low.at["a", "sand"], high.at["a", "sand"]) == (0.5, 0.9) and "bootstrap" in how
    assert np.isnan(low.at["a", "overall_mean"]), "a mean over categories has no interval from one seed"
    table = markdown_table(results, "image_auroc", {})
    assert "| a | [0.500, 0.900] | [0.400, 0.800] |\n" in table + "\n", "no columns without an interval"
    assert mean_intervals(_rows({("a", "sand", 0): 0.7}), "image_auroc") is None


def test_bold_marks_the_true_maximum_and_groups_iterative_last():
    results = _rows(
        {("it", "sand", 0): 0.9, ("sp", "sand", 0): 0.8, ("sp", "pin", 0): 0.7, ("it", "pin", 0): 0.6}
    )
    table = markdown_table(results, "image_auroc", {"it": "iterative", "sp": "single-pass"})
    assert table.index("| sp |") < table.index("| it |")
    assert _cells(table, "it")[:2] == ["**0.900**", "0.600"]
    assert _cells(table, "sp")[:2] == ["0.800", "**0.700**"]
    latency = _rows({("it", "sand", 0): 900.0, ("sp", "sand", 0): 5.0}, metric="infer_ms_per_image")
    timing = markdown_table(latency, "infer_ms_per_image", {})
    assert _cells(timing, "sp")[0] == "**5.00**", "lower is better"
    assert _cells(timing, "it")[0] == "900.00", "one precision per column: three digits of its smallest"


def test_bold_only_where_the_best_is_clearly_ahead():
    tie = _rows({("a", "sand", 0): 0.9, ("b", "sand", 0): 0.9})
    assert "**" not in markdown_table(tie, "image_auroc", {}), "a tie has no best"
    alone = _rows({("a", "sand", 0): 0.9, ("a", "pin", 0): 0.8, ("b", "pin", 0): 0.1})
    assert _cells(markdown_table(alone, "image_auroc", {}), "a")[:2] == ["0.900", "**0.800**"], (
        "a column with one method's value has no best"
    )
    # One seed: a's 0.90 lies inside b's bootstrap interval, so it is not clearly ahead; at pin it is.
    close = _rows({("a", "sand", 0): 0.9, ("b", "sand", 0): 0.85, ("a", "pin", 0): 0.9, ("b", "pin", 0): 0.6})
    close = close.assign(ci_low=[0.8, 0.7, 0.8, 0.5], ci_high=[0.97, 0.95, 0.97, 0.7])
    table = markdown_table(close, "image_auroc", {})
    assert _cells(table, "a")[:2] == ["0.900", "**0.900**"] and "**" not in " ".join(_cells(table, "b"))
    # Several seeds: the interval of the mean decides.
    seeds = {("a", "sand", s): v for s, v in enumerate([0.90, 0.91, 0.92])}
    seeds |= {("b", "sand", s): v for s, v in enumerate([0.70, 0.95, 0.80])}
    assert _cells(markdown_table(_rows(seeds), "image_auroc", {}), "a")[0] == "0.910 ± 0.010"
    seeds |= {("b", "sand", s): v for s, v in enumerate([0.70, 0.71, 0.72])}
    assert _cells(markdown_table(_rows(seeds), "image_auroc", {}), "a")[0] == "**0.910 ± 0.010**"


def test_paper_rows_only_on_mvtec_names_and_labelled():
    results = _rows(
        {
            ("cbigan", "carpet", 0): 0.5,
            ("cbigan", "screw", 0): 0.6,
            ("l2ae", "carpet", 0): 0.4,
            ("l2ae", "screw", 0): 0.3,
        }
    )
    table = markdown_table(results, "image_auroc", {"cbigan": "single-pass", "l2ae": "single-pass"})
    paper = _cells(table, "CBiGAN (paper)")
    assert paper[:2] == ["0.55", "0.58"], "Table III's carpet 0.55 and screw 0.58, at the paper's precision"
    assert paper[-1] == "0.565", "means over the shown categories only, ours"
    assert "The paper rows' means are over the 2 categories shown" in table
    assert "| AE-L2 (paper) | published |" in table and "EGBAD (paper)" not in table
    assert "selects nothing on test data" in table, "the CBiGAN rows say how the authors selected"
    # Table II's AE-L2 row is MVTec AD's (TPR + TNR) / 2 at its validation threshold: beside that metric,
    # never beside the maximum over test thresholds; CBiGAN's own row is that maximum.
    kinds = {"cbigan": "single-pass", "l2ae": "single-pass"}
    values = {key: 0.5 for key in [("cbigan", "carpet", 0), ("cbigan", "screw", 0), ("l2ae", "carpet", 0)]}
    maximum = markdown_table(
        _rows(values, "image_max_balanced_accuracy"), "image_max_balanced_accuracy", kinds
    )
    assert "AE-L2 (paper)" not in maximum and _cells(maximum, "CBiGAN (paper)")[:2] == ["0.60", "0.67"]
    at_threshold = markdown_table(
        _rows(values, "threshold_balanced_accuracy"), "threshold_balanced_accuracy", kinds
    )
    assert _cells(at_threshold, "AE-L2 (paper)")[:2] == ["0.50", "0.69"]  # carpet 0.50, screw 0.69
    assert "CBiGAN (paper)" not in at_threshold and "validation threshold" in at_threshold
    synthetic = _rows({("cbigan", "sand", 0): 0.5, ("cbigan", "pin", 0): 0.6})
    assert "(paper)" not in markdown_table(synthetic, "image_auroc", {})
    assert paper_rows("pixel_auroc", ["cbigan"], ["carpet"]).empty


def test_paper_rows_over_all_of_mvtec_show_the_published_means_at_the_papers_precision():
    from adbench.data.mvtec import OBJECTS, TEXTURES

    categories = [*TEXTURES, *OBJECTS]
    results = _rows({("cbigan", category, 0): 0.5 for category in categories})
    table = markdown_table(results, "image_auroc", {"cbigan": "single-pass"})
    published = paper_rows(
        "image_auroc", ["cbigan"], sorted(categories, key=lambda c: (c not in TEXTURES, c))
    )
    cells = _cells(table, "CBiGAN (paper)")
    assert cells[-1] == f"{published['overall_mean'].iloc[0]:.2f}", "the paper's own overall mean, as printed"
    assert all(re.fullmatch(r"\d\.\d\d", cell) for cell in cells)
    assert "recomputed" not in table


def test_dsr_table_3_rows_keep_the_papers_averages_and_precision():
    """The DSR paper's Table 3 in per cent, one decimal: DRAEM averages 98.0, DSR 98.2. The transcribed
    fractions must give those averages to the paper's precision, and print as the paper does."""
    from adbench.data.mvtec import OBJECTS, TEXTURES

    categories = [*TEXTURES, *OBJECTS]
    rows = paper_rows("image_auroc", ["draem", "dsr"], categories)
    for name, average in (("DRAEM (paper)", 98.0), ("DSR (paper)", 98.2)):
        assert round(100 * rows.loc[name, categories].mean(), 1) == average
        assert rows.loc[name, "overall_mean"] == pytest.approx(average / 100)
    # Cells the layout of the excerpt's table might have shifted: DRAEM's cable 91.8 and transistor 93.1,
    # DSR's transistor 97.8 and cable 93.8.
    assert (rows.loc["DRAEM (paper)", "cable"], rows.loc["DRAEM (paper)", "transistor"]) == (0.918, 0.931)
    assert (rows.loc["DSR (paper)", "transistor"], rows.loc["DSR (paper)", "cable"]) == (0.978, 0.938)
    table = markdown_table(
        _rows(
            {(m, c, 0): 0.5 for m in ("draem", "dsr") for c in categories},
            kinds={c: "texture" for c in TEXTURES},
        ),
        "image_auroc",
        {"draem": "single-pass", "dsr": "single-pass"},
    )
    cells = _cells(table, "DRAEM (paper)")
    assert cells[0] == "0.970" and cells[-1] == "0.980", "carpet 97.0 and the average 98.0, as printed"
    assert "DSR paper's Table 3" in table and "recomputed" in table
    # Only beside the methods the table reports.
    assert paper_rows("image_auroc", ["l2ae"], categories).index.tolist() == ["AE-L2 (paper)"]


# MVTec AD's Table 3 (the segmentation of anomalous regions), per category in the order carpet, grid,
# leather, tile, wood, bottle, cable, capsule, hazelnut, metal nut, pill, screw, toothbrush, transistor,
# zipper: the relative per-region overlap, then the ROC AUC.
_MVTEC_TABLE_3 = {
    "AE-SSIM": (
        [0.69, 0.88, 0.71, 0.04, 0.36, 0.15, 0.01, 0.09, 0.00, 0.01, 0.07, 0.03, 0.08, 0.01, 0.10],
        [0.87, 0.94, 0.78, 0.59, 0.73, 0.93, 0.82, 0.94, 0.97, 0.89, 0.91, 0.96, 0.92, 0.90, 0.88],
    ),
    "AE-L2": (
        [0.38, 0.83, 0.67, 0.23, 0.29, 0.22, 0.05, 0.11, 0.41, 0.26, 0.25, 0.34, 0.51, 0.22, 0.13],
        [0.59, 0.90, 0.75, 0.51, 0.73, 0.86, 0.86, 0.88, 0.95, 0.86, 0.85, 0.96, 0.93, 0.86, 0.77],
    ),
    "AnoGAN": (
        [0.34, 0.04, 0.34, 0.08, 0.14, 0.05, 0.01, 0.04, 0.02, 0.00, 0.17, 0.01, 0.07, 0.08, 0.01],
        [0.54, 0.58, 0.64, 0.50, 0.62, 0.86, 0.78, 0.84, 0.87, 0.76, 0.87, 0.80, 0.90, 0.80, 0.78],
    ),
}
# The UTAD paper's Table 1, its two rows of means (IoU, AUROC), in its order of columns.
_UTAD_NAMES = ["AnoGAN", "AVID", "AE-L2", "AE-SSIM", "LSA", "AD-VAE", "γ-VAE", "Uninformed Students"]
_UTAD_NAMES += ["CAVGA", "UTAD"]
_UTAD_IOU_MEANS = [0.09, 0.26, 0.33, 0.19, 0.37, 0.20, 0.39, 0.24, 0.47, 0.53]
_UTAD_AUROC_MEANS = [0.74, 0.78, 0.82, 0.87, 0.79, 0.86, 0.86, 0.87, 0.89, 0.90]


def test_utad_table_1_iou_means_are_the_papers_own_but_cavgas():
    """Every row of the UTAD paper's Table 1 is shown, whatever the run's methods; the means of the 15
    transcribed IoUs give the printed means to two decimals, except CAVGA's: its values average 0.4547
    while the paper prints 0.47 (and says UTAD leads CAVGA by 6%), a fault of the paper, kept as printed."""
    from adbench.data.mvtec import OBJECTS, TEXTURES

    categories = [*TEXTURES, *OBJECTS]
    rows = paper_rows("pixel_iou", ["dsr"], categories)
    assert rows.index.tolist() == [f"{name} (paper)" for name in _UTAD_NAMES]
    assert rows["overall_mean"].tolist() == _UTAD_IOU_MEANS, "the printed means, over all 15"
    for name, printed in zip(_UTAD_NAMES, _UTAD_IOU_MEANS, strict=True):
        mean = rows.loc[f"{name} (paper)", categories].mean()
        if name == "CAVGA":
            assert round(15 * mean, 2) == 6.82 and printed == 0.47
        else:
            assert abs(mean - printed) <= 0.005 and round(mean, 2) == printed, name
    cells = {("UTAD", "grid"): 0.89, ("AE-SSIM", "leather"): 0.34, ("AnoGAN", "metal_nut"): 0.00}
    cells |= {("γ-VAE", "hazelnut"): 0.63, ("CAVGA", "zipper"): 0.16, ("Uninformed Students", "carpet"): 0.50}
    for (name, category), value in cells.items():
        assert rows.loc[f"{name} (paper)", category] == value, (name, category)


def test_utad_table_1_columns_from_mvtec_ad_and_its_auroc_is_pixel_level():
    """The two "[12]" columns, unlabelled in the extraction, are MVTec AD's AE (L2) and AE (SSIM)
    overlaps (UTAD's AE-SSIM leather reads 0.34, MVTec AD's 0.71); its AUROC means are the means of
    MVTec AD's segmentation ROC AUCs, so they go beside pixel AUROC, only over all 15 categories."""
    from adbench.data.mvtec import OBJECTS, TEXTURES

    categories = [*TEXTURES, *OBJECTS]
    iou = paper_rows("pixel_iou", ["l2ae"], categories)
    auroc = paper_rows("pixel_auroc", ["l2ae"], categories)
    assert auroc["overall_mean"].tolist() == _UTAD_AUROC_MEANS
    assert auroc[[*categories, "textures_mean", "objects_mean"]].isna().all().all()
    for name, (overlaps, aucs) in _MVTEC_TABLE_3.items():
        pairs = zip(categories, overlaps, strict=True)
        differ = {c: v for c, v in pairs if iou.at[f"{name} (paper)", c] != v}
        assert differ == ({"leather": 0.71} if name == "AE-SSIM" else {}), name
        assert round(sum(aucs) / 15, 2) == auroc.at[f"{name} (paper)", "overall_mean"], name
    assert paper_rows("pixel_auroc", ["l2ae"], categories[:14]).empty, "no mean over 14 to show"
    assert "AE-L2 (paper)" not in paper_rows("image_auroc", ["dsr"], categories).index


def test_utad_table_1_rows_beside_pixel_iou_and_pixel_auroc_with_the_thresholds_footnote():
    from adbench.data.mvtec import OBJECTS, TEXTURES

    kinds, methods = {c: "texture" for c in TEXTURES}, {"l2ae": "single-pass", "dsr": "single-pass"}
    some = _rows({(m, c, 0): 0.5 for m in methods for c in ("carpet", "screw")}, "pixel_iou", kinds)
    table = markdown_table(some, "pixel_iou", methods)
    assert _cells(table, "AE-L2 (paper)")[:2] == ["0.38", "0.34"], "carpet and screw, as printed"
    assert "| UTAD (paper) | published |" in table and "| γ-VAE (paper) | published |" in table
    assert "validation threshold" in table and "eq. 9" in table and "per-region overlap" in table
    assert "The paper rows' means are over the 2 categories shown" in table
    image = markdown_table(_rows({("l2ae", "carpet", 0): 0.5}), "image_auroc", methods)
    assert "| AE-L2 (paper) |" in image and "UTAD (paper)" not in image, "not beside image AUROC"
    categories = [*TEXTURES, *OBJECTS]
    every = {(m, c, 0): 0.5 for m in methods for c in categories}
    table = markdown_table(_rows(every, "pixel_iou", kinds), "pixel_iou", methods)
    cells = _cells(table, "AE-L2 (paper)")
    assert cells[0] == "0.38" and cells[15] == "0.480", "textures mean recomputed, at the report's precision"
    assert cells[-1] == "0.33" and _cells(table, "CAVGA (paper)")[-1] == "0.47", "the printed means"
    assert "categories shown" not in table
    auroc = markdown_table(_rows(every, "pixel_auroc", kinds), "pixel_auroc", methods)
    assert _cells(auroc, "AE-L2 (paper)") == ["—"] * 17 + ["0.82"]
    assert "pixel-level" in auroc and "UTAD (paper)" in auroc
    partial = _rows({(m, c, 0): 0.5 for m in methods for c in ("carpet", "screw")}, "pixel_auroc", kinds)
    assert "(paper)" not in markdown_table(partial, "pixel_auroc", methods), "the paper has no such mean"
    synthetic = _rows({("l2ae", "sand", 0): 0.5, ("l2ae", "pin", 0): 0.6}, "pixel_iou")
    assert "(paper)" not in markdown_table(synthetic, "pixel_iou", {})


@pytest.fixture(scope="module")
def report(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = adbench(
        "run",
        "--methods",
        "l2ae,anogan",
        "--budget",
        "smoke",
        "--categories",
        "sand,pin",
        "--seeds",
        "0,1",
        "--repeats",
        "1",
        "--data",
        str(tiny_root),
        "--out",
        str(out),
        "--name",
        "run",
    )
    assert result.returncode == 0, result.stderr
    # Counting contended timings keeps the ratio lines whatever else the test machine is doing.
    written = adbench(
        "report", str(out / "run"), "--out", str(out / "reports" / "tiny.md"), "--contended-timings"
    )
    assert written.returncode == 0, written.stderr
    return out / "run", out / "reports" / "tiny.md"


def test_every_number_in_the_report_equals_the_results_table(report):
    run_dir, path = report
    markdown = path.read_text()
    results = read_results(run_dir)
    sections = {
        "image_max_balanced_accuracy": "## Maximum balanced accuracy",
        "image_auroc": "## Image AUROC",
        "pixel_aupro_0.3": "### Pixel AU-PRO",
        "infer_ms_per_image": "### Inference time per image",
    }
    checked = 0
    for metric, heading in sections.items():
        block = markdown.split(heading, 1)[1].split("\n#", 1)[0]
        for method in ("l2ae", "anogan"):
            cells = _cells(block, method)
            rows = results[(results.metric == metric) & (results.method == method)]
            for column, category in enumerate(("sand", "pin")):
                values = rows[rows.category == category]["value"]
                # A cell that failed the input-sensitivity check, or a timing taken while the machine was
                # busy, carries its mark after the number.
                pattern = rf"\**([\d.,]+) ± ([\d.,]+)\**(?: {COLLAPSE_MARK})?(?: {CONTENDED_MARK})?"
                mean, std = re.fullmatch(pattern, cells[column]).groups()
                decimals = len(mean.split(".")[1]) if "." in mean else 0
                assert float(mean.replace(",", "")) == pytest.approx(values.mean(), abs=0.6 * 10**-decimals)
                assert float(std.replace(",", "")) == pytest.approx(
                    values.std(ddof=1), abs=0.6 * 10**-decimals
                )
                checked += 1
    assert checked == 16
    assert "anogan takes" in markdown
    assert not re.search(r"^\| [^|]* \(paper\) \|", markdown, re.MULTILINE), "synthetic data: no paper rows"


def test_report_says_what_its_tables_hold(report):
    run_dir, path = report
    markdown = path.read_text()
    assert "> **Smoke budget** (run)" in markdown.split("## ", 1)[0], "the banner comes before any table"
    for heading in (
        "## True positive rate at the validation threshold",
        "## True negative rate at the validation threshold",
        "### Pixel IoU of the segmentation at the validation threshold",
        "### Inference time per image, 95th percentile (ms)",
    ):
        assert heading in markdown
    # Two seeds: each table is followed by the interval of the mean, recomputed here from the results.
    block = markdown.split("## Image AUROC", 1)[1].split("\n#", 1)[0]
    assert "*95 % interval of the mean over 2 seeds (Student's t" in block
    values = read_results(run_dir).query(
        "metric == 'image_auroc' and method == 'l2ae' and category == 'sand'"
    )
    low, high = stats.t.interval(0.95, 1, loc=values.value.mean(), scale=stats.sem(values.value))
    interval_rows = block.split("*95 % interval of the mean")[1]
    assert f"| l2ae | [{low:.3f}, {high:.3f}] |" in interval_rows
    manifest = json.loads((run_dir / "manifest.json").read_text())
    steps = {cell["steps"] for cell in manifest["cells"] if cell["method"] == "l2ae"}
    assert f"  - l2ae: {steps.pop():,} steps at batch " in markdown and not steps


def test_tables_are_also_written_as_latex_and_csv_with_the_same_numbers(report):
    run_dir, path = report
    results = read_results(run_dir)
    tables = pd.read_csv(path.parent / "tiny-tables.csv")
    assert list(tables.columns) == ["table", "metric", "method", "inference", "column", "mean", "std",
                                    "ci_low", "ci_high", "best"]  # fmt: skip
    row = tables.query("metric == 'image_auroc' and method == 'l2ae' and column == 'sand'").iloc[0]
    values = results.query("metric == 'image_auroc' and method == 'l2ae' and category == 'sand'")["value"]
    assert row["mean"] == pytest.approx(values.mean()) and row["std"] == pytest.approx(values.std(ddof=1))
    low, high = stats.t.interval(0.95, 1, loc=values.mean(), scale=stats.sem(values))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    latex = (path.parent / "tiny-tables.tex").read_text()
    assert latex.count(r"\toprule") == latex.count(r"\bottomrule") == tables["table"].nunique()
    markdown_cell = _cells(path.read_text().split("## Image AUROC", 1)[1], "l2ae")[0].strip("*")
    latex_block = latex.split(r"\caption{Image AUROC (the paper's Table III)}", 1)[1]
    latex_row = next(line for line in latex_block.splitlines() if line.startswith("l2ae &"))
    assert markdown_cell.replace("±", r"$\pm$") in latex_row, "the same text as the markdown"


def test_report_without_out_goes_into_the_run_folder(report, tmp_path):
    run_dir = shutil.copytree(report[0], tmp_path / "run")
    result = adbench("report", str(run_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (run_dir / "report.md").is_file() and (run_dir / "report-heatmap.png").is_file()
    assert not (tmp_path / "reports").exists(), "nothing in the folder the command ran from"


def test_report_links_nonempty_figures_and_records_provenance(report):
    run_dir, path = report
    markdown = path.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(links) == 7
    assert {"tiny-samples-sand.png", "tiny-samples-pin.png", "tiny-critical-difference.png"} <= set(links)
    assert (path.parent / "tiny-comparisons.csv").is_file()
    for link in links:
        figure = path.parent / link
        assert figure.stat().st_size > 1000 and figure.read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["environment"]["git_commit"] is None or manifest["environment"]["git_commit"] in markdown
    assert "budget `smoke`, seeds [0, 1]" in markdown and "torch 2." in markdown
    environment = manifest["environment"]
    assert f"torch threads, CPU {environment['cpu_model']}, {environment['platform']}" in markdown


def test_run_keeps_the_same_few_samples_for_every_method(report):
    run_dir, _ = report
    for category in ("sand", "pin"):
        cells = {method: run_dir / "cells" / method / category / "seed0" for method in ("l2ae", "anogan")}
        kept = {method: read_samples(cell / "samples.npz") for method, cell in cells.items()}
        assert list(kept["l2ae"].names) == list(kept["anogan"].names)
        scores = pd.read_csv(cells["l2ae"] / "scores.csv").set_index("image")
        assert list(kept["l2ae"].labels) == list(scores.loc[kept["l2ae"].names, "label"])
        assert 0 in kept["l2ae"].labels and 1 in kept["l2ae"].labels
        for samples in kept.values():
            assert samples.reconstructions.shape[0] == len(samples.names)
            assert samples.reconstructions.shape[2:] == samples.images.shape[2:] == samples.maps.shape[1:]


def test_report_never_overwrites_and_names_bad_runs(report, tmp_path):
    run_dir, path = report
    again = adbench("report", str(run_dir), "--out", str(path))
    assert again.returncode == 2 and "never overwritten" in again.stderr
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "results.parquet").write_bytes(b"garbage")
    bad = adbench("report", str(broken), "--out", str(tmp_path / "r.md"))
    assert (
        bad.returncode == 2 and "unreadable results table" in bad.stderr and not (tmp_path / "r.md").exists()
    )


def test_runs_holding_the_same_cell_are_not_combined(report, tmp_path):
    """The same seed twice would be counted as two seeds in every mean ± std."""
    run_dir, _ = report
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    result = adbench("report", str(run_dir), str(copy), "--out", str(tmp_path / "r.md"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{copy}: " in result.stderr and f"/seed0 is also in {run_dir}" in result.stderr, result.stderr
    assert not (tmp_path / "r.md").exists()


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o044, "readable by others, as a plain open() would make it"


def test_f1_max_is_labelled_an_oracle_and_the_resolution_is_stated(report):
    run_dir, path = report
    markdown = path.read_text()
    assert "## Image F1-max (oracle: the threshold is chosen on the test labels" in markdown
    assert "### Pixel F1-max (oracle: the threshold is chosen on the test labels" in markdown
    assert "Pixel metrics computed at the ground-truth masks' own size" in markdown
    assert "pixel metrics at resolution `native`" in markdown
    results = read_results(run_dir)
    for metric, heading in (
        ("pixel_f1_max", "### Pixel F1-max"),
        ("pixel_aupro_0.05", "### Pixel AU-PRO (FPR up to 0.05"),
    ):
        block = markdown.split(heading, 1)[1].split("\n#", 1)[0]
        rows = results[(results.metric == metric) & (results.method == "l2ae") & (results.category == "sand")]
        assert _cells(block, "l2ae")[0].strip("*").startswith(f"{rows['value'].mean():.3f} ± ")


def test_runs_scored_at_different_resolutions_are_called_incomparable(report, tmp_path):
    run_dir, _ = report
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["config"]["pixel_resolution"]  # a run from before the option: input size
    (old / "manifest.json").write_text(json.dumps(manifest))
    runs = [load_run(run_dir), load_run(old)]
    note = pixel_resolution_note(runs)
    assert "different resolutions" in note and "run: native" in note and "old: input" in note
    assert "each detector's input size" in pixel_resolution_note(runs[1:])


def test_per_defect_type_auroc_equals_a_recomputation_from_the_stored_scores(report):
    run_dir, path = report
    markdown = path.read_text()
    block = markdown.split("## Image AUROC per defect type", 1)[1].split("\n## ", 1)[0]
    pin = block.split("### pin", 1)[1].split("\n### ", 1)[0]
    header = next(line for line in pin.splitlines() if line.startswith("| method |"))
    defects = [cell.strip() for cell in header.strip("|").split("|")][1:]
    assert len(defects) == 2
    for method in ("l2ae", "anogan"):
        line = next(line for line in pin.splitlines() if line.startswith(f"| {method} |"))
        printed = [cell.strip() for cell in line.strip().strip("|").split("|")][1:]
        for defect, text in zip(defects, printed, strict=True):
            values = []
            for seed in (0, 1):
                scores = pd.read_csv(run_dir / "cells" / method / "pin" / f"seed{seed}" / "scores.csv")
                rows = scores[(scores.label == 0) | (scores.defect == defect)]
                values.append(roc_auc_score(rows.label, rows.score))
            shown = text.removesuffix(f" {COLLAPSE_MARK}").strip("*")  # the sensitivity check's mark
            assert float(shown) == pytest.approx(np.mean(values), abs=5e-4), (method, defect)


def test_the_comparison_metric_is_chosen_and_an_absent_one_is_one_line(report, tmp_path):
    run_dir, _ = report
    chosen = adbench(
        "report", str(run_dir), "--out", str(tmp_path / "a.md"), "--comparison-metric", "pixel_auroc"
    )
    assert chosen.returncode == 0, chosen.stderr
    assert "## Method comparisons: `pixel_auroc`" in (tmp_path / "a.md").read_text()
    assert set(pd.read_csv(tmp_path / "a-comparisons.csv")["metric"]) == {"pixel_auroc"}
    absent = adbench("report", str(run_dir), "--out", str(tmp_path / "b.md"), "--comparison-metric", "nope")
    assert absent.returncode == 2 and "not in these runs' results" in absent.stderr
    assert not (tmp_path / "b.md").exists()


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (
            "running",
            "still running): these tables hold its 1 finished cell(s) only. Report again when it ends.",
        ),
        ("failed: disk full", "stopped: failed: disk full): these tables hold its 1 finished cell(s) only. "),
        ("finished", None),
    ],
)
def test_a_report_of_an_unfinished_run_says_so_at_its_top(one_cell_run, tmp_path, status, said):
    run_dir = shutil.copytree(one_cell_run, tmp_path / "one")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps(manifest | {"status": status}))
    written = adbench("report", str(run_dir), "--out", str(tmp_path / "r.md"))
    assert written.returncode == 0, written.stderr
    top = (tmp_path / "r.md").read_text().split("\n## ", 1)[0]
    if said is None:
        assert "Unfinished run" not in top
    else:
        assert f"> **Unfinished run** (one, {said}" in top
        assert ("adbench run --resume" in top) == (status != "running")


def test_an_image_auroc_below_chance_beside_maps_that_find_the_defects_is_explained():
    rows = [
        {"method": "l2ae", "category": category, "seed": seed, "metric": metric, "value": value}
        for category, image, pixel in (("sand", 0.42, 0.97), ("pin", 0.45, 0.70), ("weave", 0.80, 0.99))
        for seed in (0, 1)
        for metric, value in (("image_auroc", image), ("pixel_auroc", pixel))
    ]
    lines = maps_find_what_the_score_misses(pd.DataFrame(rows))
    assert len(lines) == 2 and lines[0] == "", "sand only: pin's maps miss too, weave's score is fine"
    assert lines[1].startswith(
        "- l2ae on sand: image AUROC 0.420 although its maps find the defects (pixel AUROC 0.970)"
    )
