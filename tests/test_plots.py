"""The report's figures: sized from their grid, labelled in words, every seed shown, one style for all."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from adbench.data import mvtec
from adbench.evaluation.metrics.catalogue import METRICS
from adbench.report import plots
from adbench.report.tables import MEAN_COLUMNS
from adbench.run.results import results_frame
from adbench.run.samples import Samples

TEXTURES, OBJECTS = list(mvtec.TEXTURES), list(mvtec.OBJECTS)
# The results table's identifiers: metric names and the group-mean columns (category names are names).
IDENTIFIERS = [*METRICS, *MEAN_COLUMNS]


@pytest.fixture
def texts(monkeypatch):
    """Every text a saved figure shows: titles, axis and tick labels, colour bars, legends, annotations."""
    shown: list[list[str]] = []
    save = plots._save

    def recording(figure, path):
        found = [figure._suptitle.get_text()] if figure._suptitle else []
        for axes in figure.axes:
            found += [axes.get_title(), axes.get_xlabel(), axes.get_ylabel()]
            found += [t.get_text() for t in axes.get_xticklabels() + axes.get_yticklabels() + axes.texts]
            if axes.get_legend():
                found += [t.get_text() for t in axes.get_legend().get_texts()]
        shown.append([text for text in found if text])
        return save(figure, path)

    monkeypatch.setattr(plots, "_save", recording)
    return shown


def _results(methods: list[str], categories: list[str], seeds=(0,)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {
            "run_id": "r",
            "method": method,
            "category": category,
            "category_kind": "texture" if category in TEXTURES else "object",
            "seed": seed,
            "metric": metric,
            "value": rng.uniform(0.5, 1.0) if metric == "image_auroc" else rng.uniform(1, 900),
        }
        for method in methods
        for category in categories
        for seed in seeds
        for metric in ("image_auroc", "infer_ms_per_image")
    ]
    return results_frame(rows)


def _style(methods, categories):
    return plots.Style.of(methods, sorted(categories, key=lambda c: (c not in TEXTURES, c)))


@pytest.mark.parametrize(("methods", "categories"), [(1, 2), (3, 2), (5, 15)])
def test_heatmap_grows_with_its_grid_and_is_labelled_in_words(methods, categories, tmp_path, texts):
    names = ["l2ae", "ssimae", "cbigan", "egbad", "anogan"][:methods]
    chosen = (TEXTURES + OBJECTS)[:categories] if categories > 2 else ["carpet", "bottle"]
    path = plots.metric_heatmap(
        _results(names, chosen), "image_auroc", tmp_path / "h.png", _style(names, chosen)
    )
    width, height = Image.open(path).size
    assert height > 160 + 45 * methods and width > 60 * (categories + 3), (
        "about half an inch per row and column"
    )
    shown = texts[-1]
    assert "image AUROC by method and category" in shown and "textures mean" in shown
    assert set(names) <= set(shown), "every method named on its row"
    assert not [text for text in shown if any(identifier in text for identifier in IDENTIFIERS)], shown
    assert sum(re.fullmatch(r"0\.\d\d|1\.00", text) is not None for text in shown) == methods * (
        categories + 3
    )


def test_roc_curves_show_every_seed_and_their_auroc(tmp_path, texts):
    rng = np.random.default_rng(1)
    rows = []
    for method in ("l2ae", "anogan"):
        for seed in (0, 1):
            labels = np.r_[np.zeros(10), np.ones(10)]
            scores = labels + rng.normal(0, 1, 20)
            rows += [
                {"method": method, "category": "carpet", "seed": seed, "label": int(y), "score": s}
                for y, s in zip(labels, scores, strict=True)
            ]
    frame = pd.DataFrame(rows)
    style = _style(["l2ae", "anogan"], ["carpet"])
    figure_path = plots.roc_curves(frame, tmp_path / "roc.png", style)
    assert figure_path.stat().st_size > 1000
    legend = [text for text in texts[-1] if "AUROC" in text]
    assert len(legend) == 2 and all("2 seeds" in text for text in legend)
    from sklearn.metrics import roc_auc_score

    l2ae = frame[frame.method == "l2ae"]
    mean = np.mean([roc_auc_score(s.label, s.score) for _, s in l2ae.groupby("seed")])
    assert any(text.startswith(f"l2ae (AUROC {mean:.3f} ± ") for text in legend)


def test_loss_plot_has_a_panel_per_loss_in_words(tmp_path, texts):
    rows = []
    for method, losses in (("cbigan", ("d", "gp", "eg", "consistency")), ("egbad", ("d", "consistency"))):
        for loss in losses:
            for step in range(5):
                value = 3000.0 if loss == "consistency" else 0.1 * step
                rows.append(
                    {
                        "method": method,
                        "category": "carpet",
                        "seed": 0,
                        "step": step,
                        "loss": loss,
                        "value": value,
                    }
                )
    labels = {
        "cbigan": {"consistency": "consistency loss L_C"},
        "egbad": {"consistency": "consistency L_C, monitored only"},
    }
    plots.loss_curves(pd.DataFrame(rows), tmp_path / "l.png", _style(["cbigan", "egbad"], ["carpet"]), labels)
    titles = [text for text in texts[-1] if ": " in text]
    assert "cbigan: consistency loss L_C" in titles and "egbad: consistency L_C, monitored only" in titles
    assert "cbigan: gp" in titles, "a loss without words keeps its name"
    assert len(titles) == 6, "one panel per loss of each method"


def test_sample_grid_names_rows_by_defect_and_image_and_orders_methods(tmp_path, texts):
    rng = np.random.default_rng(2)

    def kept(offset: float) -> Samples:
        return Samples(
            names=np.array(["carpet/test/good/000.png", "carpet/test/hole/003.png"]),
            labels=np.array([0, 1]),
            images=rng.integers(0, 255, (2, 3, 16, 16), dtype=np.uint8),
            masks=np.zeros((2, 16, 16), bool),
            maps=rng.random((2, 16, 16)).astype(np.float32) + offset,
            reconstructions=rng.integers(0, 255, (2, 3, 16, 16), dtype=np.uint8),
        )

    style = _style(["l2ae", "anogan"], ["carpet"])
    plots.qualitative_grid("carpet", {"anogan": kept(5), "l2ae": kept(0)}, tmp_path / "s.png", style)
    shown = texts[-1]
    assert "good\n000" in shown and "hole\n003" in shown
    titles = [text for text in shown if text.endswith("\nmap")]
    assert titles == ["l2ae\nmap", "anogan\nmap"], "the report's order, not the dictionary's"
    assert "l2ae anomaly score" in shown and "anogan anomaly score" in shown, "a colour bar per method"


def test_every_builtin_loss_has_words_and_egbads_consistency_is_marked_monitored_only():
    from adbench.registry import load_method

    logged = {"l2ae": {"loss"}, "ssimae": {"loss"}, "anogan": {"d", "g"}}
    logged |= {"cbigan": {"d", "gp", "eg", "consistency"}, "egbad": {"d", "gp", "eg", "consistency"}}
    for method, losses in logged.items():
        assert set(load_method(method).loss_labels) == losses, method
    assert "monitored only (α = 0)" in load_method("egbad").loss_labels["consistency"]
    assert "monitored" not in load_method("cbigan").loss_labels["consistency"]


def test_a_long_loss_title_fits_its_panel(tmp_path, monkeypatch):
    """The autoencoders' loss words ('... summed per image') were clipped at the figure's edges."""
    outside: list[str] = []
    save = plots._save

    def measuring(figure, path):
        renderer = figure.canvas.get_renderer()
        figure.draw(renderer)
        edge = figure.bbox
        for axes in figure.axes:
            box = axes.title.get_window_extent(renderer)
            if box.x0 < edge.x0 or box.x1 > edge.x1:
                outside.append(axes.get_title())
        return save(figure, path)

    monkeypatch.setattr(plots, "_save", measuring)
    rows = [
        {
            "method": "ssimae",
            "category": "carpet",
            "seed": 0,
            "step": step,
            "loss": "loss",
            "value": 1.0 / (1 + step),
        }
        for step in range(5)
    ]
    label = {"ssimae": {"loss": "reconstruction loss (1 − SSIM plus squared error, summed per image)"}}
    plots.loss_curves(pd.DataFrame(rows), tmp_path / "l.png", _style(["ssimae"], ["carpet"]), label)
    assert outside == []
    assert plots.panel_title("ssimae", label["ssimae"]["loss"]).replace("\n", " ") == (
        "ssimae: reconstruction loss (1 − SSIM plus squared error, summed per image)"
    ), "wrapped, every word kept"


def test_quality_against_time_draws_a_contended_method_hollow_and_says_so(tmp_path, texts, monkeypatch):
    drawn = []
    scatter = plots.plt.Axes.scatter

    def recording(self, *args, **kwargs):
        drawn.append(kwargs.get("facecolors"))
        return scatter(self, *args, **kwargs)

    monkeypatch.setattr(plots.plt.Axes, "scatter", recording)
    results = _results(["l2ae", "anogan"], ["carpet", "bottle"])
    kinds = {"l2ae": "single-pass", "anogan": "iterative"}
    style = _style(["l2ae", "anogan"], ["carpet", "bottle"])
    plots.accuracy_against_time(results, kinds, "image_auroc", tmp_path / "q.png", style, {"anogan"})
    assert drawn[0] != "none" and drawn[1] == "none", "l2ae filled, anogan hollow"
    assert "anogan (iterative, timed contended)" in texts[-1] and "l2ae (single-pass)" in texts[-1]
