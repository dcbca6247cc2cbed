"""Helpers shared by the benchmark scripts: timing, machine fingerprint, markdown tables."""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from typing import Callable


def single_thread() -> None:
    """Pin every library to one thread so figures compare per core."""
    import cv2
    import numba
    import torch

    from vfmaudit import perturb

    cv2.setNumThreads(1)
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    perturb.set_num_threads(1)


def throughput(fn: Callable[[], object], items_per_call: int, min_time: float = 0.6, repeats: int = 3) -> float:
    """Items per second: best of `repeats` runs of at least `min_time` seconds each, after a warm-up."""
    fn()
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = max(best, calls * items_per_call / elapsed)
    return best


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from vfmaudit.artefact.provenance import cpu_flags, package_versions

    v = package_versions()
    return (f"{cpu} ({' '.join(cpu_flags()) or 'no AVX2'}), {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"onnxruntime {v.get('onnxruntime', '?')}, torch {v.get('torch', '?')}, {dt.date.today().isoformat()}")


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


class OtherCoreBusy:
    """A CPU burner on the last core while the benchmark runs pinned to the first (Linux affinity):
    the peers and vfmaudit then share a machine whose other core is taken, as on a loaded CI runner.
    The burner is a separate process spinning in a loop; it is killed on exit."""

    def __init__(self) -> None:
        self._proc = None

    def __enter__(self) -> "OtherCoreBusy":
        import subprocess
        import sys

        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            raise SystemExit("error: --busy needs two cores (this process may run on one)")
        os.sched_setaffinity(0, {cores[0]})
        spin = f"import os\nos.sched_setaffinity(0, {{{cores[-1]}}})\nwhile True: pass"
        self._proc = subprocess.Popen([sys.executable, "-c", spin])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
