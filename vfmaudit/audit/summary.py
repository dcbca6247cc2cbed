"""Summaries of per-image results: mean, median, p5, p95, worst per family and registered metric."""

from __future__ import annotations

from array import array
from collections import defaultdict

import numpy as np

from vfmaudit.metrics import metrics, per_level_metrics, summarize

# the headline metric: it names each family's worst image
PRIMARY_METRIC = "divergence_radius"


def family_summaries(image_rows, level_rows, families: list[str]) -> tuple[dict, dict]:
    """Summaries per family from row iterables, streamed: only the metric values are kept.

    Returns (summaries, values) where values[family][metric] is an array for plotting.
    """
    catalogue = metrics()
    names = list(catalogue)
    lv_names = per_level_metrics()
    values = {f: {m: array("d") for m in names} for f in families}
    worst_image: dict[str, tuple[float, str]] = {}
    primary = catalogue.get(PRIMARY_METRIC) or next(iter(catalogue.values()))
    for r in image_rows:
        fam = r["family"]
        if fam not in values:
            continue
        for m in names:
            values[fam][m].append(float(r[m]))
        v = float(r[primary.name])
        if fam not in worst_image or primary.worse_by(v, worst_image[fam][0]) > 0:
            worst_image[fam] = (v, r["image"])
    # per-level means as running sums: [sum of each per-level metric..., count]
    per_level: dict[str, dict[float, list[float]]] = {
        f: defaultdict(lambda: [0.0] * (len(lv_names) + 1)) for f in families}
    for r in level_rows:
        if r["family"] in per_level:
            acc = per_level[r["family"]][float(r["level"])]
            for i, m in enumerate(lv_names):
                acc[i] += float(r[m])
            acc[-1] += 1
    arrays = {f: {m: np.frombuffer(values[f][m], dtype=np.float64) if len(values[f][m]) else np.empty(0)
                  for m in names} for f in families}
    out = {}
    for fam in families:
        entry: dict = {m: summarize(arrays[fam][m], catalogue[m].higher_is_better) for m in names}
        entry["n_images"] = len(values[fam][names[0]]) if names else 0
        entry["worst_image"] = worst_image.get(fam, (None, None))[1]
        entry["per_level"] = [{"level": lv, **{f"{m}_mean": acc[i] / acc[-1] for i, m in enumerate(lv_names)}}
                              for lv, acc in sorted(per_level[fam].items())]
        out[fam] = entry
    return out, arrays
