"""Distribution summaries of a metric's values: mean, median, p5, p95, worst (by its direction)."""

from __future__ import annotations

import numpy as np

SUMMARY_STATS = ("mean", "median", "p5", "p95", "worst")  # the keys of every summary (and gate paths)


def summarize(values, higher_is_better: bool) -> dict:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {**{k: None for k in SUMMARY_STATS}, "n": 0}
    return {
        "mean": float(v.mean()), "median": float(np.median(v)),
        "p5": float(np.percentile(v, 5)), "p95": float(np.percentile(v, 95)),
        "worst": float(v.min() if higher_is_better else v.max()), "n": int(v.size),
    }
