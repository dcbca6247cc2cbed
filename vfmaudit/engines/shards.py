"""Shard files: the unit of work, of retry and of resume on a cluster, each written by an atomic rename."""

from __future__ import annotations

import json
from pathlib import Path

from vfmaudit.files import write_json


def shard_plan(item_ids: list[str], shard_size: int, batch_size: int) -> list[list[str]]:
    """Consecutive shards of a multiple of the batch size, so rows come out in the local engine's order."""
    size = -(-max(shard_size, batch_size) // batch_size) * batch_size
    return [item_ids[i:i + size] for i in range(0, len(item_ids), size)]


def shard_path(folder: str | Path, k: int) -> Path:
    return Path(folder) / f"{k:05d}.json"


def write_shard(folder: str | Path, k: int, data: dict) -> Path:
    """A reader (or a resumed driver) sees a whole shard file or none."""
    return write_json(data, shard_path(folder, k))


def read_shard(folder: str | Path, k: int) -> dict:
    return json.loads(shard_path(folder, k).read_text())
