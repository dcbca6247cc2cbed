"""Timing loops and trtexec-style latency summaries."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

# fn -> the device phases (seconds) of one call of fn
PhaseTimer = Callable[[Callable[[], object]], dict]

PHASES = ("h2d", "compute", "d2h")  # trtexec's Host-to-Device, GPU Compute, Device-to-Host
NOISY_CV = 0.10  # coefficient of variation above which a run is flagged as noisy
NOISY_SPREAD = 0.10  # (max - min) / median of the rounds' throughputs above which it is flagged too


@dataclass
class Timings:
    host_s: np.ndarray  # wall time of each timed call, seconds
    items_per_call: int
    rounds: list[int] | None = None  # calls per round, when timed in interleaved rounds
    # on a GPU, each call's device phases in seconds (PHASES: copies in and out, compute), when measured
    phases: dict[str, np.ndarray] | None = None

    @property
    def throughput(self) -> float:
        return float(self.items_per_call * len(self.host_s) / self.host_s.sum())

    def round_throughputs(self) -> list[float]:
        out, start = [], 0
        for n in self.rounds or [len(self.host_s)]:
            part = self.host_s[start:start + n]
            start += n
            if n:
                out.append(float(self.items_per_call * n / part.sum()))
        return out

    def summary(self) -> dict:
        d = {"throughput": self.throughput, "iterations": int(len(self.host_s)),
             "latency_ms": latency_summary(self.host_s), "cv": coefficient_of_variation(self.host_s)}
        per_round = self.round_throughputs()
        median = float(np.median(per_round))
        d.update(rounds=len(per_round), round_throughput={"median": median, "min": min(per_round),
                                                           "max": max(per_round)},
                 spread=(max(per_round) - min(per_round)) / median if median > 0 else 0.0)
        # noisy: the calls disagree, or (the contention interleaving exposes) the rounds do
        d["noisy"] = bool(d["cv"] > NOISY_CV or d["spread"] > NOISY_SPREAD)
        if self.phases:  # trtexec's split: the GPU's compute alone, and each copy apart
            d["gpu_latency_ms"] = latency_summary(self.phases["compute"])
            d["h2d_latency_ms"] = latency_summary(self.phases["h2d"])
            d["d2h_latency_ms"] = latency_summary(self.phases["d2h"])
        return d


class RoundTimer:
    """Times one configuration in rounds that can interleave with other configurations' rounds
    (A B C A B C ...), so contention that comes and goes hits every configuration alike and shows as
    a spread between its rounds instead of silently favouring one of them."""

    def __init__(self, fn: Callable[[], object], items_per_call: int, device_timer: PhaseTimer | None = None):
        self.fn, self.items, self.device_timer = fn, items_per_call, device_timer
        self.host: list[float] = []
        self.device: list[dict[str, float]] = []
        self.rounds: list[int] = []

    def warmup(self, seconds: float) -> None:
        start = time.perf_counter()
        self.fn()
        while time.perf_counter() - start < seconds:
            self.fn()

    def round(self, duration_s: float | None = None, iterations: int | None = None, min_calls: int = 1) -> None:
        """One round: exactly `iterations` calls, or calls for duration_s (at least min_calls)."""
        t_end, n = time.perf_counter() + (duration_s or 0.0), 0
        while True:
            t0 = time.perf_counter()
            if self.device_timer is not None:
                self.device.append(self.device_timer(self.fn))
            else:
                self.fn()
            self.host.append(time.perf_counter() - t0)
            n += 1
            if iterations is not None:
                if n >= iterations:
                    break
            elif time.perf_counter() >= t_end and n >= min_calls:
                break
        self.rounds.append(n)

    def timings(self) -> Timings:
        phases = {p: np.array([d.get(p, 0.0) for d in self.device]) for p in PHASES} if self.device else None
        return Timings(np.array(self.host), self.items, list(self.rounds), phases)


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
              device_timer: PhaseTimer | None = None) -> Timings:
    """Warm up for warmup_s, then time calls for duration_s (or exactly `iterations` calls), in one round."""
    timer = RoundTimer(fn, items_per_call, device_timer)
    timer.warmup(warmup_s)
    timer.round(duration_s, iterations, min_calls=3)
    return timer.timings()


def cuda_events(torch_module) -> list:
    """The four timing events phase_seconds reads, recorded on one stream in this order: before the
    copy in, after it, after the compute, after the copy out."""
    return [torch_module.cuda.Event(enable_timing=True) for _ in range(len(PHASES) + 1)]


def phase_seconds(events: list) -> dict[str, float]:
    """Four CUDA events recorded on one stream (before the copy in, after it, after the compute, after
    the copy out) -> seconds of each phase."""
    return {p: events[k].elapsed_time(events[k + 1]) / 1e3 for k, p in enumerate(PHASES)}


def add_phases(total: dict[str, float], part: dict[str, float]) -> dict[str, float]:
    """Phases of a call made of several batches: each phase summed."""
    return {p: total.get(p, 0.0) + part.get(p, 0.0) for p in PHASES}


def phase_timer(encoder) -> PhaseTimer:
    """Device phases of one encode() call, from the encoder's own events (it records them around its
    copies and its compute, never around host work such as normalisation)."""
    encoder.record_phases = True

    def timed(fn: Callable[[], object]) -> dict[str, float]:
        encoder.last_phases = {}
        fn()
        return dict(encoder.last_phases)

    return timed
