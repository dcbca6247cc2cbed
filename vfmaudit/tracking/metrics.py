"""What a command measured, as MLflow metrics: the gate's metric names where the gate knows the
measurement, per-level series as steps, and the numbers of any other report flattened to dotted names."""

from __future__ import annotations

import math
import re

# the command -> the gate measurement whose metric paths name its numbers (vfmaudit/gate/measurements)
MEASUREMENT_OF = {"audit": "audit", "attack": "attack", "downstream": "downstream", "calibrate": "int8"}
# report keys that are provenance, not measurements
_NOT_MEASURED = {"schema_version", "seed", "versions", "fingerprint", "created", "inputs", "skipped", "warnings",
                 "small_inputs", "cpu_cores", "memory_gb", "levels", "domain", "identity", "iterations", "rounds",
                 "embedding_dim", "n", "step", "epoch", "level", "batch_size", "batch", "workers", "threads", "size"}
# integer row fields that tell rows apart (bench rows: backend, precision, batch size)
_ROW_INTS = {"batch_size": "b", "batch": "b", "workers": "w", "size": "px", "threads": "t", "images": "n"}
_ROW_SKIP = {"status", "error", "reason", "device", "units", "note"}
MAX_METRICS = 5000


def metric_key(name: str) -> str:
    """A name MLflow accepts (letters, digits, _ - . / space :): `@` is written `_at_` (overlap@5 -> overlap_at_5)."""
    return re.sub(r"[^/\w.\- :]", "_", name.replace("@", "_at_"))


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def gate_values(command: str, report: dict) -> dict[str, float]:
    """The report's numbers under the gate's metric names (audit.jpeg.divergence_radius.p95), or {}."""
    from vfmaudit.gate.measurements import get_measurement, measurements

    name = MEASUREMENT_OF.get(command)
    if name is None or name not in measurements():
        return {}
    try:
        values = get_measurement(name).values(report)
    except (KeyError, TypeError, IndexError):  # a report of another shape (an older schema): flattened instead
        return {}
    return {k: float(v) for k, v in values.items() if _finite(v)}


def _row_label(row: dict, index: int) -> str:
    parts = [str(v) for k, v in row.items() if isinstance(v, str) and k not in _ROW_SKIP and len(v) <= 40]
    parts += [f"{short}{row[k]}" for k, short in _ROW_INTS.items() if isinstance(row.get(k), int)]
    return ".".join(parts) or str(index)


def flatten(report, prefix: str) -> dict[str, float]:
    """Every finite number of a JSON report under its dotted path; rows of a list named by their fields."""
    found: dict[str, float] = {}

    def walk(node, path: str) -> None:
        if len(found) >= MAX_METRICS:
            return
        if isinstance(node, dict):
            for k, v in node.items():
                if k not in _NOT_MEASURED:
                    walk(v, f"{path}.{k}")
        elif isinstance(node, list) and node and all(isinstance(r, dict) for r in node):
            if path.endswith(".rows"):  # bench rows: named by what they measured (torch.fp32.b8)
                path = path[:-len(".rows")]
            seen: set[str] = set()
            for i, row in enumerate(node):
                label = _row_label(row, i)
                label = label if label not in seen else f"{label}.{i}"
                seen.add(label)
                walk(row, f"{path}.{label}")
        elif _finite(node):
            found[path] = float(node)

    walk(report, prefix)
    return found


def level_series(report: dict, prefix: str) -> dict[str, list[float]]:
    """Per-level means of an audit report (families.F.per_level) as series: step k = the k-th level."""
    series: dict[str, list[float]] = {}
    for fam, entry in (report.get("families") or {}).items():
        rows = entry.get("per_level") if isinstance(entry, dict) else None
        if not isinstance(rows, list):
            continue
        for key in {k for row in rows if isinstance(row, dict) for k in row if k != "level"}:
            values = [row.get(key) for row in rows]
            if any(_finite(v) for v in values):
                metric, _, stat = key.rpartition("_")
                series[f"{prefix}.{fam}.{metric or key}.level_{stat}"] = values
    return series


def downstream_series(report: dict) -> dict[str, list[float]]:
    """Downstream's per-level task metrics (tasks.T.families.F.M: one value per level) as series."""
    series: dict[str, list[float]] = {}
    for task, entry in (report.get("tasks") or {}).items():
        for fam, rows in (entry.get("families") or {}).items():
            for metric, values in rows.items() if isinstance(rows, dict) else ():
                if isinstance(values, list) and any(_finite(v) for v in values):
                    series[f"downstream.{task}.{fam}.{metric}"] = values
    return series


def training_series(log_csv) -> dict[str, list[float]]:
    """A training log (finetune's train_log.csv: one row per step) as series: finetune.train.<column>."""
    import csv
    from pathlib import Path

    if not Path(log_csv).is_file():
        return {}
    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    series: dict[str, list[float]] = {}
    for column in (rows[0] if rows else {}):
        if column in ("step", "epoch"):
            continue
        try:
            series[f"finetune.train.{column}"] = [float(r[column]) for r in rows]
        except (TypeError, ValueError):  # a column that is not numbers
            continue
    return series


def command_metrics(command: str, report: dict | None) -> tuple[dict[str, float], dict[str, list]]:
    """(scalars, series) to log for one command's report: names sanitised for MLflow."""
    if not report:
        return {}, {}
    scalars = gate_values(command, report) or flatten(report, command)
    series: dict[str, list] = {}
    if command == "audit":
        series = level_series(report, "audit")
    elif command == "downstream":
        series = downstream_series(report)
    return ({metric_key(k): v for k, v in scalars.items()},
            {metric_key(k): v for k, v in series.items()})
