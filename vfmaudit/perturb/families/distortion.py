"""Distortions: down-and-up resize."""

from __future__ import annotations

import cv2
import numpy as np

from vfmaudit.perturb._batch import map_images, map_runs
from vfmaudit.perturb._halve import halve_and_double, halves_exactly
from vfmaudit.perturb.registry import Family, register


def resize(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    scale = float(level)
    h, w = batch.shape[1:3]
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    if small == (w, h):
        return batch.copy()
    if halves_exactly(batch.shape[1:], small):  # one pass instead of two OpenCV calls, the same bytes
        return map_runs(halve_and_double, batch)

    def down_up(img: np.ndarray, i: int) -> np.ndarray:
        lo = cv2.resize(img, small, interpolation=cv2.INTER_AREA)
        return cv2.resize(lo, (w, h), interpolation=cv2.INTER_LINEAR)

    return map_images(down_up, batch)


register(Family(name="resize", lo=0.1, hi=1.0, identity=1.0, units="scale factor", apply_batch=resize,
                description="downscale by the factor (area), then back to the original size (bilinear)"))
