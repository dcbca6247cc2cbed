"""An attack's finished work on disk (OUT/shards/): one file per shard of images holding its
adversarial images at every budget, written by an atomic rename as each shard finishes.

A killed or interrupted run resumes (`resume`) without redoing a finished shard, and Ray actors
hand their shards to the driver through the same files. Without an output folder the shards stay
in memory. A shard is a run of consecutive images, a multiple of the batch size, so each batch (and
its random generator) is the same whatever the engine or the shard size.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vfmaudit.downstream.cache import save_array
from vfmaudit.engines import shard_plan
from vfmaudit.errors import VfmauditError
from vfmaudit.files import check_resumable, write_json

FOLDER = "shards"
RUN_FILE = "run.json"
# options that change neither the plan nor an image attacked: a run may resume with others
NOT_IN_FINGERPRINT = ("out", "save_images", "transfer_to", "engine", "workers", "gpus_per_worker", "ray_address",
                      "resume", "overwrite", "device")
# what an attack writes in out (the shards' folder aside): overwrite removes them, so no earlier budget's images stay
OUTPUTS = ("attack.json", "per_image.csv", "report.html", "clean", "adversarial", "edited")


def plan(n_images: int, shard_size: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, stop) of each shard: consecutive images, a multiple of the batch size."""
    spans, start = [], 0
    for ids in shard_plan(list(range(n_images)), shard_size, batch_size):
        spans.append((start, start + len(ids)))
        start += len(ids)
    return spans


def fingerprint(config, ids: list[str]) -> dict:
    options = {k: v for k, v in asdict(config).items() if k not in NOT_IN_FINGERPRINT}
    options["eps"] = sorted(set(float(e) for e in options["eps"]))
    return {**options, "inputs": ids}


class AttackStore:
    """The shards of one run: files under folder (None: in memory)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: dict[int, np.ndarray] = {}
        self._rows: dict[int, list[dict] | None] = {}

    @staticmethod
    def claim(out: Path, resume: bool, overwrite: bool) -> None:
        """The rule of every command that writes a folder: an earlier run in out is continued (resume),
        replaced (overwrite) or refused, never silently replaced."""
        earlier = (out / "attack.json").exists() or (out / FOLDER / RUN_FILE).exists()
        if earlier and not (resume or overwrite):
            raise VfmauditError(f"{out} already holds an attack; pass resume to continue it, overwrite to start "
                                f"again, or out to write elsewhere", param=("resume", "overwrite", "out"))
        if earlier and overwrite:
            for name in OUTPUTS:
                path = out / name
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)

    @classmethod
    def open(cls, out: Path | None, print_: dict, resume: bool) -> "AttackStore":
        """A fresh run clears the shards an earlier one left; resume keeps them if its options match."""
        if out is None:  # AttackConfig.check refuses resume without out
            return cls(None)
        folder = out / FOLDER
        run_file = folder / RUN_FILE
        if resume and run_file.exists():
            try:
                previous = json.loads(run_file.read_text())["fingerprint"]
            except (OSError, ValueError, KeyError):
                raise VfmauditError(f"{run_file} is unreadable; pass overwrite instead of resume to start again",
                                    param=("overwrite", "resume")) from None
            check_resumable(previous, print_, out)
            return cls(folder)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        run_file.write_text(json.dumps({"fingerprint": print_}, indent=1))
        return cls(folder)

    def path(self, k: int) -> Path:
        return self.folder / f"{k:05d}.npy"

    def done(self, k: int) -> bool:
        return k in self._memory if self.folder is None else self.path(k).exists()

    def save(self, k: int, images: np.ndarray, rows: list[dict] | None = None) -> None:
        """A shard's images (and, for the edit search, its per-image rows: written first, so a shard
        whose images file exists is whole)."""
        if self.folder is None:
            self._memory[k] = images
            self._rows[k] = rows
            return
        if rows is not None:
            write_json({"rows": rows}, self.folder / f"{k:05d}.json")
        save_array(images, self.path(k))

    def load(self, k: int) -> np.ndarray:
        return self._memory[k] if self.folder is None else np.load(self.path(k))

    def rows(self, k: int) -> list[dict]:
        if self.folder is None:
            return self._rows[k]
        return json.loads((self.folder / f"{k:05d}.json").read_text())["rows"]

    def assemble(self, spans: list[tuple[int, int]], eps: list[float]) -> dict[float, np.ndarray]:
        """{eps: uint8 (N, H, W, 3)}, every shard in image order."""
        images = np.concatenate([self.load(k) for k in range(len(spans))], axis=1)
        return {e: images[j] for j, e in enumerate(eps)}
