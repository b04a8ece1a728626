"""Every metric a run writes, declared once: its direction, its words, where the report shows it.

Evaluation writes these names into the results table; the report's tables, the command-line tables, the
regression gate (`compare`) and `--comparison-metric` read what they need of each from here, so a metric
without an entry fails a test (tests/test_formats.py runs every dataset format) instead of going
silently ungated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adbench.evaluation.metrics.spro import SPRO_LIMITS, spro_name

# The report's sections: image-level quality, pixel-level quality, the sensitivity check, timings.
Group = Literal["image", "pixel", "sensitivity", "timing"]
ORACLE = "oracle: the threshold is chosen on the test labels, so no deployed detector could pick it"
# MVTec LOCO's anomaly types, as its AU-sPRO names carry them (spro_name drops "_anomalies").
_LOCO_TYPES = {"logical_anomalies": "logical anomalies", "structural_anomalies": "structural anomalies"}


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    title: str  # the report's table heading
    short: str  # the command line's column heading
    group: Group

    @property
    def gated(self) -> bool:
        """Checked by the regression gate: a quality figure (timings depend on the machine)."""
        return self.higher_is_better and self.group != "timing"


def _spro_metrics() -> list[Metric]:
    found = []
    for limit in SPRO_LIMITS:
        for anomaly_type, words in (None, "mean of logical and structural anomalies"), *_LOCO_TYPES.items():
            found.append(
                Metric(
                    spro_name(limit, anomaly_type),
                    True,
                    f"Pixel AU-sPRO (FPR up to {limit:g}, MVTec LOCO): {words}",
                    f"pixel AU-sPRO (FPR up to {limit:g}, {words})",
                    "pixel",
                )
            )
    return found


# In the order the report shows its tables.
CATALOGUE: tuple[Metric, ...] = (
    Metric(
        "image_max_balanced_accuracy",
        True,
        "Maximum balanced accuracy (image level; the paper's Table II, threshold chosen on the test set)",
        "max balanced accuracy",
        "image",
    ),
    Metric(
        "threshold_balanced_accuracy",
        True,
        "Balanced accuracy at the validation threshold (image level; MVTec AD's protocol and Table 2)",
        "balanced accuracy at the validation threshold",
        "image",
    ),
    Metric(
        "threshold_tpr",
        True,
        "True positive rate at the validation threshold (anomalous images detected)",
        "true positive rate at the validation threshold",
        "image",
    ),
    Metric(
        "threshold_tnr",
        True,
        "True negative rate at the validation threshold (defect-free images passed)",
        "true negative rate at the validation threshold",
        "image",
    ),
    Metric("image_auroc", True, "Image AUROC (the paper's Table III)", "image AUROC", "image"),
    Metric("image_ap", True, "Image average precision", "image average precision", "image"),
    Metric(
        "image_f1_max",
        True,
        f"Image F1-max ({ORACLE})",
        "image F1-max (oracle threshold, chosen on the test labels)",
        "image",
    ),
    Metric("pixel_auroc", True, "Pixel AUROC", "pixel AUROC", "pixel"),
    Metric("pixel_ap", True, "Pixel average precision", "pixel average precision", "pixel"),
    Metric(
        "pixel_f1_max",
        True,
        f"Pixel F1-max ({ORACLE})",
        "pixel F1-max (oracle threshold, chosen on the test labels)",
        "pixel",
    ),
    Metric(
        "pixel_aupro_0.3",
        True,
        "Pixel AU-PRO (FPR up to 0.3, MVTec AD)",
        "pixel AU-PRO (FPR up to 0.3)",
        "pixel",
    ),
    Metric("pixel_aupro_0.1", True, "Pixel AU-PRO (FPR up to 0.1)", "pixel AU-PRO (FPR up to 0.1)", "pixel"),
    Metric(
        "pixel_aupro_0.05",
        True,
        "Pixel AU-PRO (FPR up to 0.05, MVTec AD 2)",
        "pixel AU-PRO (FPR up to 0.05)",
        "pixel",
    ),
    Metric(
        "pixel_aupro_0.01", True, "Pixel AU-PRO (FPR up to 0.01)", "pixel AU-PRO (FPR up to 0.01)", "pixel"
    ),
    Metric(
        "pixel_aupimo",
        True,
        "Pixel AUPIMO (mean over anomalous images; FPR 1e-5 to 1e-4 on the defect-free images)",
        "pixel AUPIMO (mean over anomalous images)",
        "pixel",
    ),
    Metric(
        "pixel_iou",
        True,
        "Pixel IoU of the segmentation at the validation threshold",
        "pixel IoU at the validation threshold",
        "pixel",
    ),
    *_spro_metrics(),
    # How much reconstructions (or maps) depend on the input (adbench.evaluation.sensitivity);
    # near 0 = collapsed.
    Metric(
        "input_sensitivity",
        True,
        "Input sensitivity (how much the output depends on the input)",
        "input sensitivity",
        "sensitivity",
    ),
    Metric(
        "infer_ms_per_image",
        False,
        "Inference time per image, median (ms)",
        "inference latency, median (ms per image)",
        "timing",
    ),
    Metric(
        "infer_ms_per_image_p95",
        False,
        "Inference time per image, 95th percentile (ms)",
        "inference latency, 95th percentile (ms per image)",
        "timing",
    ),
    Metric(
        "infer_images_per_s",
        True,
        "Inference throughput (images per second)",
        "inference throughput (images per s, evaluation batches)",
        "timing",
    ),
    Metric("fit_s", False, "Training time (s)", "fit time (s)", "timing"),
)
METRICS: dict[str, Metric] = {metric.name: metric for metric in CATALOGUE}
GATED_METRICS = tuple(name for name, metric in METRICS.items() if metric.gated)
