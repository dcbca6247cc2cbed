"""Colour edits with torchvision.transforms.functional semantics on uint8 tensors.

torchvision computes in float32 and casts back by truncation; the kernels below replay that
arithmetic in the same order so the bytes agree (ties aside).
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit, prange

from vfmaudit.perturb._batch import get_num_threads
from vfmaudit.perturb.registry import Family, register

F32 = np.float32


def _blend_lut(ratio: float, other: np.float32 | float) -> np.ndarray:
    """Lookup table for clamp(ratio*x + (1-ratio)*other, 0, 255) truncated, in float32 as torch."""
    x = np.arange(256, dtype=F32)
    val = F32(ratio) * x + F32(1.0 - ratio) * F32(other)
    return np.clip(val, 0, 255).astype(np.uint8)


def _apply_lut(batch: np.ndarray, lut: np.ndarray) -> np.ndarray:
    n, h, w, c = batch.shape
    flat = batch.reshape(n * h, w * c)
    return cv2.LUT(flat, lut).reshape(batch.shape)


def brightness(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    return _apply_lut(batch, _blend_lut(level, 0.0))


@njit(cache=True, inline="always")
def _gray_u8(r: np.uint8, g: np.uint8, b: np.uint8) -> np.int64:
    # torchvision rgb_to_grayscale: float32 weighted sum, truncated to uint8
    v = np.float32(0.2989) * np.float32(r) + np.float32(0.587) * np.float32(g)
    v = v + np.float32(0.114) * np.float32(b)
    return np.int64(v)


@njit(parallel=True, cache=True)
def _gray_sums(batch: np.ndarray) -> np.ndarray:
    n, h, w, _ = batch.shape
    sums = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        s = np.int64(0)
        for y in range(h):
            for x in range(w):
                s += _gray_u8(batch[i, y, x, 0], batch[i, y, x, 1], batch[i, y, x, 2])
        sums[i] = s
    return sums


def contrast(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    n, h, w, _ = batch.shape
    sums = _gray_sums(batch)
    out = np.empty_like(batch)
    for i in range(n):
        # the sum of uint8 grays is exact in float32 for images up to 2**16 pixels, as in torch.mean
        mean = F32(sums[i]) / F32(h * w)
        lut = _blend_lut(level, mean)
        out[i] = cv2.LUT(batch[i].reshape(h, w * 3), lut).reshape(h, w, 3)
    return out


@njit(parallel=True, cache=True)
def _saturation_kernel(batch: np.ndarray, ratio: np.float32, inv: np.float32) -> np.ndarray:
    n, h, w, _ = batch.shape
    out = np.empty_like(batch)
    for i in prange(n):
        for y in range(h):
            for x in range(w):
                gray = np.float32(_gray_u8(batch[i, y, x, 0], batch[i, y, x, 1], batch[i, y, x, 2]))
                g_term = inv * gray
                for c in range(3):
                    v = ratio * np.float32(batch[i, y, x, c]) + g_term
                    v = min(max(v, np.float32(0.0)), np.float32(255.0))
                    out[i, y, x, c] = np.uint8(v)
    return out


def saturation(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    return _saturation_kernel(batch, F32(level), F32(1.0 - level))


@njit(parallel=True, cache=True)
def _hue_kernel(batch: np.ndarray, shift: np.float32) -> np.ndarray:
    n, h, w, _ = batch.shape
    out = np.empty_like(batch)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    six = np.float32(6.0)
    scale = np.float32(255.0)
    to_u8 = np.float32(255.0 + 1.0 - 1e-3)  # torchvision convert_image_dtype float -> uint8
    for i in prange(n):
        for y in range(h):
            for x in range(w):
                r = np.float32(batch[i, y, x, 0]) / scale
                g = np.float32(batch[i, y, x, 1]) / scale
                b = np.float32(batch[i, y, x, 2]) / scale
                maxc = max(r, max(g, b))
                minc = min(r, min(g, b))
                eqc = maxc == minc
                cr = maxc - minc
                s = cr / (one if eqc else maxc)
                div = one if eqc else cr
                rc = (maxc - r) / div
                gc = (maxc - g) / div
                bc = (maxc - b) / div
                hr = (bc - gc) if maxc == r else zero
                hg = (np.float32(2.0) + rc - bc) if (maxc == g and maxc != r) else zero
                hb = (np.float32(4.0) + gc - rc) if (maxc != g and maxc != r) else zero
                hh = hr + hg + hb
                hh = np.float32(np.fmod(hh / six + one, one))
                # shift (torch % is floor-mod)
                hh = hh + shift
                hh = hh - np.float32(np.floor(hh / one)) * one
                v = maxc
                k = np.floor(hh * six)
                f = hh * six - k
                ki = np.int64(k) % 6
                p = min(max(v * (one - s), zero), one)
                q = min(max(v * (one - s * f), zero), one)
                t = min(max(v * (one - s * (one - f)), zero), one)
                if ki == 0:
                    ro, go, bo = v, t, p
                elif ki == 1:
                    ro, go, bo = q, v, p
                elif ki == 2:
                    ro, go, bo = p, v, t
                elif ki == 3:
                    ro, go, bo = p, q, v
                elif ki == 4:
                    ro, go, bo = t, p, v
                else:
                    ro, go, bo = v, p, q
                out[i, y, x, 0] = np.uint8(ro * to_u8)
                out[i, y, x, 1] = np.uint8(go * to_u8)
                out[i, y, x, 2] = np.uint8(bo * to_u8)
    return out


def hue(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    return _hue_kernel(batch, F32(level))


register(Family("brightness", 0.2, 1.8, 1.0, "factor",
                "multiply intensities by the factor (torchvision adjust_brightness)", brightness))
register(Family("contrast", 0.2, 1.8, 1.0, "factor",
                "blend with the mean gray level (torchvision adjust_contrast)", contrast))
register(Family("saturation", 0.0, 2.0, 1.0, "factor",
                "blend with the grayscale image (torchvision adjust_saturation)", saturation))
register(Family("hue", -0.5, 0.5, 0.0, "turns of the hue circle",
                "rotate hue in HSV space (torchvision adjust_hue)", hue))
