"""ImageNet-C's pixelate, PIL's BOX resize down and back up, as one Numba call: the same bytes as Pillow
(its coefficients in float64, rounded to 22-bit fixed point, each pass rounded to uint8) without the two
PIL images and their RGBX copies: 2.3-2.9x Pillow (imagecorruptions) at 224 and 512 px on one core
(docs/benchmarks.md), where the PIL round trip vfmaudit ran before was 0.5x. A box's taps are one run of
equal weights, so the down passes sum runs (one entry of a row's run sums) and multiply once; up-scaling
copies one source pixel per output.

Pillow's Resample.c, as this module reproduces it: per output index xx, center = (xx + 0.5) * scale with
scale = in / out; the box covers [center - support, center + support) rounded, support = 0.5 * max(scale, 1);
weights box((x + xmin - center + 0.5) / max(scale, 1)) normalised, then int(0.5 + w * 2^22); a pass sums
pixel * weight from 2^21 and keeps bits 22..29 clamped to [0, 255]. Horizontal first, then vertical.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

from vfmaudit.perturb.families.imagenet_c._common import output_for


PRECISION_BITS = 32 - 8 - 2  # Pillow's: 8 bits of result, 2 of headroom in an int32


@lru_cache(maxsize=256)
def box_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(bounds (out, 2): first index and count, weights (out, ksize) int32) of Pillow's BOX filter."""
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    bounds = np.zeros((out_size, 2), np.int64)
    weights = np.zeros((out_size, ksize), np.int32)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = [1.0 if -0.5 < (x + xmin - center + 0.5) / filterscale <= 0.5 else 0.0 for x in range(xmax)]
        total = sum(w)
        for x in range(xmax):
            k = w[x] / total if total != 0.0 else w[x]
            weights[xx, x] = int(0.5 + k * (1 << PRECISION_BITS))  # the weights of a box are never negative
        bounds[xx] = xmin, xmax
    return bounds, weights


