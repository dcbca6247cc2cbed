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

from vfmaudit.downstream.cache import ArrayCache, array_path, save_array
from vfmaudit.downstream.variants import Variant, encode_variant, variant_name
from vfmaudit.engines.ray import map_actor_pool, ray_session
from vfmaudit.perturb.families.imagenet_c import set_options
from vfmaudit.runtime import open_encoder


class VariantEncoder:
    def __init__(self, model: dict, folder: str, images: str, batch_size: int, seed: int, imagenet_c: dict):
        set_options(**imagenet_c)  # the driver's, explicitly: an actor's environment may differ
        self.encoder = open_encoder(**model, batch_size=batch_size, seed=seed)
        self.folder = Path(folder)
        self.images = np.load(array_path(self.folder, images), mmap_mode="r")
        self.batch_size, self.seed = batch_size, seed

    def __call__(self, batch: dict) -> dict:
        for family, level in zip(batch["family"], batch["level"]):
            family, level = str(family), float(level)
            emb = encode_variant(self.encoder, self.images, self.batch_size, family, level, self.seed)
            save_array(emb, array_path(self.folder, variant_name(family, level)))
        return {"done": np.ones(len(batch["family"]), dtype=np.int64)}


def encode_ahead_on_ray(config, cache: ArrayCache, images: str, variants: list[Variant],
                        advance: Callable[[int], None]) -> set[Variant]:
    """A pool of Ray actors encodes the missing variants into the cache before the driver reads them."""
    if not variants:
        return set()
    model = {"model": config.model, "pretrained": config.pretrained, "backend": config.backend,
             "device": config.device}
    with ray_session(config.ray_address):
        for row in map_actor_pool([{"family": f, "level": lv} for f, lv in variants], VariantEncoder,
                                  {"model": model, "folder": str(cache.dir), "images": images,
                                   "batch_size": config.batch_size, "seed": config.seed,
                                   "imagenet_c": {"pixels": config.imagenet_c_pixels, "frost_dir": config.frost_dir}},
                                  config.workers, config.gpus_per_worker):
            advance(int(row["done"]))
    return set(variants)
