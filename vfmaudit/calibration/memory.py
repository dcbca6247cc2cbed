"""Peak resident memory of this process over a block of work, sampled in a background thread."""

from __future__ import annotations

import threading

import psutil


class PeakMemory:
    def __init__(self, interval_s: float = 0.02):
        self.interval_s = interval_s
        self.baseline_mb = 0.0
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakMemory":
        proc = psutil.Process()
        self.baseline_mb = self.peak_mb = proc.memory_info().rss / 2**20

        def sample() -> None:
            while not self._stop.wait(self.interval_s):
                self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, psutil.Process().memory_info().rss / 2**20)

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.baseline_mb
