"""A batch on two threads against one: every everyday family and every ImageNet-C corruption.

    python benchmarks/bench_threads.py [--batch 64] [--size 224] [--rounds 3] [--json out.json]

perturb.apply on the same batch of photographs with perturb.set_num_threads(1) and (2), OpenCV,
Numba and torch pinned to one thread each (vfmaudit's own pool is what spreads the batch), timed in
alternated rounds (best of each). Target (issue 41): >= 1.8x for the everyday families and the
ImageNet-C suite. The ceiling of this machine is measured in the same run: two copies of a scalar
loop on two threads against one after the other (no memory traffic), and the same for a pass that
reads the batch once (what the fastest edits are bound by).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from _common import fmt_rate, machine, single_thread, table, throughput
from bench_perturb import photos

EVERYDAY = {"jpeg": 50, "brightness": 1.3, "contrast": 1.3, "saturation": 1.5, "hue": 0.1, "sharpness": 2.0,
            "gaussian_blur": 2.0, "gaussian_noise": 0.1, "resize": 0.5}


def ceilings(batch: np.ndarray) -> dict[str, float]:
    """Two threads over one, for a scalar loop, a vectorised loop in L1 and one read of the batch (nogil
    Numba all). The scalar loop is bound by latency, the vectorised one by the core's SIMD units: two
    virtual CPUs on one physical core (SMT siblings on the host) scale the first and not the second."""
    from numba import njit

    @njit(nogil=True)
    def spin(n: int) -> float:
        x, s = 1.0, 0.0
        for _ in range(n):
            x = x * 1.0000001 + 1e-9
            s += x
        return s

    @njit(nogil=True)
    def simd(a: np.ndarray, b: np.ndarray, n: int) -> float:
        for _ in range(n):
            for i in range(a.size):
                b[i] = a[i] * np.float32(1.0001) + np.float32(0.5)
        return b[0]

    @njit(nogil=True)
    def read(a: np.ndarray) -> int:
        s = 0
        for i in range(a.size):
            s += a[i]
        return s

    flat = batch.reshape(-1)
    half = flat.size // 2
    l1 = [(np.ones(4096, np.float32), np.empty(4096, np.float32)) for _ in range(2)]  # 32 KiB a thread
    parts = {"scalar loop": lambda i: spin(5_000_000),
             "vectorised loop in L1": lambda i: simd(*l1[i], 20_000),
             "one read of the batch": lambda i: read(flat[i * half:(i + 1) * half])}
    pool = ThreadPoolExecutor(2)
    out = {}
    for name, part in parts.items():
        part(0)
        one = two = float("inf")
        for _ in range(5):  # both halves one after the other, then on two threads
            t = time.perf_counter()
            part(0), part(1)
            one = min(one, time.perf_counter() - t)
            t = time.perf_counter()
            list(pool.map(part, range(2)))
            two = min(two, time.perf_counter() - t)
        out[name] = one / two
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds per thread count (best of each)")
    ap.add_argument("--only", default="", help="comma list of families (default: the everyday ones and ImageNet-C)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args()
    single_thread()
    from vfmaudit import perturb
    from vfmaudit.perturb.families.imagenet_c import SPECS, family_name

    batch = photos(args.batch, args.size)
    cases = list(EVERYDAY.items()) + [(family_name(s.name), 3.0) for s in SPECS]
    if args.only:
        cases = [c for c in cases if c[0] in args.only.split(",")]
    rows, records = [], []
    for name, level in cases:
        rate = {1: 0.0, 2: 0.0}
        for _ in range(args.rounds):
            for threads in (1, 2):
                perturb.set_num_threads(threads)
                rate[threads] = max(rate[threads], throughput(lambda: perturb.apply(batch, name, level, seed=0),
                                                              len(batch), min_time=0.3, repeats=1))
        perturb.set_num_threads(1)
        ratio = rate[2] / rate[1]
        records.append({"family": name, "level": level, "one_thread": rate[1], "two_threads": rate[2], "ratio": ratio})
        rows.append([name, fmt_rate(rate[1]), fmt_rate(rate[2]), f"{ratio:.2f}x", "yes" if ratio >= 1.8 else "**no**"])
        print(f"  {name}: {ratio:.2f}x", file=sys.stderr)
    everyday = [r for r in records if r["family"] in EVERYDAY]
    suite = [r for r in records if r["family"] not in EVERYDAY]
    for label, members in (("everyday families, one batch of each", everyday),
                           ("ImageNet-C suite, one batch of each", suite)):
        if members:  # the suite's time: the sum of its families' times per image
            one, two = (sum(1.0 / r[k] for r in members) for k in ("one_thread", "two_threads"))
            rows.append([f"**{label}**", fmt_rate(1.0 / one), fmt_rate(1.0 / two), f"{one / two:.2f}x",
                         "yes" if one / two >= 1.8 else "**no**"])
            records.append({"family": label, "one_thread": 1.0 / one, "two_threads": 1.0 / two, "ratio": one / two})
    limits = ceilings(batch)
    print(f"Two threads against one, images/s, batch {args.batch} at {args.size}x{args.size} ({machine()})\n")
    print(table(["family", "1 thread", "2 threads", "2 / 1", ">= 1.8x"], rows))
    print("\nThis machine's ceiling in the same run: " + ", ".join(f"{k} {v:.2f}x" for k, v in limits.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": records, "ceilings": limits}, indent=2))


if __name__ == "__main__":
    main()
