"""Effective robustness over several downstream runs (Taori et al., 2020): per shift set and task,
each model's shift accuracy against its clean accuracy, a line fitted across the models in logit
space (logit(shift) = slope x logit(clean) + intercept), and each model's effective robustness: its
shift accuracy minus the fitted line's at its clean accuracy (above the line: more robust than its
clean accuracy predicts). Accuracies are clipped to [1e-4, 1 - 1e-4] before the logit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.files import read_earlier_report
from vfmaudit.metrics import linear_fit

EPS = 1e-4


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


@dataclass
class EffectiveRobustness:
    runs: list[dict]  # per run: its path, model spec and data set
    pairs: dict  # "SHIFT/TASK" -> {points: per run, fit (logit space), effective_robustness per run}
    path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"schema": "vfmaudit.effective_robustness", "schema_version": 1, "runs": self.runs,
                "pairs": self.pairs, "notes": self.notes}


def effective_robustness(paths: list[str | Path]) -> EffectiveRobustness:
    """Read each downstream run (folder or downstream.json) and fit every (shift set, task) that at
    least two of them measured."""
    if len(paths) < 2:
        raise VfmauditError("effective robustness compares models: pass at least two downstream runs", param="runs")
    reports = [read_earlier_report(p, "downstream.json", "tasks", "runs", "downstream") for p in paths]
    runs = [{"path": str(p), "model": r["model"].get("spec"), "dataset": r["dataset"]["name"]}
            for p, r in zip(paths, reports)]
    if not any("shift" in r for r in reports):
        raise VfmauditError("none of the runs has shift sets: run vfmaudit downstream with --shift NAME=FOLDER",
                            param="runs")
    pairs, notes = {}, []
    keys = sorted({(s, t) for r in reports for s, e in r.get("shift", {}).items() for t in e["tasks"]})
    for shift, task in keys:
        points = []
        for i, r in enumerate(reports):
            row = r.get("shift", {}).get(shift, {}).get("tasks", {}).get(task)
            if row is not None:
                points.append({"run": i, "clean_accuracy": row["clean_accuracy"], "shift_accuracy": row["accuracy"]})
        if len(points) < 2:
            continue
        x = logit([p["clean_accuracy"] for p in points])
        y = logit([p["shift_accuracy"] for p in points])
        fit = linear_fit(x, y)
        for p, xi in zip(points, x):
            predicted = None if fit["slope"] is None else float(sigmoid(fit["slope"] * xi + fit["intercept"]))
            p["predicted_shift_accuracy"] = predicted
            p["effective_robustness"] = None if predicted is None else p["shift_accuracy"] - predicted
        if len(points) == 2:
            notes.append(f"{shift}/{task}: two models fix the line, so both lie on it (effective robustness 0)")
        pairs[f"{shift}/{task}"] = {"shift": shift, "task": task, "points": points, "fit_logit": fit}
    return EffectiveRobustness(runs=runs, pairs=pairs, notes=notes)
