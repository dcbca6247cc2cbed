"""ImageNet-C's pixelate, PIL's BOX resize down and back up, as one Numba call: the same bytes as Pillow
(its coefficients in float64, rounded to 22-bit fixed point, each pass rounded to uint8) without the two
PIL images, the RGBX copies and the four passes' allocations (2-3x Pillow at 224 px on one core).

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


@njit(cache=True, nogil=True)
def _clip8(ss) -> np.uint8:
    v = ss >> PRECISION_BITS
    return np.uint8(0 if v < 0 else (255 if v > 255 else v))


@njit(cache=True, nogil=True)
def _horizontal(src, bounds, weights, first_row, dst) -> None:
    # dst[y, xx, c] from src[first_row + y, bounds[xx, 0] + x, c]; rows flat, the channels' sums side by
    # side in registers (int32, as Pillow: a box's sums stay below 2^30)
    rows, out_w, channels = dst.shape
    width = src.shape[1]
    half = np.int32(1) << (PRECISION_BITS - 1)
    acc = np.empty(channels, np.int32)
    for y in range(rows):
        line = src[first_row + y].reshape(width * channels)
        out = dst[y].reshape(out_w * channels)
        for xx in range(out_w):
            base, n = bounds[xx, 0] * channels, bounds[xx, 1]
            if channels == 3:
                s0 = s1 = s2 = half
                for x in range(n):
                    k = weights[xx, x]
                    p = base + 3 * x
                    s0 += np.int32(line[p]) * k
                    s1 += np.int32(line[p + 1]) * k
                    s2 += np.int32(line[p + 2]) * k
                out[3 * xx] = _clip8(s0)
                out[3 * xx + 1] = _clip8(s1)
                out[3 * xx + 2] = _clip8(s2)
            else:
                acc[:] = half
                for x in range(n):
                    k = weights[xx, x]
                    p = base + channels * x
                    for c in range(channels):
                        acc[c] += np.int32(line[p + c]) * k
                for c in range(channels):
                    out[channels * xx + c] = _clip8(acc[c])


@njit(cache=True, nogil=True)
def _vertical(src, bounds, weights, first_row, dst) -> None:
    # dst[yy, x, c] from src[bounds[yy, 0] - first_row + y, x, c], a whole row at a time
    out_h, width, channels = dst.shape
    half = np.int32(1) << (PRECISION_BITS - 1)
    acc = np.empty(width * channels, np.int32)
    for yy in range(out_h):
        y0, n = bounds[yy, 0] - first_row, bounds[yy, 1]
        acc[:] = half
        for y in range(n):
            k = weights[yy, y]
            row = src[y0 + y].reshape(width * channels)
            for j in range(width * channels):
                acc[j] += np.int32(row[j]) * k
        out = dst[yy].reshape(width * channels)
        for j in range(width * channels):
            out[j] = _clip8(acc[j])


def _resize(img: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Pillow's resize((out_w, out_h), BOX) of an (H, W, C) uint8 image."""
    h, w, channels = img.shape
    vb, vk = box_coefficients(h, out_h)
    first, last = int(vb[0, 0]), int(vb[-1, 0] + vb[-1, 1])  # the source rows the vertical pass reads
    hb, hk = box_coefficients(w, out_w)
    tmp = np.empty((last - first, out_w, channels), np.uint8)
    _horizontal(img, hb, hk, first, tmp)
    out = np.empty((out_h, out_w, channels), np.uint8)
    _vertical(tmp, vb, vk, first, out)
    return out


def pixelate_box(img: np.ndarray, c: float) -> np.ndarray:
    """Image.resize((int(W c), int(H c)), BOX) and back to (W, H), BOX: ImageNet-C's pixelate, byte for byte
    for gray and RGB (Pillow premultiplies RGBA by its alpha first: not this)."""
    h, w = img.shape[:2]
    x = img if img.ndim == 3 else img[:, :, None]
    x = np.ascontiguousarray(x)
    small = _resize(x, max(1, int(w * c)), max(1, int(h * c)))
    return _resize(small, w, h).reshape(img.shape)
