"""Colour edits with torchvision.transforms.functional semantics on uint8 tensors.

torchvision computes in float32 and casts back by truncation; the kernels below replay that
arithmetic in the same order so the bytes agree (ties aside).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vfmaudit.perturb._batch import map_into, map_runs
from vfmaudit.perturb._lut import apply_lut, apply_luts
from vfmaudit.perturb.registry import Family, register

F32 = np.float32


def _blend_lut(ratio: float, other: np.float32 | float | np.ndarray) -> np.ndarray:
    """Lookup table for clamp(ratio*x + (1-ratio)*other, 0, 255) truncated, in float32 as torch
    (other (n, 1) float32: n tables)."""
    x = np.arange(256, dtype=F32)
    val = F32(ratio) * x + F32(1.0 - ratio) * F32(other)
    return np.clip(val, 0, 255).astype(np.uint8)


def brightness(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    lut = _blend_lut(level, 0.0)
    return map_runs(lambda images, out: apply_lut(images, lut, out=out), batch)  # a lookup per thread's run


@njit(cache=True, nogil=True, inline="always")
def _gray(r: np.uint8, g: np.uint8, b: np.uint8) -> np.int32:
    # torchvision rgb_to_grayscale: float32 weighted sum in this order, truncated to uint8
    v = np.float32(0.2989) * np.float32(r) + np.float32(0.587) * np.float32(g)
    return np.int32(v + np.float32(0.114) * np.float32(b))


@njit(cache=True, nogil=True)
def _gray_sums(batch: np.ndarray, out: np.ndarray) -> None:
    # out[i] = the sum of image i's torchvision grays
    for i in range(batch.shape[0]):
        flat = batch[i].ravel()
        total = 0
        for p in range(flat.size // 3):
            total += _gray(flat[3 * p], flat[3 * p + 1], flat[3 * p + 2])
        out[i] = total


def contrast(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    h, w = batch.shape[1:3]

    def run(images: np.ndarray, out: np.ndarray) -> None:
        # per run of images: the grays' sums in one nogil call, the tables in one numpy expression,
        # the table passes in one more (per image, the Python around a 4 us table pass cost as much)
        sums = np.empty(images.shape[0], np.int64)
        _gray_sums(images, sums)
        # the sum of uint8 grays is exact in float32 up to 2**16 pixels, as in torch.mean
        means = sums.astype(F32) / F32(h * w)
        apply_luts(images, _blend_lut(level, means[:, None]), out)

    return map_runs(run, batch)


@njit(cache=True, nogil=True)
def _saturation_kernel(img: np.ndarray, ratio: np.float32, inv: np.float32, out: np.ndarray) -> None:
    src = img.ravel()
    dst = out.ravel()
    for p in range(src.size // 3):
        g_term = inv * np.float32(_gray(src[3 * p], src[3 * p + 1], src[3 * p + 2]))
        for c in range(3):
            v = ratio * np.float32(src[3 * p + c]) + g_term
            dst[3 * p + c] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))


def saturation(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    ratio, inv = F32(level), F32(1.0 - level)
    return map_into(lambda img, i, out: _saturation_kernel(img, ratio, inv, out), batch)


@njit(cache=True, nogil=True, error_model="numpy")  # no zero-division checks: lets it vectorise
def _hue_planar(r: np.ndarray, g: np.ndarray, b: np.ndarray, shift: np.float32,
                ro: np.ndarray, go: np.ndarray, bo: np.ndarray) -> None:
    # torchvision's _rgb2hsv / _hsv2rgb in float32 on planar channels, written with selects
    # only so that it vectorises; each select picks what torch's masked arithmetic produces.
    one = np.float32(1.0)
    zero = np.float32(0.0)
    six = np.float32(6.0)
    two, three, four, five = np.float32(2.0), np.float32(3.0), np.float32(4.0), np.float32(5.0)
    for p in range(r.size):
        rr, gg, bb = r[p], g[p], b[p]
        maxc = max(rr, max(gg, bb))
        minc = min(rr, min(gg, bb))
        eqc = maxc == minc
        cr = maxc - minc
        s = cr / (one if eqc else maxc)
        div = one if eqc else cr
        is_r = maxc == rr
        is_g = (maxc == gg) & (~is_r)
        # torch: hr = bc - gc if red is the max, hg = (2 + rc) - bc if green, hb = (4 + gc) - rc else, with
        # xc = (maxc - x) / div, summed with the two that are 0. Only two quotients are used per pixel:
        # selecting their numerators first makes two divisions of the same operands (the same bits), not three
        q1 = (maxc - (bb if is_r else (rr if is_g else gg))) / div
        q2 = (maxc - (gg if is_r else (bb if is_g else rr))) / div
        hh = ((zero if is_r else (two if is_g else four)) + q1) - q2  # 0 + q1 is q1 exactly
        hh = hh / six + one  # torch.fmod(h / 6 + 1, 1) on [0, 2): subtract 1 once when >= 1
        hh = hh - one if hh >= one else hh
        hh = hh + shift  # (h + shift) % 1 on (-0.5, 1.5), torch's floor-mod
        hh = hh + one if hh < zero else hh
        hh = hh - one if hh >= one else hh
        x6 = hh * six
        k = np.float32(np.int32(x6))  # floor, x6 >= 0
        f = x6 - k
        # the sector as a float32 (an integer sector would be int64 in Numba: half the vector width)
        ki = k - six if k >= six else k
        v = maxc
        # torch clamps these to [0, 1]: a no-op here (v, s, f and 1 - f lie in [0, 1], so each product of
        # two such factors, rounded, does too), left out: a tenth of the kernel's operations
        pp = v * (one - s)
        q = v * (one - s * f)
        t = v * (one - s * (one - f))
        s0, s1, s2, s3, s4, s5 = ki == zero, ki == one, ki == two, ki == three, ki == four, ki == five
        ro[p] = v if s0 | s5 else (q if s1 else (pp if s2 | s3 else t))
        go[p] = t if s0 else (v if s1 | s2 else (q if s3 else pp))
        bo[p] = pp if s0 | s1 else (t if s2 else (v if s3 | s4 else q))


_HUE_CHUNK = 2048  # pixels per pass: the six float planes of a chunk stay in L1 (48 KB)


@njit(cache=True, nogil=True, error_model="numpy")
def _hue_kernel(img: np.ndarray, shift: np.float32, out: np.ndarray) -> None:
    src = img.ravel()
    dst = out.ravel()
    n = src.size // 3
    planes = np.empty((6, _HUE_CHUNK), dtype=np.float32)
    scale = np.float32(255.0)
    to_u8 = np.float32(255.0 + 1.0 - 1e-3)  # float -> uint8 as convert_image_dtype
    for start in range(0, n, _HUE_CHUNK):
        m = min(_HUE_CHUNK, n - start)
        s = src[3 * start: 3 * (start + m)]
        for p in range(m):  # uint8 -> float32 as torchvision's convert_image_dtype
            planes[0, p] = np.float32(s[3 * p]) / scale
            planes[1, p] = np.float32(s[3 * p + 1]) / scale
            planes[2, p] = np.float32(s[3 * p + 2]) / scale
        _hue_planar(planes[0, :m], planes[1, :m], planes[2, :m], shift, planes[3, :m], planes[4, :m], planes[5, :m])
        d = dst[3 * start: 3 * (start + m)]
        for p in range(m):
            d[3 * p] = np.uint8(planes[3, p] * to_u8)
            d[3 * p + 1] = np.uint8(planes[4, p] * to_u8)
            d[3 * p + 2] = np.uint8(planes[5, p] * to_u8)


def hue(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    shift = F32(level)
    return map_into(lambda img, i, out: _hue_kernel(img, shift, out), batch)


register(Family(name="brightness", lo=0.2, hi=1.8, identity=1.0, units="factor", apply_batch=brightness,
                description="multiply intensities by the factor (torchvision adjust_brightness)"))
register(Family(name="contrast", lo=0.2, hi=1.8, identity=1.0, units="factor", apply_batch=contrast,
                description="blend with the mean gray level (torchvision adjust_contrast)"))
register(Family(name="saturation", lo=0.0, hi=2.0, identity=1.0, units="factor", apply_batch=saturation,
                description="blend with the grayscale image (torchvision adjust_saturation)"))
register(Family(name="hue", lo=-0.5, hi=0.5, identity=0.0, units="turns of the hue circle", apply_batch=hue,
                description="rotate hue in HSV space (torchvision adjust_hue)"))
