"""Embeddings on disk, one file per (split, variant), so an interrupted evaluation resumes.

Every image x variant is encoded once and shared by all tasks; files are published by atomic
renames, and the folder's run.json records what must match for `resume` to reuse them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.files import check_resumable, default_permissions, write_json

RUN_FILE = "run.json"
FOLDER = "embeddings"


class ArrayCache:
    def __init__(self, out_dir: str | Path, fingerprint: dict, resume: bool, overwrite: bool):
        self.out = Path(out_dir)
        self.dir = self.out / FOLDER
        run = self.out / RUN_FILE
        if not self.check_claim(self.out, fingerprint, resume, overwrite):  # resumed: the cached arrays stay
            shutil.rmtree(self.dir, ignore_errors=True)
            write_json({"fingerprint": fingerprint}, run)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.reused = 0

    @staticmethod
    def check_claim(out: Path, fingerprint: dict, resume: bool, overwrite: bool) -> bool:
        """The folder rule, checked before any model loads and again with the folder locked: an earlier
        evaluation in out is resumed (True: same options), replaced (overwrite) or refused."""
        run = Path(out) / RUN_FILE
        if not run.exists() or overwrite:
            return False
        if not resume:
            raise VfmauditError(f"{out} already holds a downstream evaluation; pass resume to continue it, "
                                f"overwrite to start again, or out to write elsewhere",
                                param=("resume", "overwrite", "out"))
        check_resumable(json.loads(run.read_text()).get("fingerprint"), fingerprint, Path(out))
        return True

    def path(self, name: str) -> Path:
        return array_path(self.dir, name)

    def get(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        path = self.path(name)
        if path.exists():
            self.reused += 1
            return np.load(path, mmap_mode="r")
        save_array(np.asarray(compute()), path)
        return np.load(path, mmap_mode="r")


def array_path(folder: Path, name: str) -> Path:
    return Path(folder) / (re.sub(r"[^A-Za-z0-9_.@-]", "_", name) + ".npy")


def save_array(arr: np.ndarray, path: Path) -> None:
    """np.save under a unique temporary name, then an atomic rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    os.close(fd)
    try:
        np.save(tmp, arr)
        default_permissions(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
