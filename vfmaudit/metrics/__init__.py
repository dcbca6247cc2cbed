"""Robustness metrics: cosine, euclidean, and the exact divergence radius (minimum enclosing ball).

Each is an entry of the metrics registry (`metrics()`), which the audit and every report iterate.
"""

from vfmaudit.metrics.agreement import neighbour_agreement
from vfmaudit.metrics.ball import Ball, divergence_radius, minimum_enclosing_ball
from vfmaudit.metrics.classification import (
                                              auroc,
                                              expected_calibration_error,
                                              linear_fit,
                                              mean_average_precision,
                                              recall_at_k,
                                              threshold_at_precision,
)
from vfmaudit.metrics.embedding import cosine, drift_metrics, euclidean, l2_normalize
from vfmaudit.metrics.registry import (
                                              Metric,
                                              get_metric,
                                              metrics,
                                              per_level_metrics,
                                              register_metric,
                                              unregister_metric,
)
from vfmaudit.metrics.summary import summarize

__all__ = ["Ball", "cosine", "euclidean", "divergence_radius", "drift_metrics", "minimum_enclosing_ball",
           "l2_normalize", "Metric", "metrics", "get_metric", "register_metric", "unregister_metric",
           "per_level_metrics", "summarize", "neighbour_agreement", "expected_calibration_error",
           "recall_at_k", "mean_average_precision", "linear_fit", "auroc", "threshold_at_precision"]
