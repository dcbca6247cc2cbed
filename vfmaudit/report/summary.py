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


def family_summaries(image_rows: list[dict], level_rows: list[dict], families: list[str]) -> dict:
    by_family: dict[str, dict[str, list[float]]] = {f: defaultdict(list) for f in families}
    worst_image: dict[str, tuple[float, str]] = {}
    for r in image_rows:
        fam = r["family"]
        if fam not in by_family:
            continue
        for m in METRICS:
            by_family[fam][m].append(float(r[m]))
        rad = float(r["divergence_radius"])
        if fam not in worst_image or rad > worst_image[fam][0]:
            worst_image[fam] = (rad, r["image"])
    per_level: dict[str, dict[float, list[tuple[float, float]]]] = {f: defaultdict(list) for f in families}
    for r in level_rows:
        if r["family"] in per_level:
            per_level[r["family"]][float(r["level"])].append((float(r["cosine"]), float(r["euclidean"])))
    out = {}
    for fam in families:
        entry = {m: summarize(by_family[fam][m], HIGHER_IS_WORSE[m]) for m in METRICS}
        entry["n_images"] = len(by_family[fam]["cosine"])
        entry["worst_image"] = worst_image.get(fam, (None, None))[1]
        entry["per_level"] = [
            {"level": lv, "cosine_mean": float(np.mean([c for c, _ in vals])),
             "euclidean_mean": float(np.mean([e for _, e in vals]))}
            for lv, vals in sorted(per_level[fam].items())
        ]
        out[fam] = entry
    return out
