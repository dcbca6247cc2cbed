"""Distortions: down-and-up resize."""

from __future__ import annotations

import cv2
import numpy as np

from vfmaudit.perturb._area import area_is_general, resize_area
from vfmaudit.perturb._batch import map_into, map_runs
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

    # OpenCV's area filter at a non-integer factor (most levels) in our pass, its bytes; integer ones in OpenCV's
    general = area_is_general(batch.shape[1:], small)

    def down_up(img: np.ndarray, i: int, out: np.ndarray) -> None:
        lo = resize_area(img, small) if general else cv2.resize(img, small, interpolation=cv2.INTER_AREA)
        cv2.resize(lo, (w, h), dst=out, interpolation=cv2.INTER_LINEAR)  # into the batch: no copy

    return map_into(down_up, batch)


register(Family(name="resize", lo=0.1, hi=1.0, identity=1.0, units="scale factor", apply_batch=resize,
                description="downscale by the factor (area), then back to the original size (bilinear)"))
