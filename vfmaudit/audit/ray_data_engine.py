"""The audit on Ray as a Ray Data pipeline, with the local engine's outputs.

    shards ──► read (CPU tasks: a shard streamed from where it is, or a shard of image files read by
               id, decoded and cut into chunks of batch_size)
           ──► perturb (CPU tasks: decode, prepare, every family's variants of a chunk)
           ──► encode + score (an actor pool, one encoder per actor, num_gpus per actor)
           ──► OUT/shards/parts/KKKKK-JJJJJ.json per chunk, by atomic rename

The CPU stages and the encode stage are sized apart (Ray Data's tasks against `workers` actors),
because on a GPU node one GPU encodes faster than the node's CPUs perturb. Nothing needs a shared
filesystem but the output folder: workers read the shards through fsspec. When a shard's chunks
are all in, the driver merges them into OUT/shards/KKKKK.json (the unit of resume: a resumed run
reads no finished shard again) and at the end into per_image.csv, per_level.csv and report.json,
in the source's order. A killed actor is restarted by Ray Data and its chunk redone.
"""

from __future__ import annotations

import json
import pickle
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vfmaudit.audit.chunks import score_units
from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.pipeline import chunk_units
from vfmaudit.audit.report_json import finish_report
from vfmaudit.audit.result import AuditResult, ProgressFn
from vfmaudit.audit.shard_merge import SHARDS, merge_shards
from vfmaudit.audit.store import ResultsStore
from vfmaudit.data.files_kind import remote_item
from vfmaudit.data.source import ImageSource, SourceOptions, source_kinds
from vfmaudit.data.sources import ImageItem, item_for_id, sample_items
from vfmaudit.data.storage import is_url
from vfmaudit.errors import ImageDecodeError
from vfmaudit.engines import shard_path, shard_plan, write_shard
from vfmaudit.engines.ray import ray_session, stream_dataset
from vfmaudit.files import write_json
from vfmaudit.models.preprocess import PreprocessSpec

PARTS = "parts"
ENCODER_FILE = "encoder.json"


def _read_shard(row: dict, options: dict, batch_size: int) -> list[dict]:
    """CPU task: one shard, streamed from its store (or its files, by id) and decoded, as chunks of
    (id, image or None, reason)."""
    source_options = SourceOptions(**options)
    if row["shard"] is not None:
        items = pickle.loads(row["shard"]).items(source_options)
    else:
        items = (_item_of(i, source_options) for i in json.loads(row["ids"]))
    chunks, current = [], []
    for item in items:
        try:
            current.append((item.id, item.load(), None))
        except (ImageDecodeError, OSError, ValueError, MemoryError) as e:  # listed, as the local engine lists it
            current.append((item.id, None, str(e)))
        if len(current) == batch_size:
            chunks.append(current)
            current = []
    if current or not chunks:
        chunks.append(current)
    return [{"k": row["k"], "chunk": j, "last": j == len(chunks) - 1, "entries": pickle.dumps(c)}
            for j, c in enumerate(chunks)]


def _item_of(item_id: str, options: SourceOptions) -> ImageItem:
    """An image file (or built-in sample) again from its id, on a worker."""
    if is_url(item_id):
        return remote_item(item_id, options)
    item = item_for_id(item_id, options.max_pixels)
    return item if item is not None else ImageItem(item_id, _loaded(None, f"cannot be read again from {item_id}"))


def _work(config: AuditConfig, source: ImageSource | None) -> list[dict]:
    """The pipeline's shards, in the source's order: a sharded kind's own, file lists cut by shard_size."""
    work: list[dict] = []
    shards = source.shards if source is not None else [None]
    for shard in shards:
        if shard is not None and source_kinds()[shard.kind].sharded:
            work.append({"shard": pickle.dumps(shard), "ids": "", "name": shard.name})
            continue
        items = shard.items(source.options) if shard is not None else sample_items()
        for ids in shard_plan([it.id for it in items], config.shard_size, config.batch_size):
            work.append({"shard": None, "ids": json.dumps(ids), "name": ""})
    return [{"k": k, **w} for k, w in enumerate(work)]


def _loaded(image, reason):
    def load():
        if image is None:
            raise ImageDecodeError(reason)
        return image
    return load


def _perturb_chunk(batch: dict, spec: dict, plans: bytes, seed: int, protocol: str | None) -> dict:
    """CPU task: prepare a chunk's images at the model's size, then every family's variants."""
    preprocess, family_plans = PreprocessSpec.from_dict(spec), pickle.loads(plans)
    units = []
    for entries in batch["entries"]:
        items = [ImageItem(i, _loaded(img, reason)) for i, img, reason in pickle.loads(entries)]
        units.append(pickle.dumps(list(chunk_units(items, preprocess, family_plans, seed, protocol))))
    return {"k": batch["k"], "chunk": batch["chunk"], "last": batch["last"], "units": np.asarray(units, dtype=object)}


