"""Robustness metrics: cosine, euclidean, and the exact divergence radius (minimum enclosing ball)."""

from vfmaudit.metrics.ball import Ball, divergence_radius, minimum_enclosing_ball
from vfmaudit.metrics.embedding import cosine, drift_metrics, euclidean, l2_normalize

__all__ = ["Ball", "cosine", "euclidean", "divergence_radius", "drift_metrics",
           "minimum_enclosing_ball", "l2_normalize"]
