"""Natural distribution shift: labelled sets of other images of the training classes (ImageNet-R,
-Sketch, -V2 style), evaluated with the classifiers fitted on the clean training split.

A shift set may hold a subset of the classes (ImageNet-R and -A hold 200 of ImageNet's 1000): the
prediction is then restricted to that subset, as those benchmarks do (the probe's and zero-shot's
probabilities renormalised over the subset's columns, kNN's votes over the training images of the
subset's classes). A class map (folder name -> class name: a JSON object, or a CSV/TSV of two
columns) names the folders, e.g. WordNet ids -> the class names the training set uses.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.metrics import expected_calibration_error


def read_class_map(path: str | None) -> dict[str, str]:
    """folder name -> class name, from a JSON object or a CSV/TSV of two columns (a header is allowed)."""
    if not path:
        return {}
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as e:
        raise VfmauditError(f"class_map {path} cannot be read ({e.strerror or e}); pass a JSON object or a CSV of "
                            "folder,class", param="class_map") from None
    if p.suffix.lower() == ".json":
        try:
            mapping = json.loads(text)
        except ValueError as e:
            raise VfmauditError(f"class_map {path} is not valid JSON ({e})", param="class_map") from None
        if not isinstance(mapping, dict):
            raise VfmauditError(f"class_map {path} must be a JSON object of folder name -> class name",
                                param="class_map")
        return {str(k): str(v) for k, v in mapping.items()}
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter) if r and any(c.strip() for c in r)]
    if any(len(r) < 2 for r in rows):
        raise VfmauditError(f"class_map {path}: every row needs two columns, folder and class name",
                            param="class_map")
    return {r[0].strip(): r[1].strip() for r in rows}


def class_indices(names: list[str], train_classes: list[str], class_map: dict[str, str], spec: str) -> np.ndarray:
    """Each shift class's index among the training classes (mapped names first); unknown ones: one line."""
    index = {c: i for i, c in enumerate(train_classes)}
    mapped = [class_map.get(n, n) for n in names]
    missing = [n for n, m in zip(names, mapped) if m not in index]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise VfmauditError(f"in the set {spec}, classes {shown} are not training classes; name the folders as the "
                            "training classes are named, or pass class_map FILE (folder,class)",
                            param=("shift", "class_map"))
    return np.array([index[m] for m in mapped], dtype=int)


def shift_results(classifiers: dict, train: np.ndarray, y_train: np.ndarray, knn_predict, shift: np.ndarray,
                  y_shift: np.ndarray, n_classes: int, clean_results: dict) -> dict:
    """Per classifier: accuracy (and ECE for probabilities) on the shift set, the prediction
    restricted to the classes the set holds, and the drop from the clean test accuracy."""
    out = {}
    subset = np.unique(y_shift)
    full = len(subset) == n_classes
    for task, (predict, params, *_) in classifiers.items():
        if task.startswith("knn_"):
            keep = np.isin(y_train, subset)
            pred = knn_predict(train[keep], y_train[keep], shift, params["k"])
            row = {"accuracy": float(np.mean(pred == y_shift))}
        else:
            proba = np.asarray(predict(shift))[:, subset]
            proba = proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-300)
            local = {c: j for j, c in enumerate(subset)}
            y_local = np.array([local[c] for c in y_shift])
            row = {"accuracy": float(np.mean(proba.argmax(axis=1) == y_local)),
                   "ece": expected_calibration_error(proba, y_local)}
        clean = clean_results[task]["clean"]["accuracy"]
        row.update({"clean_accuracy": clean, "accuracy_drop": clean - row["accuracy"]})
        out[task] = row
    return {"classes": int(len(subset)), "restricted_to_subset": not full, "tasks": out}
