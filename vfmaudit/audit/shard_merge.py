"""Shard files (OUT/shards/KKKKK.json) merged into the tables the local engine writes: the last step
of both Ray pipelines."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.audit.store import ResultsStore
from vfmaudit.audit.tables import PER_IMAGE, PER_LEVEL, write_rows
from vfmaudit.engines import read_shard

SHARDS = "shards"


def merge_shards(store: ResultsStore, shard_dir: Path, n_shards: int) -> None:
    """The shard files, in shard order, become the tables the local engine writes (one shard in
    memory at a time)."""
    store.skipped.clear()
    store.small.clear()
    write_rows(store.dir / PER_LEVEL, store.level_columns, [], "w")
    write_rows(store.dir / PER_IMAGE, store.image_columns, [], "w")
    for k in range(n_shards):
        data = read_shard(shard_dir, k)
        write_rows(store.dir / PER_LEVEL, store.level_columns, data["level_rows"], "a")
        write_rows(store.dir / PER_IMAGE, store.image_columns, data["image_rows"], "a")
        for item_id, reason in data["skipped"]:
            store.skipped[item_id] = reason
        for item_id, h, w in data.get("small", []):  # shards of an older version have none
            store.small[item_id] = [h, w]
    store.write_notes()
