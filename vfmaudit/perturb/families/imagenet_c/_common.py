"""Conversions every ImageNet-C corruption shares: [0, 1] floats in, the original's uint8 out."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from vfmaudit.perturb._batch import _MASK64, SPLITMIX_GAMMA, _splitmix64
from vfmaudit.perturb import _gauss
from vfmaudit.perturb._gauss import gaussian_ksize, gaussian_radius


def output_for(img: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Where a corruption writes its uint8 result: out (the batch's image, from corrupt_batch; C-contiguous),
    else a new C-contiguous array of img's shape. Kernels that take (H, W, C) write into out.reshape(...),
    a view of it either way."""
    return np.empty(img.shape, img.dtype) if out is None else out


def unit(img: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return img.astype(np.float32) * np.float32(1.0 / 255.0)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """np.uint8(np.clip(x, 0, 1) * 255): the original truncates, it does not round."""
    return (np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def draw_index(seed: int, i: int, n: int) -> int:
    """Draw i of seed's splitmix64 stream as a uniform integer in [0, n) (multiply-shift: off by at
    most n / 2^64). For the few draws a cheap corruption needs: a numpy Generator costs 8 us to make,
    held under the GIL, which the other thread then waits for."""
    return (_splitmix64((int(seed) + i * SPLITMIX_GAMMA) & _MASK64) * int(n)) >> 64


def draw_uniform(seed: int, i: int, lo: float, hi: float) -> float:
    """Draw i of seed's splitmix64 stream as a uniform float in [lo, hi) (53 bits)."""
    return lo + (hi - lo) * (draw_index(seed, i, 1 << 53) / float(1 << 53))


def draw_seed(seed: int, i: int) -> np.uint64:
    """Draw i of seed's splitmix64 stream as the 63-bit seed of a kernel's own stream."""
    return np.uint64(draw_index(seed, i, 1 << 63))


@lru_cache(maxsize=64)
def _gaussian_taps(sigma: float) -> np.ndarray:
    return cv2.getGaussianKernel(gaussian_ksize(sigma), sigma, cv2.CV_32F)


def blur_float(img: np.ndarray, sigma: float) -> np.ndarray:
    """skimage.filters.gaussian (mode 'nearest', truncate 4) in float32, on the values as given: the
    separable filter reads uint8 directly (no float copy of the input first: a third less time)."""
    taps = _gaussian_taps(float(sigma))
    return cv2.sepFilter2D(img, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_REPLICATE)


def blur_truncated(img: np.ndarray, sigma: float, out: np.ndarray | None = None) -> np.ndarray:
    """uint8(blur_float(img, sigma)) of uint8 values (a normalised blur stays in [0, 255]). Up to
    sigma 6 (radius 24, ImageNet-C's largest) the generated Numba passes of perturb._gauss (1.6-2.5x
    OpenCV's float sepFilter2D); beyond, OpenCV, which stores round(b - 0.5): the truncation up to ties at exact
    integers (1 value in 10^5 here). The fused Numba pass writes into out where given; the others return a
    new array."""
    if img.dtype == np.uint8 and img.ndim in (2, 3) and gaussian_radius(sigma) <= _gauss.MAX_RADIUS:
        return _gauss.blur_truncated_numba(img, sigma, out)
    taps = _gaussian_taps(float(sigma))
    return cv2.sepFilter2D(img, cv2.CV_8U, taps, taps, delta=-0.5, borderType=cv2.BORDER_REPLICATE)
