"""Where the shards of an attack run: this process, or an actor pool on a Ray cluster.

`ATTACK_ENGINES` has one entry per engine of `vfmaudit.engines`. Each takes a job (what one shard
of images costs: `AttackJob` for PGD, APGD and Square, `search_run.SearchJob` for the edit search)
and the shards still to do, and leaves their results in the store; the driver then reads them, so
the reported numbers do not depend on the engine. On Ray each actor builds the job once (the
attacked model; for the search also the oracle and the classifier), attacks one shard per call and
writes its files by an atomic rename into OUT/shards/ (a shared filesystem on a cluster); a worker
that dies is restarted by Ray and its shard redone.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit.attack.attacker import Attacker
from vfmaudit.attack.store import AttackStore, plan

CLEAN, EMBEDDINGS = "clean.npy", "clean_embeddings.npy"


class AttackJob:
    """PGD, APGD, Square: a shard's adversarial images at every budget, batch by batch."""

    def __init__(self, attacker: Attacker, clean: np.ndarray, e_clean: np.ndarray) -> None:
        self.attacker, self.clean, self.e_clean = attacker, clean, e_clean

    def shard(self, span: tuple[int, int]) -> tuple[np.ndarray, None]:
        """[start, stop) -> (uint8 (len(eps), stop - start, H, W, 3), no rows)."""
        start, stop = span
        size = self.attacker.config.batch_size
        parts = [self.attacker.attack_batch(np.asarray(self.clean[b:min(b + size, stop)]),
                                            np.asarray(self.e_clean[b:min(b + size, stop)]), b // size)
                 for b in range(start, stop, size)]
        return np.concatenate(parts, axis=1), None

    def share(self, folder: Path) -> None:
        """What the actors read instead of preparing and encoding the clean images again."""
        from vfmaudit.downstream.cache import save_array

        save_array(np.ascontiguousarray(self.clean), folder / CLEAN)
        save_array(np.ascontiguousarray(self.e_clean), folder / EMBEDDINGS)

    @classmethod
    def on_actor(cls, config, folder: Path) -> "AttackJob":
        return cls(Attacker(config), np.load(folder / CLEAN, mmap_mode="r"), np.load(folder / EMBEDDINGS, mmap_mode="r"))


def run_locally(config, job, store: AttackStore, todo: list[int], spans: list[tuple[int, int]],
                advance: Callable[[int], None]) -> None:
    for k in todo:
        store.save(k, *job.shard(spans[k]))
        advance(spans[k][1] - spans[k][0])


class ShardWorker:
    """Ray actor: the job built once; one shard per call, written to the store's folder."""

    def __init__(self, job_class: type, config: dict, folder: str):
        from vfmaudit.attack.config import AttackConfig

        self.job = job_class.on_actor(AttackConfig(**config), Path(folder))  # the class travels by reference
        self.store = AttackStore(Path(folder))

    def __call__(self, batch: dict) -> dict:
        for k, start, stop in zip(batch["shard"], batch["start"], batch["stop"]):
            self.store.save(int(k), *self.job.shard((int(start), int(stop))))
        return {"images": np.asarray(batch["stop"]) - np.asarray(batch["start"])}


def run_on_ray(config, job, store: AttackStore, todo: list[int], spans: list[tuple[int, int]],
               advance: Callable[[int], None]) -> None:
    from vfmaudit.engines.ray import map_actor_pool, ray_session

    if not todo:
        return
    job.share(store.folder)
    items = [{"shard": k, "start": spans[k][0], "stop": spans[k][1]} for k in todo]
    kwargs = {"job_class": type(job), "config": asdict(config), "folder": str(store.folder)}
    with ray_session(config.ray_address):
        for row in map_actor_pool(items, ShardWorker, kwargs, config.workers, config.gpus_per_worker):
            advance(int(row["images"]))


ATTACK_ENGINES = {"local": run_locally, "ray": run_on_ray}


def run_shards(config, job, store: AttackStore, n_images: int, what: str,
               progress: Callable[[str, int, int], None]) -> tuple[list[tuple[int, int]], dict]:
    """Every shard of n_images done by config.engine (those a resumed run finished are kept) ->
    (the shards' spans, {engine, shards, reused})."""
    spans = plan(n_images, config.shard_size, config.batch_size)
    todo = [k for k in range(len(spans)) if not store.done(k)]
    done = [n_images - sum(spans[k][1] - spans[k][0] for k in todo)]
    attacker = getattr(job, "attacker", None)
    if config.engine == "local" and attacker is not None:  # step by step: a batch alone may take minutes
        batches = sum(-(-(spans[k][1] - spans[k][0]) // config.batch_size) for k in todo)
        total, ticks = batches * attacker.steps_per_batch(), [0]
        unit = "steps" if attacker.built is not None else "queries"

        def step() -> None:
            ticks[0] += 1
            progress(f"{what} ({done[0]}/{n_images} images done), {unit}", min(ticks[0], total), total)

        attacker.on_step = step

    def advance(n: int) -> None:
        done[0] += n
        progress(what, done[0], n_images)

    progress(what, done[0], n_images)
    ATTACK_ENGINES[config.engine](config, job, store, todo, spans, advance)
    return spans, {"engine": config.engine, "shards": len(spans), "reused": len(spans) - len(todo)}
