"""The audit on a Ray cluster (Ray Data), with exactly the outputs of the local engine.

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
import warnings
from pathlib import Path

import numpy as np

from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.store import ResultsStore
from vfmaudit.audit.tables import PER_IMAGE, PER_LEVEL, write_rows
from vfmaudit.errors import VfmauditError
from vfmaudit.files import write_json

SHARDS = "shards"
ENCODER_FILE = "encoder.json"


def import_ray():
    try:
        import ray  # noqa: PLC0415
        import ray.data  # noqa: F401, PLC0415
    except ImportError:
        raise VfmauditError("the ray engine needs Ray: pip install 'vfmaudit[ray]' (or engine local)",
                            param="engine") from None
    return ray


def shard_plan(item_ids: list[str], shard_size: int, batch_size: int) -> list[list[str]]:
    size = -(-max(shard_size, batch_size) // batch_size) * batch_size  # a multiple of the batch size
    return [item_ids[i:i + size] for i in range(0, len(item_ids), size)]


def _prepare_shard(batch: dict, spec: dict, max_pixels: int) -> dict:
    """CPU task: decode and prepare one shard's images (unreadable ones listed, not fatal)."""
    from vfmaudit.data.sources import item_for_id
    from vfmaudit.errors import ImageDecodeError
    from vfmaudit.models.preprocess import PreprocessSpec

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


class ShardAuditor:
    """Actor: one encoder, built once; perturbs, encodes and scores shards, writes their files."""

    def __init__(self, config: dict, out: str):
        from vfmaudit.audit.runner import open_encoder

        self.config = AuditConfig(**config)
        self.plans = self.config.plan()
        self.encoder = open_encoder(self.config)
        self.out = Path(out) / SHARDS
        write_json(self.encoder.describe(), self.out / ENCODER_FILE)

    def __call__(self, batch: dict) -> dict:
        from vfmaudit.audit.runner import audit_chunks
        from vfmaudit.data.sources import ImageItem
        from vfmaudit.errors import ImageDecodeError

        def loader(image, reason):
            def load():
                if image is None:
                    raise ImageDecodeError(reason)
                return image
            return load

        done = []
        for payload in batch["payload"]:
            shard = pickle.loads(payload)
            # unreadable images keep their place, so chunks (and rows) fall as in the local engine
            items = [ImageItem(i, loader(img, reason)) for i, img, reason in shard["entries"]]
            image_rows, level_rows, skipped = [], [], []
            for chunk in audit_chunks(items, self.encoder, self.plans, self.config.batch_size, self.config.seed):
                image_rows += chunk.image_rows
                level_rows += chunk.level_rows
                skipped += chunk.skipped
            write_json({"image_rows": image_rows, "level_rows": level_rows, "skipped": skipped},
                       self.out / f"{shard['shard']:05d}.json")
            done.append(len(items))
        return {"shard": np.asarray(batch["shard"]), "images": np.asarray(done)}


def run_ray_locked(config: AuditConfig, plans, items, progress):
    """Run every shard without a file on Ray, merge the shard files, write the report (out is locked)."""
    from vfmaudit.audit.runner import finish_report

    ray = import_ray()
    spec = _preprocess_spec(config)  # checks the model (spec, weights, file) here, not in every worker
    store = ResultsStore(config.out, [p.name for p in plans]).open(
        config.fingerprint(), resume=config.resume, overwrite=config.overwrite)
    shard_dir = Path(config.out) / SHARDS
    if not config.resume:
        for f in shard_dir.glob("*.json"):
            f.unlink()
    shard_dir.mkdir(parents=True, exist_ok=True)
    shards = shard_plan([it.id for it in items], config.shard_size, config.batch_size)
    todo = [(k, ids) for k, ids in enumerate(shards) if not (shard_dir / f"{k:05d}.json").exists()]
    progress("start", sum(len(ids) for _, ids in todo))
    reused = len(shards) - len(todo)
    if todo:
        import logging

        for name in ("ray", "ray.data"):  # keep the console to vfmaudit's own lines
            logging.getLogger(name).setLevel(logging.WARNING)
        started = not ray.is_initialized()
        if started:
            ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True, logging_level="ERROR")
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ds = ray.data.from_items([{"shard": k, "ids": json.dumps(ids)} for k, ids in todo],
                                     override_num_blocks=len(todo))
            ds = ds.map_batches(_prepare_shard, batch_size=1, fn_kwargs={"spec": spec, "max_pixels": config.max_pixels},
                                batch_format="numpy", num_cpus=0)  # light: never waits behind the encoders
            fields = dict(vars(config))
            fields.update(engine="local", resume=False, overwrite=False)
            with warnings.catch_warnings():  # Ray collects the restart options under a deprecated name
                warnings.simplefilter("ignore")
                ds = ds.map_batches(ShardAuditor, batch_size=1, batch_format="numpy", concurrency=config.workers,
                                    num_cpus=1, num_gpus=config.gpus_per_worker or None,
                                    fn_constructor_kwargs={"config": fields, "out": str(config.out)},
                                    max_restarts=3, max_task_retries=3)  # a dead worker is restarted, its shard redone
            for row in ds.iter_rows():
                progress("advance", int(row["images"]))
        finally:
            if started:
                ray.shutdown()
    encoder_desc = json.loads((shard_dir / ENCODER_FILE).read_text())
    _merge(store, shard_dir, len(shards))
    return finish_report(config, plans, {**encoder_desc, "engine": "ray", "workers": config.workers,
                                         "shards": len(shards), "shards_reused": reused}, store)


def _preprocess_spec(config: AuditConfig) -> dict:
    """The model's preprocessing, read without building the model where the artefact says it."""
    from vfmaudit.artefact import ArtefactInfo, read_onnx_info, read_sidecar
    from vfmaudit.runtime import resolve_backend

    backend = resolve_backend(config.backend, config.model)
    if backend.name == "onnx":
        return read_onnx_info(config.model).preprocess.to_dict()
    if backend.name == "tensorrt":
        return ArtefactInfo.from_props(read_sidecar(config.model).get("vfmaudit", {}), config.model).preprocess.to_dict()
    from vfmaudit.models import build_model

    return build_model(config.model, pretrained=config.pretrained, seed=config.seed).preprocess.to_dict()


def _merge(store: ResultsStore, shard_dir: Path, n_shards: int) -> None:
    """The shard files, in shard order, become the tables the local engine writes."""
    image_rows, level_rows = [], []
    store.skipped.clear()
    for k in range(n_shards):
        data = json.loads((shard_dir / f"{k:05d}.json").read_text())
        image_rows += data["image_rows"]
        level_rows += data["level_rows"]
        for item_id, reason in data["skipped"]:
            store.skipped[item_id] = reason
    write_rows(store.dir / PER_LEVEL, store.level_columns, level_rows, "w")
    write_rows(store.dir / PER_IMAGE, store.image_columns, image_rows, "w")
    (store.dir / "skipped.jsonl").write_text("".join(json.dumps({"input": k, "reason": v}) + "\n"
                                                     for k, v in store.skipped.items()))
