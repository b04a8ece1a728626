"""Metric functions (pure, numpy in, float out); what each metric name in the results means is declared
once in adbench.evaluation.metrics.catalogue."""
