"""Timing loops and trtexec-style latency summaries."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

NOISY_CV = 0.10  # coefficient of variation above which a run is flagged as noisy


@dataclass
class Timings:
    host_s: np.ndarray  # wall time of each timed call, seconds
    items_per_call: int
    device_s: np.ndarray | None = None  # GPU time of each call (CUDA events), when measured

    @property
    def throughput(self) -> float:
        return float(self.items_per_call * len(self.host_s) / self.host_s.sum())

    def summary(self) -> dict:
        d = {"throughput": self.throughput, "iterations": int(len(self.host_s)),
             "latency_ms": latency_summary(self.host_s), "cv": coefficient_of_variation(self.host_s)}
        d["noisy"] = d["cv"] > NOISY_CV
        if self.device_s is not None:
            d["gpu_latency_ms"] = latency_summary(self.device_s)
        return d


def latency_summary(seconds: np.ndarray) -> dict:
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {"min": float(ms.min()), "mean": float(ms.mean()), "median": float(np.median(ms)),
            "p90": float(np.percentile(ms, 90)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}


def coefficient_of_variation(seconds: np.ndarray) -> float:
    s = np.asarray(seconds, dtype=np.float64)
    return float(s.std() / s.mean()) if len(s) > 1 and s.mean() > 0 else 0.0


def run_timed(fn: Callable[[], object], items_per_call: int, warmup_s: float = 1.0,
              duration_s: float | None = 3.0, iterations: int | None = None,
              device_timer: Callable[[Callable[[], object]], float] | None = None) -> Timings:
    """Warm up for warmup_s, then time calls for duration_s (or exactly `iterations` calls)."""
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < warmup_s:
        fn()
    host, device = [], []
    t_end = time.perf_counter() + (duration_s or 0.0)
    while True:
        t0 = time.perf_counter()
        if device_timer is not None:
            device.append(device_timer(fn))
        else:
            fn()
        host.append(time.perf_counter() - t0)
        if iterations is not None:
            if len(host) >= iterations:
                break
        elif time.perf_counter() >= t_end and len(host) >= 3:
            break
    return Timings(np.array(host), items_per_call, np.array(device) if device_timer is not None else None)


def cuda_event_timer(torch_module) -> Callable[[Callable[[], object]], float]:
    """Device time of one call, from CUDA events around it (the host time is measured apart)."""

    def timed(fn: Callable[[], object]) -> float:
        start = torch_module.cuda.Event(enable_timing=True)
        end = torch_module.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    return timed
