"""ImageNet-C blurs: defocus, glass, motion (ImageMagick's kernel, no ImageMagick), zoom, gaussian."""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from vfmaudit.perturb.families.imagenet_c import _kernels
from vfmaudit.perturb.families.imagenet_c._disk import defocus_disk, disk_reach
from vfmaudit.perturb.families.imagenet_c._common import blur_truncated, draw_uniform, output_for, to_uint8


@lru_cache(maxsize=64)
def defocus_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """make_imagenet_c.py's aliased disk: grid -8..8 (3x3 anti-alias blur) up to radius 8, else
    -r..r (5x5), normalised, then Gaussian-blurred with sigma alias_blur. A non-integer radius
    above 8 uses the grid -ceil(r)..ceil(r) (the original's arange(-r, r + 1) is off-centre there)."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        r = math.ceil(radius)
        grid, ksize = np.arange(-r, r + 1), (5, 5)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    if alias_blur <= 0:  # cv2 would pick a sigma from the kernel size: at 0 there is no blur
        return disk
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


def defocus_blur(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    radius, alias_blur = float(p["radius"]), float(p["alias_blur"])
    kernel = defocus_kernel(radius, alias_blur)
    if img.dtype == np.uint8 and min(img.shape[:2]) > disk_reach(radius):  # the border: one reflection deep
        return defocus_disk(img, radius, alias_blur, float(kernel.sum(dtype=np.float64)), out)
    # float64 as the original (float32 moves 3 % of the truncated values by one); BORDER_REFLECT_101 as cv2's default
    return to_uint8(cv2.filter2D(img / 255.0, -1, kernel))


def glass_blur(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    sigma, delta, iterations = p["sigma"], int(p["max_delta"]), int(p["iterations"])
    if sigma <= 0:
        return img.copy()
    # truncated to uint8 before the shuffle, as the original
    shuffled = blur_truncated(img, sigma)
    if delta > 0 and iterations > 0:
        _kernels.glass_shuffle(shuffled, np.uint64(seed), delta, iterations)
    return blur_truncated(shuffled, sigma, out)  # into out where the fused pass serves sigma (all five severities)


@lru_cache(maxsize=256)
def motion_blur_kernel(radius: float, sigma: float, angle: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ImageMagick's MotionBlurImage kernel: width 2 ceil(radius) + 1 taps, weight exp(-i^2 / 2 sigma^2)
    at tap i (one-sided, normalised), tap i at offset (ceil(i sin a - 0.5), ceil(i cos a - 0.5)) in
    (rows, columns)."""
    width = int(2 * math.ceil(radius) + 1) if radius > 1e-12 else 1
    s = sigma if abs(sigma) > 1e-12 else 1e-12
    i = np.arange(width, dtype=np.float64)
    weights = np.exp(-(i * i) / (2.0 * s * s))
    weights /= weights.sum()
    a = math.radians(angle)
    px, py = width * math.sin(a), width * math.cos(a)
    norm = math.hypot(px, py)
    dx = np.ceil(i * py / norm - 0.5).astype(np.int64)
    dy = np.ceil(i * px / norm - 0.5).astype(np.int64)
    return weights, dy, dx


def motion_blur_uint8(img: np.ndarray, radius: float, sigma: float, angle: float,
                      out: np.ndarray | None = None) -> np.ndarray:
    weights, dy, dx = motion_blur_kernel(float(radius), float(sigma), float(angle))
    src = img if img.ndim == 3 else img[..., None]
    out = output_for(img, out)
    _kernels.motion_blur(np.ascontiguousarray(src), weights, dy, dx, out.reshape(src.shape))
    return out


def motion_blur(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    if p["radius"] <= 0:
        return img.copy()
    angle = draw_uniform(seed, 0, -45, 45)
    return motion_blur_uint8(img, p["radius"], p["sigma"], angle, out)


def zoom_factors(p: dict) -> np.ndarray:
    # the original's np.arange(1, end, step), end point included or not exactly as numpy decides
    return np.arange(1, p["end"], p["step"]) if p["end"] > 1 else np.zeros(0)


def zoom_blur(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    factors = zoom_factors(p)
    if factors.size == 0:
        return img.copy()
    out = output_for(img, out)  # float32 sums as the original's accumulator, truncated to uint8 in the kernel
    _kernels.zoom_blur(np.ascontiguousarray(img), factors.astype(np.float64), out)
    return out


def gaussian_blur(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    if p["sigma"] <= 0:
        return img.copy()
    return blur_truncated(img, p["sigma"], out)  # truncation, as the original
