"""Metric functions (pure, numpy in, float out) and the direction of every metric name in results."""

# Direction of every metric in the results table, for bold/arrows in reports and the regression gate.
HIGHER_IS_BETTER: dict[str, bool] = {
    "image_auroc": True,
    "image_max_balanced_accuracy": True,
    "image_ap": True,
    "image_f1_max": True,  # at the best threshold on the test labels: an oracle figure
    "pixel_auroc": True,
    "pixel_ap": True,
    "pixel_f1_max": True,  # as image_f1_max
    "pixel_aupro_0.3": True,
    "pixel_aupro_0.1": True,
    "pixel_aupro_0.05": True,
    "pixel_aupro_0.01": True,
    "pixel_aupimo": True,
    "threshold_balanced_accuracy": True,
    "threshold_tpr": True,
    "threshold_tnr": True,
    "pixel_iou": True,
    # How much reconstructions (or maps) depend on the input: adbench.sensitivity; near 0 = collapsed.
    "input_sensitivity": True,
    "fit_s": False,
    "infer_ms_per_image": False,
    "infer_ms_per_image_p95": False,
    "infer_images_per_s": True,
}
