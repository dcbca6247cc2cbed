"""bench.*: encoder throughput and latency (vfmaudit bench encoder)."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.errors import VfmauditError
from vfmaudit.gate.measurements._registry import (INF, Measurement, MetricInfo, Option, as_float,
                                                  register_measurement)

_LATENCY = ("min", "mean", "median", "p90", "p95", "p99")


def _paths(policy, options) -> dict[str, MetricInfo]:
    paths = {"bench.throughput": MetricInfo(True, (0, INF))}
    paths.update({f"bench.latency_ms.{k}": MetricInfo(False, (0, INF)) for k in _LATENCY})
    return paths


def _run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.bench import bench_encoders
    from vfmaudit.runtime import resolve_backend

    backend = resolve_backend(options["backend"], policy.model).name
    res = bench_encoders(policy.model, [backend], [options["batch_size"]], [options["precision"]],
                         device=policy.device, warmup_s=0.5, duration_s=options["duration"],
                         pretrained=policy.pretrained, seed=policy.seed)
    row = res.rows[0]
    if row["status"] != "ok":
        raise VfmauditError(f"{policy.source}: the bench measurement cannot run here: "
                            f"{row.get('reason') or row.get('error')}")
    return res.to_json()


def _values(report: dict) -> dict:
    row = report["rows"][0]
    values = {"bench.throughput": as_float(row["throughput"])}
    values.update({f"bench.latency_ms.{k}": as_float(row["latency_ms"][k]) for k in _LATENCY})
    return values


register_measurement(Measurement(
    name="bench", description="encoder throughput and latency (vfmaudit bench encoder)",
    options={"backend": Option(str, "auto", "backend (auto: by the model's file suffix)"),
             "precision": Option(str, "fp32", "precision"), "batch_size": Option(int, 8, "batch size"),
             "duration": Option((int, float), 2.0, "timed seconds")},
    metric_paths=_paths, run=_run, values=_values))
