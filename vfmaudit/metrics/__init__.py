"""Robustness metrics: cosine, euclidean, and the exact divergence radius (minimum enclosing ball).

Each is an entry of the metrics registry (`metrics()`), which the audit and every report iterate.
"""

from vfmaudit.plugins import load_plugins as _load_plugins
from vfmaudit.metrics.agreement import AGREEMENT_KEYS, neighbour_agreement
from vfmaudit.metrics.ball import Ball, divergence_radius, minimum_enclosing_ball
from vfmaudit.metrics.classification import (
                                              auroc,
                                              average_precision,
                                              expected_calibration_error,
                                              fpr_at_tpr,
                                              linear_fit,
                                              mean_average_precision,
                                              recall_at_k,
                                              threshold_at_precision,
)
from vfmaudit.metrics.embedding import cosine, drift_metrics, euclidean, l2_normalize
from vfmaudit.metrics.registry import (
                                              Metric,
                                              get_metric,
                                              headline_metrics,
                                              metrics,
                                              per_level_metrics,
                                              per_variant_metric,
                                              primary_metric,
                                              register_metric,
                                              unregister_metric,
)
from vfmaudit.metrics.summary import SUMMARY_STATS, summarize

__all__ = ["Ball", "cosine", "euclidean", "divergence_radius", "drift_metrics", "minimum_enclosing_ball",
           "l2_normalize", "Metric", "metrics", "get_metric", "register_metric", "unregister_metric",
           "per_level_metrics", "headline_metrics", "primary_metric", "per_variant_metric", "summarize", "SUMMARY_STATS", "neighbour_agreement", "AGREEMENT_KEYS", "expected_calibration_error",
           "recall_at_k", "mean_average_precision", "linear_fit", "auroc", "threshold_at_precision",
           "fpr_at_tpr", "average_precision"]

# last: plugins from outside the repository register into this registry (and the others) now
_load_plugins()
