"""Spatial edits: sharpness (torchvision), Gaussian blur, down-and-up resize, glass blur (ImageNet-C)."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit

from vfmaudit.perturb._batch import map_images, map_into
from vfmaudit.perturb.registry import Family, register


@njit(cache=True, nogil=True, error_model="numpy")
def _sharpness_row(u0, u1, u2, m0, m1, m2, d0, d1, d2, dst, ratio, inv) -> None:
    # one interior row; the nine taps come in as offset slices indexed from 0, which (with no
    # zero-division or negative-index checks) lets LLVM vectorise the loop
    ks = np.float32(1.0) / np.float32(13.0)
    km = np.float32(5.0) / np.float32(13.0)
    lo, hi = np.float32(0.0), np.float32(255.0)
    for j in range(dst.size):
        acc = ks * np.float32(u0[j]) + ks * np.float32(u1[j]) + ks * np.float32(u2[j])
        acc = acc + ks * np.float32(m0[j]) + km * np.float32(m1[j]) + ks * np.float32(m2[j])
        acc = acc + ks * np.float32(d0[j]) + ks * np.float32(d1[j]) + ks * np.float32(d2[j])
        v = ratio * np.float32(m1[j]) + inv * np.rint(acc)  # rint: round half to even, as torch
        dst[j] = np.uint8(min(max(v, lo), hi))


@njit(cache=True, nogil=True, error_model="numpy")
def _sharpness_kernel(img: np.ndarray, ratio: np.float32, inv: np.float32, out: np.ndarray) -> None:
    # torchvision adjust_sharpness: blend with the image smoothed by [[1,1,1],[1,5,1],[1,1,1]]/13,
    # rounded to uint8; border pixels are blended with themselves, as in torch.
    h, w, _ = img.shape
    row = w * 3
    n = row - 6
    src = img.reshape(h, row)
    dst = out.reshape(h, row)
    lo, hi = np.float32(0.0), np.float32(255.0)
    for y in range(h):  # border: whole first/last rows, first/last pixel of the others
        edge = y == 0 or y == h - 1
        for j in range(row):
            if not edge and j == 3:
                break
            o = np.float32(src[y, j])
            dst[y, j] = np.uint8(min(max(ratio * o + inv * o, lo), hi))
        if not edge:
            for j in range(row - 3, row):
                o = np.float32(src[y, j])
                dst[y, j] = np.uint8(min(max(ratio * o + inv * o, lo), hi))
    for y in range(1, h - 1):
        up, mid, down = src[y - 1], src[y], src[y + 1]
        _sharpness_row(up[0:n], up[3:3 + n], up[6:6 + n], mid[0:n], mid[3:3 + n], mid[6:6 + n],
                       down[0:n], down[3:3 + n], down[6:6 + n], dst[y][3:3 + n], ratio, inv)


def sharpness(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    if batch.shape[1] <= 2 or batch.shape[2] <= 2:
        return batch.copy()
    ratio, inv = np.float32(level), np.float32(1.0 - level)
    return map_into(lambda img, i, out: _sharpness_kernel(img, ratio, inv, out), batch)


def gaussian_ksize(sigma: float, truncate: float = 4.0) -> int:
    """Kernel side as scipy.ndimage / skimage (radius = int(truncate*sigma + 0.5))."""
    return 2 * int(truncate * sigma + 0.5) + 1


def gaussian_blur(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    sigma = float(level)
    if sigma <= 0:
        return batch.copy()
    # radius 3.5 sigma (albumentations' kernel size): the taps beyond it weigh < 1e-3 in total,
    # so results stay within one level of skimage's 4-sigma kernel at 15/17 of the cost.
    kernel = cv2.getGaussianKernel(gaussian_ksize(sigma, truncate=3.5), sigma).astype(np.float32)
    return map_images(
        lambda img, i: cv2.sepFilter2D(img, -1, kernel, kernel, borderType=cv2.BORDER_REPLICATE),
        batch,
    )


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


register(Family("sharpness", 0.0, 3.0, 1.0, "factor",
                "blend with a 3x3 smoothed image; >1 sharpens, <1 blurs (torchvision adjust_sharpness)",
                sharpness))
register(Family("gaussian_blur", 0.0, 4.0, 0.0, "sigma in pixels",
                "Gaussian blur, kernel radius 3.5 sigma, edge pixels replicated (within 1 level of skimage)",
                gaussian_blur))
register(Family("resize", 0.1, 1.0, 1.0, "scale factor",
                "downscale by the factor (area), then back to the original size (bilinear)", resize))
register(Family("glass_blur", 0.0, 5.0, 0.0, "ImageNet-C severity",
                "ImageNet-C glass blur on a continuous severity (blur, local pixel shuffle, blur)",
                glass_blur, stochastic=True))