class ChunkScorer:
    """Actor: one encoder, built once; encodes and scores chunks and writes each chunk's rows."""

    def __init__(self, config: dict, out: str):
        self.config = AuditConfig(**config)
        self.plans = self.config.plan()
        self.encoder = self.config.open_encoder()
        self.parts = Path(out) / SHARDS / PARTS
        write_json(self.encoder.describe(), Path(out) / SHARDS / ENCODER_FILE)

    def __call__(self, batch: dict) -> dict:
        images = []
        for k, j, units in zip(batch["k"], batch["chunk"], batch["units"]):
            rows = {"image_rows": [], "level_rows": [], "skipped": [], "small": []}
            for done in score_units(pickle.loads(units), self.encoder, self.plans, self.config.batch_size):
                rows["image_rows"] += done.image_rows
                rows["level_rows"] += done.level_rows
                rows["skipped"] += done.skipped
                rows["small"] += done.small
            write_json(rows, _part_path(self.parts, int(k), int(j)))
            images.append(len({r["image"] for r in rows["image_rows"]}) + len(rows["skipped"]))
        return {"k": batch["k"], "chunk": batch["chunk"], "last": batch["last"], "images": np.asarray(images)}


def _part_path(folder: Path, k: int, j: int) -> Path:
    return folder / f"{k:05d}-{j:05d}.json"


def _merge_parts(shard_dir: Path, k: int, n_chunks: int) -> None:
    """A shard's chunk files, in order, become its shard file (atomically); the chunk files go."""
    parts = [_part_path(shard_dir / PARTS, k, j) for j in range(n_chunks)]
    merged: dict = defaultdict(list)
    for p in parts:
        for key, rows in json.loads(p.read_text()).items():
            merged[key] += rows
    write_shard(shard_dir, k, dict(merged))
    for p in parts:
        p.unlink(missing_ok=True)


def run(config: AuditConfig, plans, source: ImageSource | None, spec: dict, progress: ProgressFn) -> AuditResult:
    """Every shard without a file through the pipeline, then the merged tables and report (out is locked)."""
    store = ResultsStore(config.out, [p.name for p in plans]).open(
        config.fingerprint(), resume=config.resume, overwrite=config.overwrite)
    shard_dir = Path(config.out) / SHARDS
    if not config.resume:
        for f in [*shard_dir.glob("*.json"), *shard_dir.glob(f"{PARTS}/*.json")]:
            f.unlink()
    (shard_dir / PARTS).mkdir(parents=True, exist_ok=True)
    work = _work(config, source)
    todo = [w for w in work if not shard_path(shard_dir, w["k"]).exists()]
    progress("start", None if source is not None and source.sharded else
             sum(len(json.loads(w["ids"])) for w in todo))
    if todo:
        fields = asdict(config)
        fields.update(engine="local", resume=False, overwrite=False)
        options = source.options if source is not None else SourceOptions()
        seen: dict[int, set[int]] = defaultdict(set)
        last: dict[int, int] = {}
        with ray_session(config.ray_address):
            for row in stream_dataset(
                    [{"k": w["k"], "shard": w["shard"], "ids": w["ids"]} for w in todo],
                    _read_shard, {"options": {"image_key": options.image_key, "label_key": options.label_key,
                                              "storage_options": options.storage_options,
                                              "max_pixels": config.max_pixels},
                                  "batch_size": config.batch_size},
                    _perturb_chunk, {"spec": spec, "plans": pickle.dumps(plans), "seed": config.seed,
                                     "protocol": config.protocol},
                    ChunkScorer, {"config": fields, "out": str(config.out)}, config.workers, config.gpus_per_worker):
                k, j = int(row["k"]), int(row["chunk"])
                seen[k].add(j)
                if row["last"]:
                    last[k] = j
                if k in last and len(seen[k]) == last[k] + 1:  # every chunk of shard k is in
                    _merge_parts(shard_dir, k, last[k] + 1)
                progress("advance", int(row["images"]))
    encoder_desc = json.loads((shard_dir / ENCODER_FILE).read_text())
    merge_shards(store, shard_dir, len(work))
    reused = [w for w in work if w not in todo]
    store.shards_done_before = {w["name"] for w in reused if w["name"]}
    return finish_report(config, plans, {**encoder_desc, "engine": "ray", "pipeline": "ray data",
                                         "workers": config.workers, "shards": len(work),
                                         "shards_reused": len(reused)}, store, source)
