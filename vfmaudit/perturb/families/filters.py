"""Spatial filters: sharpness (torchvision) and Gaussian blur."""

from __future__ import annotations


import numpy as np
from numba import njit

from vfmaudit.perturb._batch import map_into
from vfmaudit.perturb._gauss import blur_rounded
from vfmaudit.perturb.registry import Family, register


@njit(cache=True, nogil=True, error_model="numpy")
def _column_sums(up, mid, down, out) -> None:
    for j in range(out.size):
        out[j] = np.float32(up[j]) + np.float32(mid[j]) + np.float32(down[j])


@njit(cache=True, nogil=True, error_model="numpy")
def _sharpness_row(left, centre, right, mid, dst, ratio, inv) -> None:
    # one interior row from its column sums (offset slices indexed from 0, which, with no zero-division
    # or negative-index checks, lets LLVM vectorise the loop). torch's smoothed value, round(float32 conv
    # with 1/13 and 5/13), is round(S / 13) for the integer S = 8 neighbours + 5 centre = the 3x3 box
    # + 4 centre: S / 13 lies at least 1/26 from a tie, far beyond float32's error on it, so
    # floor((S + 6.5) / 13) gives the same value (S exact in float32, the product within 2^-24)
    k13 = np.float32(1.0 / 13.0)
    half13, four = np.float32(6.5), np.float32(4.0)
    lo, hi = np.float32(0.0), np.float32(255.0)
    for j in range(dst.size):
        m = np.float32(mid[j])
        s = left[j] + centre[j] + right[j] + four * m
        smooth = np.float32(np.int32((s + half13) * k13))  # floor: positive
        v = ratio * m + inv * smooth
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
    columns = np.empty(row, np.float32)  # the 3 rows' sum per column: each value converted once, not 9 times
    for y in range(1, h - 1):
        _column_sums(src[y - 1], src[y], src[y + 1], columns)
        _sharpness_row(columns[0:n], columns[3:3 + n], columns[6:6 + n], src[y][3:3 + n], dst[y][3:3 + n],
                       ratio, inv)


def sharpness(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    if batch.shape[1] <= 2 or batch.shape[2] <= 2:
        return batch.copy()
    ratio, inv = np.float32(level), np.float32(1.0 - level)
    return map_into(lambda img, i, out: _sharpness_kernel(img, ratio, inv, out), batch)


def gaussian_blur(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    sigma = float(level)
    if sigma <= 0:
        return batch.copy()
    # radius 3.5 sigma (albumentations' kernel size): the taps beyond it weigh < 1e-3 in total,
    # so results stay within one level of skimage's 4-sigma kernel at 15/17 of the cost.
    return map_into(lambda img, i, out: blur_rounded(img, sigma, out, truncate=3.5), batch)


register(Family(name="sharpness", lo=0.0, hi=3.0, identity=1.0, units="factor", apply_batch=sharpness,
                description="blend with a 3x3 smoothed image; >1 sharpens, <1 blurs (torchvision adjust_sharpness)"))
register(Family(name="gaussian_blur", lo=0.0, hi=4.0, identity=0.0, units="sigma in pixels", apply_batch=gaussian_blur,
                description="Gaussian blur, kernel radius 3.5 sigma, edge pixels replicated (within 1 level of skimage)"))