@lru_cache(maxsize=256)
def box_runs(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's BOX coefficients as (first, count, weight) per output index: a box weighs each source pixel
    whose centre it covers by 1 and no other, so its taps are one run of equal fixed-point weights, and
    sum(pixel * k) = k * sum(pixel) exactly in integers (the sums stay below 2^30)."""
    bounds, weights = box_coefficients(in_size, out_size)
    first = np.empty(out_size, np.int64)
    count = np.empty(out_size, np.int64)
    weight = np.empty(out_size, np.int64)
    for xx in range(out_size):
        taps = np.flatnonzero(weights[xx, :bounds[xx, 1]])
        k = weights[xx, taps]
        if taps.size == 0 or taps[-1] - taps[0] + 1 != taps.size or (k != k[0]).any():
            raise AssertionError(f"not a run of equal box weights at {xx} ({in_size} -> {out_size})")
        first[xx], count[xx], weight[xx] = bounds[xx, 0] + taps[0], taps.size, k[0]
    return first, count, weight


@njit(cache=True, nogil=True)
def _round_rows(sums, weight, out) -> None:
    # Pillow's clip8(2^21 + sum * k) for one row of sums (int64: k * sum stays below 2^30)
    half = np.int64(1) << (PRECISION_BITS - 1)
    for j in range(sums.size):
        v = (sums[j] * weight + half) >> PRECISION_BITS
        out[j] = 255 if v > 255 else v  # never negative: box weights and pixels are


@njit(cache=True, nogil=True)
def _run_sums(row, ch, longest, runs) -> None:
    # runs[t, e] = row[e] + row[e + ch] + ... (t + 1 values of one channel), for t < longest: every box's sum
    # is one entry, whatever its length, and each pass is a vectorised add of two shifted rows
    n = row.size
    first = runs[0]
    for e in range(n):
        first[e] = row[e]
    for t in range(1, longest):
        m = n - t * ch
        prev, ahead, cur = runs[t - 1, :m], row[t * ch:], runs[t, :m]
        for e in range(m):
            cur[e] = prev[e] + ahead[e]


@njit(cache=True, nogil=True)
def _pixelate(img, hf, hn, hk, vf, vn, vk, ucol, urow, urows, out) -> None:
    # down: Pillow's horizontal BOX pass (only the rows the vertical pass reads), then the vertical one,
    # each rounded to uint8 as Pillow's; a box's sum is one entry of the row's run sums (_run_sums). Up: each
    # output pixel is one source pixel (weight 2^22 exactly), so a row of the small image is widened once and
    # copied to every output row it covers. Gathers index with unsigned integers: no negative-index checks.
    h, w, ch = img.shape
    n = w * ch
    sw, sh = hf.size, vf.size
    r0 = vf[0]
    rows = vf[sh - 1] + vn[sh - 1] - r0
    narrow = np.empty((rows, sw * ch), np.uint8)
    longest = 1
    for xx in range(sw):
        longest = max(longest, hn[xx])
    runs = np.zeros((longest, n), np.int32)
    flat_runs = runs.reshape(longest * n)
    weights = np.empty(sw * ch, np.int64)
    where = np.empty(sw * ch, np.uint64)  # per output value: its box's entry in the run sums
    for xx in range(sw):
        for c in range(ch):
            weights[xx * ch + c] = hk[xx]
            where[xx * ch + c] = np.uint64((hn[xx] - 1) * n + hf[xx] * ch + c)
    source = np.empty(n, np.uint64)  # per widened value: the small image's value it copies
    for x in range(w):
        for c in range(ch):
            source[x * ch + c] = np.uint64(ucol[x] * ch + c)
    half = np.int64(1) << (PRECISION_BITS - 1)
    boxes = np.empty(sw * ch, np.int32)
    for y in range(rows):
        _run_sums(img[r0 + y].reshape(n), ch, longest, runs)
        for j in range(sw * ch):  # the gather alone, then the arithmetic over contiguous values: a third less time
            boxes[j] = flat_runs[where[j]]
        dst = narrow[y]
        for j in range(sw * ch):
            v = (np.int64(boxes[j]) * weights[j] + half) >> PRECISION_BITS
            dst[j] = 255 if v > 255 else v
    sums = np.empty(sw * ch, np.int64)
    small = np.empty(sw * ch, np.uint8)
    wide = np.empty(n, np.uint8)
    flat = out.reshape(out.shape[0], n)
    for yy in range(sh):
        sums[:] = 0
        for y in range(vn[yy]):
            src = narrow[vf[yy] - r0 + y]
            for j in range(sw * ch):
                sums[j] += src[j]
        _round_rows(sums, vk[yy], small)
        for j in range(n):
            wide[j] = small[source[j]]
        for y in range(urow[yy], urow[yy] + urows[yy]):
            row = flat[y]
            for j in range(n):  # an explicit loop: vectorised, unlike a slice assignment here
                row[j] = wide[j]


@lru_cache(maxsize=256)
def _up_rows(small: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of the small image, the output rows that copy it (upscaling BOX: one tap each)."""
    first, count, weight = box_runs(small, size)
    if (count != 1).any() or (weight != 1 << PRECISION_BITS).any():
        raise AssertionError(f"upscaling {small} -> {size} is not one tap per pixel")
    start = np.searchsorted(first, np.arange(small))
    return start.astype(np.int64), np.diff(np.append(start, size)).astype(np.int64)


def pixelate_box(img: np.ndarray, c: float, out: np.ndarray | None = None) -> np.ndarray:
    """Image.resize((int(W c), int(H c)), BOX) and back to (W, H), BOX: ImageNet-C's pixelate, byte for byte
    for gray and RGB (Pillow premultiplies RGBA by its alpha first: not this); into out where given (C-contiguous)."""
    h, w = img.shape[:2]
    sw, sh = max(1, int(w * c)), max(1, int(h * c))
    x = np.ascontiguousarray(img if img.ndim == 3 else img[:, :, None])
    hf, hn, hk = box_runs(w, sw)
    vf, vn, vk = box_runs(h, sh)
    ucol, _, _ = box_runs(sw, w)  # the small column each output column copies
    _up_rows(sw, w)  # (checks that widening is one tap per pixel too)
    urow, urows = _up_rows(sh, h)
    out = output_for(img, out)
    _pixelate(x, hf, hn, hk, vf, vn, vk, ucol, urow, urows, out.reshape(x.shape))
    return out
