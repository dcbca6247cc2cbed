"""The audit on a Ray cluster, with exactly the local engine's outputs: every source runs as the
Ray Data pipeline of `audit/ray_data_engine.py`.

A sharded source (WebDataset, Parquet) brings its own shards, read by the workers where they are.
Image files and the built-in samples are cut into shards of `shard_size` ids (a multiple of the
batch size, so rows come out in the local engine's order), each read by a worker from the shared
filesystem (or its URL). Measured against the Ray core actor pool this engine used before, the
pipeline costs a quarter per image in steady state and starts 8 s later (docs/benchmarks.md), so
one engine serves both.
"""

from __future__ import annotations

from vfmaudit.audit import ray_data_engine
from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.result import AuditResult, ProgressFn
from vfmaudit.data.source import ImageSource
from vfmaudit.engines.ray import check_reachable
from vfmaudit.runtime import Encoder, read_preprocess


def prepare(config: AuditConfig, encoder: Encoder | None) -> dict:  # noqa: ARG001 - the actors build their own
    """Before the output folder is touched: the model's preprocessing, read once here (which checks the
    model spec, weights or file) rather than failing in every worker, and whether the cluster answers."""
    check_reachable(config.ray_address)
    return read_preprocess(config.model, config.pretrained, config.backend, config.seed).to_dict()


def run(config: AuditConfig, plans, source: ImageSource | None, spec: dict, progress: ProgressFn) -> AuditResult:
    return ray_data_engine.run(config, plans, source, spec, progress)
