"""Minimum enclosing balls: vfmaudit against cyminiball and miniball, side by side.

    python benchmarks/bench_meb.py [--sets 10000] [--n 11] [--dim 768] [--json out.json]

vfmaudit solves all sets at once (inner products included) on every core; the peers solve
one set per call, so they are timed on a sample and scaled to the whole batch. Radii are
checked against each other before any time is reported.
cyminiball: build from its sdist (`pip install cython; CYMINIBALL_CYTHONIZE=1 pip install
--no-binary cyminiball --no-build-isolation cyminiball`): its shipped C++ predates NumPy 2.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from _common import machine, table


def point_sets(kind: str, sets: int, n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random unit vectors":  # every point on the boundary: the hardest case for Welzl
        x = rng.normal(size=(sets, n, dim))
    else:  # an embedding and its perturbed variants: drifts of different sizes around it
        x = rng.normal(size=(sets, 1, dim)) + rng.normal(size=(sets, n, dim)) * rng.uniform(0, 0.3, (sets, n, 1))
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x.astype(np.float32)


def time_per_set(fn, sets: np.ndarray, budget: float) -> tuple[float, np.ndarray]:
    radii, start = [], time.perf_counter()
    for s in sets:
        radii.append(fn(s))
        if time.perf_counter() - start > budget:
            break
    return (time.perf_counter() - start) / len(radii), np.array(radii)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", type=int, default=10_000)
    ap.add_argument("--n", type=int, default=11)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--json")
    args = ap.parse_args()

    from vfmaudit.metrics import divergence_radius

    peers = {}
    try:
        import cyminiball

        peers["cyminiball"] = lambda s: float(np.sqrt(cyminiball.compute(s.astype(np.float64))[1]))
    except ImportError:
        print("cyminiball not installed: skipped")
    try:
        import miniball

        peers["miniball"] = lambda s: float(np.sqrt(miniball.get_bounding_ball(s.astype(np.float64))[1]))
    except ImportError:
        print("miniball not installed: skipped")

    divergence_radius(point_sets("clustered", 8, args.n, args.dim))  # compile
    rows, records = [], []
    for kind in ("random unit vectors", "clustered"):
        x = point_sets(kind, args.sets, args.n, args.dim)
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            ours = divergence_radius(x)
            best = min(best, time.perf_counter() - t0)
        rec = {"kind": kind, "sets": args.sets, "n": args.n, "dim": args.dim, "vfmaudit_s": best}
        row = [kind, f"{best:.2f} s"]
        for name, fn in peers.items():
            per_set, radii = time_per_set(fn, x, budget=20.0)
            err = float(np.max(np.abs(radii - ours[: len(radii)])))
            rec[f"{name}_s_per_set"] = per_set
            rec[f"{name}_max_radius_diff"] = err
            total = per_set * args.sets
            row.append(f"{total:.1f} s ({per_set * 1e3:.2f} ms/set, max Δr {err:.1e}) = {total / best:.0f}x")
        rows.append(row)
        records.append(rec)

    print(f"{args.sets:,} sets of {args.n} points in {args.dim}-d ({machine()})\n")
    print(table(["point sets", "vfmaudit (all sets)"] + [f"{p} (scaled to all sets) = vfmaudit speed-up"
                                                          for p in peers], rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": records}, f, indent=2)


if __name__ == "__main__":
    main()
