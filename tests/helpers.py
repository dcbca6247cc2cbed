"""Small helpers several test modules share: reading result tables, making folders of photographs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def rows(path: Path) -> list[dict]:
    """A CSV result table as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def noisy_photos(folder: Path, photo_batch: np.ndarray, n: int, spread: int = 20, name: str = "img{i:02d}.png") -> Path:
    """n distinct PNGs: the sample photographs again and again, each with its own seeded noise."""
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.clip(photo_batch[i % len(photo_batch)].astype(int) + rng.integers(-spread, spread, photo_batch.shape[1:]),
                      0, 255)
        Image.fromarray(img.astype(np.uint8)).save(folder / name.format(i=i))
    return folder
