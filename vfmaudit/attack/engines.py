"""Where the shards of an attack run: this process, or an actor pool on a Ray cluster.

`ATTACK_ENGINES` has one entry per engine of `vfmaudit.engines`. Each takes the shards still to do
and leaves their adversarial images in the store; the driver then encodes them itself, so the
reported numbers do not depend on the engine. On Ray each actor builds the attacked model once,
reads the prepared clean images and their embeddings from OUT/shards/ (a shared filesystem on a
cluster), attacks one shard per call and writes its file by an atomic rename; a worker that dies
is restarted by Ray and its shard redone.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit.attack.attacker import Attacker
from vfmaudit.attack.store import AttackStore

CLEAN, EMBEDDINGS = "clean.npy", "clean_embeddings.npy"


def attack_shard(attacker: Attacker, clean: np.ndarray, e_clean: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    """The shard [start, stop) batch by batch -> uint8 (len(eps), stop - start, H, W, 3)."""
    start, stop = span
    size = attacker.config.batch_size
    parts = [attacker.attack_batch(np.asarray(clean[b:min(b + size, stop)]), np.asarray(e_clean[b:min(b + size, stop)]),
                                   b // size) for b in range(start, stop, size)]
    return np.concatenate(parts, axis=1)


def attack_locally(config, attacker: Attacker, clean: np.ndarray, e_clean: np.ndarray, store: AttackStore,
                   todo: list[int], spans: list[tuple[int, int]], advance: Callable[[int], None]) -> None:
    for k in todo:
        store.save(k, attack_shard(attacker, clean, e_clean, spans[k]))
        advance(spans[k][1] - spans[k][0])


class ShardAttacker:
    """Ray actor: the attacked model built once; one shard per call, written to the store's folder."""

    def __init__(self, config: dict, folder: str):
        from vfmaudit.attack.config import AttackConfig

        self.attacker = Attacker(AttackConfig(**config))
        self.store = AttackStore(Path(folder))
        self.clean = np.load(Path(folder) / CLEAN, mmap_mode="r")
        self.e_clean = np.load(Path(folder) / EMBEDDINGS, mmap_mode="r")

    def __call__(self, batch: dict) -> dict:
        for k, start, stop in zip(batch["shard"], batch["start"], batch["stop"]):
            self.store.save(int(k), attack_shard(self.attacker, self.clean, self.e_clean, (int(start), int(stop))))
        return {"images": np.asarray(batch["stop"]) - np.asarray(batch["start"])}


def attack_on_ray(config, attacker: Attacker, clean: np.ndarray, e_clean: np.ndarray, store: AttackStore,
                  todo: list[int], spans: list[tuple[int, int]], advance: Callable[[int], None]) -> None:
    from vfmaudit.downstream.cache import save_array
    from vfmaudit.engines.ray import map_actor_pool, ray_session

    if not todo:
        return
    save_array(clean, store.folder / CLEAN)
    save_array(e_clean, store.folder / EMBEDDINGS)
    items = [{"shard": k, "start": spans[k][0], "stop": spans[k][1]} for k in todo]
    with ray_session(config.ray_address):
        for row in map_actor_pool(items, ShardAttacker, {"config": asdict(config), "folder": str(store.folder)},
                                  config.workers, config.gpus_per_worker):
            advance(int(row["images"]))


ATTACK_ENGINES = {"local": attack_locally, "ray": attack_on_ray}
