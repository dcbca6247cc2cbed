"""Spatial filters: sharpness (torchvision) and Gaussian blur."""

from __future__ import annotations


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


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Kernel radius as scipy.ndimage / skimage: int(truncate * sigma + 0.5)."""
    return int(truncate * sigma + 0.5)


def gaussian_ksize(sigma: float, truncate: float = 4.0) -> int:
    """Kernel side as scipy.ndimage / skimage."""
    return 2 * gaussian_radius(sigma, truncate) + 1


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


register(Family(name="sharpness", lo=0.0, hi=3.0, identity=1.0, units="factor", apply_batch=sharpness,
                description="blend with a 3x3 smoothed image; >1 sharpens, <1 blurs (torchvision adjust_sharpness)"))
register(Family(name="gaussian_blur", lo=0.0, hi=4.0, identity=0.0, units="sigma in pixels", apply_batch=gaussian_blur,
                description="Gaussian blur, kernel radius 3.5 sigma, edge pixels replicated (within 1 level of skimage)"))
