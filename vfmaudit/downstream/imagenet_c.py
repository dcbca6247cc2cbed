"""Labelled ImageNet-C figures of a downstream run (Hendrycks & Dietterich 2019, section 3).

E_{s,c} = 1 - accuracy of a task on corruption c at severity s. Per corruption: CE = sum_s E_{s,c} /
sum_s E^base_{s,c}, and relative CE = sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean);
mCE and relative mCE are their means over the 15. The base is a baseline run the user gives
(`--baseline-report`, the same task and corruption) or, for the 15 at severities 1..5, AlexNet's
published errors (the numbers the paper's mCE is normalised by; their source below).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vfmaudit.files import read_earlier_report
from vfmaudit.perturb.families.imagenet_c import FIFTEEN, PREFIX, SEVERITIES

# AlexNet's top-1 errors on ImageNet-C per corruption and severity 1..5: the per-severity list whose
# means are google-research/augmix's ALEXNET_ERR ("Raw AlexNet errors taken from
# https://github.com/hendrycks/robustness"); clean error 0.43478 is torchvision's AlexNet (acc@1
# 56.522), the weights hendrycks/robustness test.py evaluates (the paper's exact constant was not found).
ALEXNET_ERRORS = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.9487, 0.9872, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.5843, 0.70048, 0.82108, 0.8975, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.9187, 0.94952),
    "frost": (0.6139, 0.79734, 0.8879, 0.89942, 0.9343),
    "fog": (0.67474, 0.7605, 0.84378, 0.8726, 0.945),
    "brightness": (0.4514, 0.48502, 0.54048, 0.62166, 0.7244),
    "contrast": (0.64548, 0.7615, 0.88874, 0.9776, 0.9927),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.5462, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
}
ALEXNET_CLEAN_ERROR = 0.43478


def load_baseline(path: str | Path) -> dict:
    """A baseline downstream run's downstream.json (a file, or the output folder that holds it)."""
    return read_earlier_report(path, "downstream.json", "tasks", "--baseline-report", "downstream")


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def _mean(values: list[float | None]) -> float | None:
    return float(np.mean(values)) if values and all(v is not None for v in values) else None


def _errors(task: dict, family: str) -> tuple[list[float], list[float]] | None:
    rows = task.get("families", {}).get(family)
    if not rows or "accuracy" not in rows:
        return None
    return [float(v) for v in rows["levels"]], [1.0 - float(a) for a in rows["accuracy"]]


def corruption_errors(tasks: dict, baseline: dict | None = None) -> dict | None:
    """report["imagenet_c"] of a downstream run: per classification task and corruption, the errors per
    severity, CE and relative CE against the baseline run and (the 15 at 1..5) AlexNet; None without
    an ImageNet-C family."""
    out = {}
    for name, task in tasks.items():
        if "clean" not in task or "accuracy" not in task["clean"]:
            continue  # retrieval: no error rate
        clean = 1.0 - float(task["clean"]["accuracy"])
        base_task = (baseline or {}).get("tasks", {}).get(name)
        base_clean = 1.0 - float(base_task["clean"]["accuracy"]) if base_task else None
        per = {}
        for family in task.get("families", {}):
            if not family.startswith(PREFIX):
                continue
            c = family[len(PREFIX):]
            levels, errors = _errors(task, family)
            entry = {"severities": levels, "error": errors, "mean_error": float(np.mean(errors))}
            at_severities = levels == list(SEVERITIES)
            if c in ALEXNET_ERRORS and at_severities:
                alex = ALEXNET_ERRORS[c]
                entry["ce_alexnet"] = _ratio(sum(errors), sum(alex))
                entry["relative_ce_alexnet"] = _ratio(sum(e - clean for e in errors),
                                                      sum(a - ALEXNET_CLEAN_ERROR for a in alex))
            base = _errors(base_task, family) if base_task else None
            if base is not None and base[0] == levels:
                entry["ce_baseline"] = _ratio(sum(errors), sum(base[1]))
                entry["relative_ce_baseline"] = _ratio(sum(e - clean for e in errors),
                                                       sum(b - base_clean for b in base[1]))
            per[c] = entry
        if not per:
            continue
        complete = all(c in per for c in FIFTEEN)
        summary = {"corruptions": per, "clean_error": clean, "complete_15": complete}
        for key in ("mean_error", "ce_alexnet", "relative_ce_alexnet", "ce_baseline", "relative_ce_baseline"):
            summary[{"mean_error": "mce_unnormalised"}.get(key, "m" + key)] = (
                _mean([per[c].get(key) for c in FIFTEEN]) if complete else None)
        out[name] = summary
    if not out:
        return None
    return {"definition": __doc__.split("\n\n")[1].replace("\n", " "), "baseline": bool(baseline),
            "alexnet_clean_error": ALEXNET_CLEAN_ERROR, "tasks": out}
