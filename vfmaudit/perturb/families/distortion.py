"""Distortions: down-and-up resize, and ImageNet-C glass blur (blur, local pixel shuffle, blur)."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit

from vfmaudit.perturb._batch import map_images, map_into
from vfmaudit.perturb.families.filters import gaussian_ksize
from vfmaudit.perturb.registry import Family, register


def resize(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    scale = float(level)
    h, w = batch.shape[1:3]
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    if small == (w, h):
        return batch.copy()

    def down_up(img: np.ndarray, i: int) -> np.ndarray:
        lo = cv2.resize(img, small, interpolation=cv2.INTER_AREA)
        return cv2.resize(lo, (w, h), interpolation=cv2.INTER_LINEAR)

    return map_images(down_up, batch)


# ImageNet-C glass_blur: (sigma, max_delta, iterations) at severities 1..5
_GLASS_TABLE = [(0.0, 0, 0), (0.7, 1, 2), (0.9, 2, 1), (1.0, 2, 3), (1.1, 3, 2), (1.5, 4, 2)]


def glass_blur_params(severity: float) -> tuple[float, int, int]:
    """Parameters at a continuous severity: ImageNet-C's exactly at 1..5, linear in between."""
    s = min(max(float(severity), 0.0), 5.0)
    lo = int(math.floor(s))
    if lo == s:
        return _GLASS_TABLE[lo]
    t = s - lo
    a, b = _GLASS_TABLE[lo], _GLASS_TABLE[lo + 1]
    sigma = a[0] + t * (b[0] - a[0])
    delta = int(math.floor(a[1] + t * (b[1] - a[1]) + 0.5))
    iters = int(math.floor(a[2] + t * (b[2] - a[2]) + 0.5))
    return sigma, delta, iters


def _blur_float(img: np.ndarray, sigma: float) -> np.ndarray:
    # skimage.filters.gaussian defaults: truncate 4.0, mode 'nearest'
    k = gaussian_ksize(sigma)
    return cv2.GaussianBlur(img.astype(np.float32), (k, k), sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REPLICATE)


@njit(cache=True)
def _splitmix_next(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _glass_shuffle(img: np.ndarray, seed: np.uint64, delta: int, iterations: int) -> None:
    # ImageNet-C's loop, pixel for pixel: offsets drawn from [-delta, delta), and (as in the
    # reference, whose tuple "swap" of numpy views copies one way) x[h, w] <- x[h', w'].
    hgt, wid, _ = img.shape
    span = np.uint64(2 * delta)
    state = seed
    for _ in range(iterations):
        for hh in range(hgt - delta, delta, -1):
            for ww in range(wid - delta, delta, -1):
                state, r = _splitmix_next(state)
                dx = np.int64((r >> np.uint64(32)) % span) - delta
                dy = np.int64((r & np.uint64(0xFFFFFFFF)) % span) - delta
                hp = hh + dy
                wp = ww + dx
                if hp < 0 or hp >= hgt or wp < 0 or wp >= wid:
                    continue  # only reachable on images smaller than the offsets
                for c in range(3):
                    img[hh, ww, c] = img[hp, wp, c]


def glass_blur(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    sigma, delta, iterations = glass_blur_params(level)
    if sigma <= 0:
        return batch.copy()

    def one(img: np.ndarray, i: int, out: np.ndarray) -> None:  # blur, shuffle, blur in one pass
        out[...] = np.clip(_blur_float(img, sigma), 0, 255)
        if delta > 0 and iterations > 0:
            _glass_shuffle(out, seeds[i], delta, iterations)
        out[...] = np.clip(_blur_float(out, sigma), 0, 255)

    return map_into(one, batch)


register(Family(name="resize", lo=0.1, hi=1.0, identity=1.0, units="scale factor", apply_batch=resize,
                description="downscale by the factor (area), then back to the original size (bilinear)"))
register(Family(name="glass_blur", lo=0.0, hi=5.0, identity=0.0, units="ImageNet-C severity", apply_batch=glass_blur,
                description="ImageNet-C glass blur on a continuous severity (blur, local pixel shuffle, blur)",
                stochastic=True))
