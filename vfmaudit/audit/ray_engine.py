"""The audit on a Ray cluster, with exactly the outputs of the local engine.

The images are cut into shards (a multiple of the batch size, so rows come out in the local
engine's order). A CPU stage of Ray tasks decodes and prepares each shard's images; an actor pool
(one encoder per actor, built once, on `gpus_per_worker`) perturbs, encodes and scores them with
the local engine's code and writes the shard's rows to OUT/shards/NNNNN.json by an atomic rename.
A shard file is the unit of resume and of retry: a worker that dies is restarted by Ray and its
shard redone; `resume` after the driver died runs only the shards without a file. When every shard
is done, the driver merges them into per_image.csv, per_level.csv and report.json.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vfmaudit.audit.chunks import audit_chunks
from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.report_json import finish_report
from vfmaudit.audit.result import AuditResult, ProgressFn
from vfmaudit.audit.store import ResultsStore
from vfmaudit.audit.shard_merge import SHARDS, merge_shards
from vfmaudit.audit import ray_data_engine
from vfmaudit.data.source import ImageSource
from vfmaudit.data.sources import ImageItem, item_for_id, sample_items
from vfmaudit.engines import shard_path, shard_plan, write_shard
from vfmaudit.engines.ray import check_reachable, map_actor_pool, ray_session
from vfmaudit.errors import ImageDecodeError
from vfmaudit.files import write_json
from vfmaudit.models.preprocess import PreprocessSpec
from vfmaudit.runtime import Encoder, read_preprocess

ENCODER_FILE = "encoder.json"


def _prepare_shard(batch: dict, spec: dict, max_pixels: int) -> dict:
    """CPU task: decode and prepare one shard's images (unreadable ones listed, not fatal)."""
    preprocess = PreprocessSpec.from_dict(spec)
    payloads = []
    for shard, ids_json in zip(batch["shard"], batch["ids"]):
        entries = []  # (id, image or None, reason or None), in the shard's order
        for item_id in json.loads(ids_json):
            item = item_for_id(item_id, max_pixels)
            try:
                if item is None:
                    raise ImageDecodeError(f"cannot be read again from {item_id}")
                entries.append((item_id, preprocess.prepare(item.load()), None))
            except (ImageDecodeError, OSError, ValueError, MemoryError) as e:
                entries.append((item_id, None, str(e)))
        payloads.append(pickle.dumps({"shard": int(shard), "entries": entries}))
    return {"shard": np.asarray(batch["shard"]), "payload": np.asarray(payloads, dtype=object)}


def _loader(image, reason):
    def load():
        if image is None:
            raise ImageDecodeError(reason)
        return image
    return load


class ShardAuditor:
    """Actor: one encoder, built once; perturbs, encodes and scores shards, writes their files."""

    def __init__(self, config: dict, out: str):
        self.config = AuditConfig(**config)
        self.plans = self.config.plan()
        self.encoder = self.config.open_encoder()
        self.out = Path(out) / SHARDS
        write_json(self.encoder.describe(), self.out / ENCODER_FILE)

    def __call__(self, batch: dict) -> dict:
        done = []
        for payload in batch["payload"]:
            shard = pickle.loads(payload)
            # unreadable images keep their place, so chunks (and rows) fall as in the local engine
            items = [ImageItem(i, _loader(img, reason)) for i, img, reason in shard["entries"]]
            image_rows, level_rows, skipped, small = [], [], [], []
            for chunk in audit_chunks(items, self.encoder, self.plans, self.config.batch_size, self.config.seed,
                                      self.config.protocol):
                image_rows += chunk.image_rows
                level_rows += chunk.level_rows
                skipped += chunk.skipped
                small += chunk.small
            write_shard(self.out, shard["shard"], {"image_rows": image_rows, "level_rows": level_rows,
                                                   "skipped": skipped, "small": small})
            done.append(len(items))
        return {"shard": np.asarray(batch["shard"]), "images": np.asarray(done)}


def prepare(config: AuditConfig, encoder: Encoder | None) -> dict:  # noqa: ARG001 - the actors build their own
    """Before the output folder is touched: the model's preprocessing, read once here (which checks the
    model spec, weights or file) rather than failing in every worker, and whether the cluster answers."""
    check_reachable(config.ray_address)
    return read_preprocess(config.model, config.pretrained, config.backend, config.seed).to_dict()


def run(config: AuditConfig, plans, source: ImageSource | None, spec: dict, progress: ProgressFn) -> AuditResult:
    """Run every shard without a file on Ray, merge the shard files, write the report (out is locked).
    Sharded sources (WebDataset, Parquet) run as a Ray Data pipeline that reads the shards where they are."""
    if source is not None and source.sharded:
        return ray_data_engine.run(config, plans, source, spec, progress)
    items = list(source.items()) if source is not None else sample_items()
    store = ResultsStore(config.out, [p.name for p in plans]).open(
        config.fingerprint(), resume=config.resume, overwrite=config.overwrite)
    shard_dir = Path(config.out) / SHARDS
    if not config.resume:
        for f in shard_dir.glob("*.json"):
            f.unlink()
    shard_dir.mkdir(parents=True, exist_ok=True)
    shards = shard_plan([it.id for it in items], config.shard_size, config.batch_size)
    todo = [(k, ids) for k, ids in enumerate(shards) if not shard_path(shard_dir, k).exists()]
    progress("start", sum(len(ids) for _, ids in todo))
    if todo:
        fields = asdict(config)
        fields.update(engine="local", resume=False, overwrite=False)
        with ray_session(config.ray_address):
            for row in map_actor_pool([{"shard": k, "ids": json.dumps(ids)} for k, ids in todo], ShardAuditor,
                                      {"config": fields, "out": str(config.out)}, config.workers,
                                      config.gpus_per_worker, prepare=_prepare_shard,
                                      prepare_kwargs={"spec": spec, "max_pixels": config.max_pixels}):
                progress("advance", int(row["images"]))
    encoder_desc = json.loads((shard_dir / ENCODER_FILE).read_text())
    merge_shards(store, shard_dir, len(shards))
    return finish_report(config, plans, {**encoder_desc, "engine": "ray", "workers": config.workers,
                                         "shards": len(shards), "shards_reused": len(shards) - len(todo)}, store,
                         source)
