"""The CSV tables an audit streams to disk: per_image.csv and per_level.csv.

Their metric columns are the metrics registry's, in its order.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from vfmaudit.metrics import metrics, per_level_metrics

PER_IMAGE = "per_image.csv"
PER_LEVEL = "per_level.csv"


def image_columns() -> list[str]:
    return ["image", "family", *metrics()]


def level_columns() -> list[str]:
    return ["image", "family", "level", *per_level_metrics()]


def write_rows(path: Path, columns: list[str], rows: list[dict], mode: str) -> None:
    """Write (mode "w", with header) or append ("a") rows, durable on return."""
    with open(path, mode, newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        if mode == "w":
            w.writeheader()
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def read_header(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    with open(path, newline="") as f:
        return next(csv.reader(f), None)


def iter_rows(path: Path):
    """Complete rows one at a time (a last line cut off by an interruption is skipped)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if None not in r.values() and None not in r:
                yield r


def read_rows(path: Path) -> list[dict]:
    return list(iter_rows(path))


def filter_rows(path: Path, columns: list[str], keep) -> None:
    """Rewrite path with only the rows for which keep(row) is true, streaming through a temp file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in iter_rows(path):
            if keep(r):
                w.writerow(r)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
