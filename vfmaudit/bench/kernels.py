"""Throughput of vfmaudit's own kernels: perturbation families and minimum enclosing balls."""

from __future__ import annotations

import time

import numpy as np

from vfmaudit.bench.result import BenchReport
from vfmaudit.artefact.provenance import fingerprint, report_header
from vfmaudit.errors import VfmauditError


def typical_level(name: str) -> float:
    """Half-way from the identity to the far end of the domain: a representative, non-trivial edit."""
    from vfmaudit import perturb

    f = perturb.get(name)
    far = f.lo if abs(f.lo - f.identity) > abs(f.hi - f.identity) else f.hi
    return f.identity + 0.5 * (far - f.identity)


def _sample_batch(batch: int, size: int) -> np.ndarray:
    import cv2

    from vfmaudit.data.sources import sample_items

    photos = [cv2.resize(item.load(), (size, size), interpolation=cv2.INTER_AREA) for item in sample_items(4)]
    return np.stack([photos[i % len(photos)] for i in range(batch)])


def bench_perturb(families: list[str] | None = None, threads: list[int] | None = None, batch: int = 64,
                  size: int = 224, duration_s: float = 1.0, progress=None) -> BenchReport:
    """Images per second of each family at a typical level, for each thread count."""
    import numba

    from vfmaudit import perturb

    names = families or list(perturb.families())
    for n in names:
        perturb.get(n)
    threads = threads or sorted({1, numba.config.NUMBA_NUM_THREADS})
    if min(threads) < 1 or batch < 1 or size < 8:
        raise VfmauditError("threads, batch must be >= 1 and size >= 8", param=("threads", "batch", "size"))
    images = _sample_batch(batch, size)
    before = perturb.get_num_threads()
    rows = []
    try:
        for n in names:
            level = typical_level(n)
            for t in threads:
                perturb.set_num_threads(t)
                perturb.apply(images, n, level)  # compile and warm
                calls, start = 0, time.perf_counter()
                while calls < 2 or time.perf_counter() - start < duration_s:
                    perturb.apply(images, n, level, seed=calls)
                    calls += 1
                rate = calls * batch / (time.perf_counter() - start)
                rows.append({"family": n, "level": level, "threads": t, "images_per_s": rate})
                if progress:
                    progress(rows[-1])
    finally:
        perturb.set_num_threads(before)
    return BenchReport({**report_header("vfmaudit.bench.perturb", 1), "batch": batch, "size": size,
            "fingerprint": fingerprint(), "rows": rows})


def bench_meb(sets: int = 10_000, n: int = 11, dim: int = 768, repeats: int = 3, seed: int = 0) -> BenchReport:
    """Sets per second of divergence_radius on embedding-like sets (inner products included)."""
    from vfmaudit.metrics import divergence_radius

    if sets < 1 or n < 1 or dim < 1:
        raise VfmauditError("sets, n and dim must be >= 1", param=("sets", "n", "dim"))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(sets, 1, dim)) + rng.normal(size=(sets, n, dim)) * rng.uniform(0, 0.3, (sets, n, 1))
    x = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    divergence_radius(x[: min(sets, 16)])  # compile
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        divergence_radius(x)
        best = min(best, time.perf_counter() - t0)
    return BenchReport({**report_header("vfmaudit.bench.meb", 1), "sets": sets, "n": n, "dim": dim,
            "seconds": best, "sets_per_s": sets / best, "fingerprint": fingerprint()})
