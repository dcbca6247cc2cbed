"""Downstream evaluation under perturbation (linear probe, kNN, retrieval, zero-shot) and how well
the divergence radius predicts the accuracy it costs."""

from vfmaudit.downstream.config import TASKS, DownstreamConfig
from vfmaudit.downstream.runner import DownstreamResult, run_downstream

__all__ = ["DownstreamConfig", "DownstreamResult", "run_downstream", "TASKS"]
