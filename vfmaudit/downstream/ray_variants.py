"""Downstream on Ray: the perturbed test variants (most of the encoding) spread over an actor pool.

Each actor builds the encoder once, reads the prepared test images from the run's folder (a shared
filesystem on a cluster), perturbs and encodes one variant per task, and writes its embeddings by
an atomic rename into the same cache the local engine uses; the driver then finds them there, so
the tasks, the report and resume are the local engine's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit.audit.ray_engine import import_ray


class VariantEncoder:
    def __init__(self, model: dict, folder: str, images: str, batch_size: int, seed: int):
        from vfmaudit.audit import AuditConfig
        from vfmaudit.audit.runner import open_encoder
        from vfmaudit.downstream.cache import array_path

        self.encoder = open_encoder(AuditConfig(**model, batch_size=batch_size, seed=seed))
        self.folder = Path(folder)
        self.images = np.load(array_path(self.folder, images), mmap_mode="r")
        self.batch_size, self.seed = batch_size, seed

    def __call__(self, batch: dict) -> dict:
        from vfmaudit import perturb
        from vfmaudit.downstream.cache import array_path, save_array
        from vfmaudit.downstream.runner import _encode, variant_name

        for family, level in zip(batch["family"], batch["level"]):
            family, level = str(family), float(level)
            emb = _encode(self.encoder, self.images, self.batch_size,
                          lambda x: perturb.apply(x, family, level, seed=self.seed))
            save_array(emb, array_path(self.folder, variant_name(family, level)))
        return {"done": np.ones(len(batch["family"]), dtype=np.int64)}


def encode_variants_on_ray(config, folder: Path, images: str, variants: list[tuple[str, float]],
                           advance: Callable[[int], None]) -> None:
    if not variants:
        return
    import logging
    import warnings

    ray = import_ray()
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    started = not ray.is_initialized()
    if started:
        ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = ray.data.from_items([{"family": f, "level": lv} for f, lv in variants],
                                 override_num_blocks=len(variants))
        model = {"model": config.model, "pretrained": config.pretrained, "backend": config.backend,
                 "device": config.device}
        with warnings.catch_warnings():  # Ray collects the restart options under a deprecated name
            warnings.simplefilter("ignore")
            ds = ds.map_batches(VariantEncoder, batch_size=1, batch_format="numpy", concurrency=config.workers,
                                num_cpus=1, num_gpus=config.gpus_per_worker or None,
                                fn_constructor_kwargs={"model": model, "folder": str(folder), "images": images,
                                                       "batch_size": config.batch_size, "seed": config.seed},
                                max_restarts=3, max_task_retries=3)
        for row in ds.iter_rows():
            advance(int(row["done"]))
    finally:
        if started:
            ray.shutdown()
