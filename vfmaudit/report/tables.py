"""The CSV tables an audit streams to disk: per_image.csv and per_level.csv."""

from __future__ import annotations

import csv
import os
from pathlib import Path

PER_IMAGE = "per_image.csv"
PER_LEVEL = "per_level.csv"
IMAGE_COLUMNS = ["image", "family", "cosine", "euclidean", "divergence_radius"]
LEVEL_COLUMNS = ["image", "family", "level", "cosine", "euclidean"]


def write_rows(path: Path, columns: list[str], rows: list[dict], mode: str) -> None:
    """Write (mode "w", with header) or append ("a") rows, durable on return."""
    with open(path, mode, newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        if mode == "w":
            w.writeheader()
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def read_rows(path: Path) -> list[dict]:
    """All complete rows; a last line cut off by an interruption is ignored."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if None not in r.values() and None not in r]
