"""Benchmark results as JSON, CSV (one row per configuration, timm-style) and a console table."""

from __future__ import annotations

import csv
from pathlib import Path

from vfmaudit.artefact.provenance import flat_fingerprint

LATENCY_KEYS = ("min", "mean", "median", "p90", "p95", "p99")
ENCODER_COLUMNS = (["model", "backend", "precision", "batch_size", "device", "status", "reason", "error",
                    "throughput"]
                   + [f"latency_ms_{k}" for k in LATENCY_KEYS] + ["cv", "spread", "rounds", "noisy", "iterations"])


def encoder_csv_rows(bench) -> list[dict]:
    fp = flat_fingerprint(bench.fingerprint)
    rows = []
    for r in bench.rows:
        flat = {"model": bench.model, **{k: r.get(k, "") for k in ENCODER_COLUMNS if k in r}}
        for k in LATENCY_KEYS:
            flat[f"latency_ms_{k}"] = r.get("latency_ms", {}).get(k, "")
        rows.append({**{c: flat.get(c, "") for c in ENCODER_COLUMNS}, **fp})
    return rows


def write_encoder_csv(bench, path: Path) -> None:
    rows = encoder_csv_rows(bench)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else list(ENCODER_COLUMNS))
        w.writeheader()
        w.writerows(rows)
