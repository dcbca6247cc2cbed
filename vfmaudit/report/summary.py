"""Summaries of per-image results: mean, median, p5, p95, worst per family and metric."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

METRICS = ("cosine", "euclidean", "divergence_radius")
# cosine: 1 is robust, so the worst image has the lowest value; the others: the highest
HIGHER_IS_WORSE = {"cosine": False, "euclidean": True, "divergence_radius": True}


def summarize(values: np.ndarray, higher_is_worse: bool) -> dict:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "median": None, "p5": None, "p95": None, "worst": None, "n": 0}
    return {
        "mean": float(v.mean()), "median": float(np.median(v)),
        "p5": float(np.percentile(v, 5)), "p95": float(np.percentile(v, 95)),
        "worst": float(v.max() if higher_is_worse else v.min()), "n": int(v.size),
    }


def family_summaries(image_rows, level_rows, families: list[str]) -> tuple[dict, dict]:
    """Summaries per family from row iterables, streamed: only the metric values are kept.

    Returns (summaries, values) where values[family][metric] is an array for plotting.
    """
    from array import array

    values = {f: {m: array("d") for m in METRICS} for f in families}
    worst_image: dict[str, tuple[float, str]] = {}
    for r in image_rows:
        fam = r["family"]
        if fam not in values:
            continue
        for m in METRICS:
            values[fam][m].append(float(r[m]))
        rad = float(r["divergence_radius"])
        if fam not in worst_image or rad > worst_image[fam][0]:
            worst_image[fam] = (rad, r["image"])
    # per-level means as running sums: (sum cosine, sum euclidean, count)
    per_level: dict[str, dict[float, list[float]]] = {f: defaultdict(lambda: [0.0, 0.0, 0]) for f in families}
    for r in level_rows:
        if r["family"] in per_level:
            acc = per_level[r["family"]][float(r["level"])]
            acc[0] += float(r["cosine"])
            acc[1] += float(r["euclidean"])
            acc[2] += 1
    out = {}
    for fam in families:
        entry = {m: summarize(np.frombuffer(values[fam][m], dtype=np.float64) if len(values[fam][m]) else [],
                              HIGHER_IS_WORSE[m]) for m in METRICS}
        entry["n_images"] = len(values[fam]["cosine"])
        entry["worst_image"] = worst_image.get(fam, (None, None))[1]
        entry["per_level"] = [{"level": lv, "cosine_mean": c / n, "euclidean_mean": e / n}
                              for lv, (c, e, n) in sorted(per_level[fam].items())]
        out[fam] = entry
    arrays = {f: {m: np.frombuffer(values[f][m], dtype=np.float64) if len(values[f][m]) else np.empty(0)
                  for m in METRICS} for f in families}
    return out, arrays
