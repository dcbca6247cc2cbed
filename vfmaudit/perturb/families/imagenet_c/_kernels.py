"""Numba kernels behind the ImageNet-C corruptions: the loops numpy would spell as many passes."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vfmaudit.perturb.families.noise import _hash32


@njit(cache=True, nogil=True)
def motion_blur(img: np.ndarray, weights: np.ndarray, dy: np.ndarray, dx: np.ndarray, out: np.ndarray) -> None:
    """out[y, x] = round(sum_i w_i img[clamp(y + dy_i), clamp(x + dx_i)]) per channel: ImageMagick's
    MotionBlurImage on uint8 (H, W, C) with edge virtual pixels."""
    h, w, c = img.shape
    n = weights.size
    for y in range(h):
        for x in range(w):
            for ch in range(c):
                acc = 0.0
                for i in range(n):
                    yy = min(max(y + dy[i], 0), h - 1)
                    xx = min(max(x + dx[i], 0), w - 1)
                    acc += weights[i] * img[yy, xx, ch]
                v = math.floor(acc + 0.5)
                out[y, x, ch] = np.uint8(min(max(v, 0.0), 255.0))


@njit(cache=True, nogil=True)
def _axis_map(n: int, z: float, index: np.ndarray, frac: np.ndarray) -> None:
    # clipped_zoom along one axis: centre crop of ceil(n / z), scipy.ndimage.zoom(order=1) to
    # round(crop * z) samples (coordinates o * (crop - 1) / (out - 1)), centre trim back to n
    crop = int(math.ceil(n / z))
    top = (n - crop) // 2
    zoomed = int(np.round(crop * z))
    trim = (zoomed - n) // 2
    step = (crop - 1) / (zoomed - 1) if zoomed > 1 else 0.0
    for o in range(n):
        coord = (o + trim) * step
        i0 = int(math.floor(coord))
        if i0 >= crop - 1:
            i0, f = crop - 1, 0.0
        else:
            f = coord - i0
        index[o] = top + i0
        frac[o] = f


@njit(cache=True, nogil=True)
def zoom_accumulate(img: np.ndarray, factors: np.ndarray, out: np.ndarray) -> None:
    """out += sum over factors of clipped_zoom(img, z), bilinear, for float32 (H, W, C)."""
    h, w, c = img.shape
    yi = np.empty(h, np.int64)
    yf = np.empty(h, np.float64)
    xi = np.empty(w, np.int64)
    xf = np.empty(w, np.float64)
    for z in factors:
        _axis_map(h, z, yi, yf)
        _axis_map(w, z, xi, xf)
        for y in range(h):
            y0 = yi[y]
            y1 = min(y0 + 1, h - 1)
            fy = yf[y]
            for x in range(w):
                x0 = xi[x]
                x1 = min(x0 + 1, w - 1)
                fx = xf[x]
                for ch in range(c):
                    top = img[y0, x0, ch] * (1.0 - fx) + img[y0, x1, ch] * fx
                    bottom = img[y1, x0, ch] * (1.0 - fx) + img[y1, x1, ch] * fx
                    out[y, x, ch] += top * (1.0 - fy) + bottom * fy


@njit(cache=True, nogil=True, inline="always")
def _reflect(i: int, n: int) -> int:
    # scipy's 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a
    if n == 1:
        return 0
    period = 2 * n
    i = i % period
    return i if i < n else period - 1 - i


@njit(cache=True, nogil=True)
def remap_reflect(img: np.ndarray, dy: np.ndarray, dx: np.ndarray, out: np.ndarray) -> None:
    """out[y, x] = img bilinearly sampled at (y + dy, x + dx), reflected at the borders
    (scipy.ndimage.map_coordinates(order=1, mode='reflect'))."""
    h, w, c = img.shape
    for y in range(h):
        for x in range(w):
            sy = y + dy[y, x]
            sx = x + dx[y, x]
            y0 = int(math.floor(sy))
            x0 = int(math.floor(sx))
            fy = sy - y0
            fx = sx - x0
            ya, yb = _reflect(y0, h), _reflect(y0 + 1, h)
            xa, xb = _reflect(x0, w), _reflect(x0 + 1, w)
            for ch in range(c):
                top = img[ya, xa, ch] * (1.0 - fx) + img[ya, xb, ch] * fx
                bottom = img[yb, xa, ch] * (1.0 - fx) + img[yb, xb, ch] * fx
                out[y, x, ch] = top * (1.0 - fy) + bottom * fy


@njit(cache=True, nogil=True)
def hsv_value_shift(img: np.ndarray, shift: float, out: np.ndarray) -> None:
    """skimage rgb2hsv, V = clip(V + shift, 0, 1), hsv2rgb, on [0, 1] floats. With hue and
    saturation fixed, HSV -> RGB is linear in V, so each pixel is scaled by V' / V."""
    h, w, _ = img.shape
    for y in range(h):
        for x in range(w):
            r, g, b = img[y, x, 0], img[y, x, 1], img[y, x, 2]
            v = max(r, g, b)
            nv = min(max(v + shift, 0.0), 1.0)
            if v > 0:
                k = nv / v
                out[y, x, 0], out[y, x, 1], out[y, x, 2] = r * k, g * k, b * k
            else:  # black: saturation 0 in skimage, so grey at the new value
                out[y, x, 0], out[y, x, 1], out[y, x, 2] = nv, nv, nv


@njit(cache=True, nogil=True)
def hsv_saturation_affine(img: np.ndarray, gain: float, offset: float, out: np.ndarray) -> None:
    """skimage rgb2hsv, S = clip(S * gain + offset, 0, 1), hsv2rgb, on [0, 1] floats. With hue and
    value fixed each channel is v - (S' / S) (v - channel); a grey pixel has hue 0 (red) in skimage."""
    h, w, _ = img.shape
    for y in range(h):
        for x in range(w):
            r, g, b = img[y, x, 0], img[y, x, 1], img[y, x, 2]
            v = max(r, g, b)
            m = min(r, g, b)
            if v <= 0:
                out[y, x, 0], out[y, x, 1], out[y, x, 2] = 0.0, 0.0, 0.0
                continue
            s = (v - m) / v
            ns = min(max(s * gain + offset, 0.0), 1.0)
            if v - m <= 0:
                out[y, x, 0], out[y, x, 1], out[y, x, 2] = v, v * (1.0 - ns), v * (1.0 - ns)
                continue
            k = ns / s
            out[y, x, 0] = v - k * (v - r)
            out[y, x, 1] = v - k * (v - g)
            out[y, x, 2] = v - k * (v - b)


@njit(cache=True)
def _splitmix_next(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def glass_shuffle(img: np.ndarray, seed: np.uint64, delta: int, iterations: int) -> None:
    """ImageNet-C's glass-blur loop, pixel for pixel: offsets drawn from [-delta, delta), and (as in
    the reference, whose tuple "swap" of numpy views copies one way) x[h, w] <- x[h', w']."""
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


@njit(cache=True, nogil=True, inline="always")
def _uniform(j: int, k1: np.uint32, k2: np.uint32) -> np.uint32:
    # counter-based: value j's 32 bits depend on (j, key) only, so the loop has no carried state
    return _hash32(np.uint32(_hash32(np.uint32(np.uint32(j) ^ k1)) + k2))


@njit(cache=True, nogil=True)
def sample_levels(img: np.ndarray, seed: np.uint64, thresholds: np.ndarray, guide: np.ndarray,
                  out: np.ndarray) -> None:
    """out = the k with T[v, k] <= u < T[v, k + 1] for each value v and a 32-bit uniform u: a draw from
    any per-grey-level output law given as cumulative thresholds T (256, 257), T[v, 0] = 0,
    T[v, 256] = 2^32. guide[v, b] is where the search for u's top byte b starts."""
    src = img.ravel()
    dst = out.ravel()
    k1, k2 = np.uint32(seed & np.uint64(0xFFFFFFFF)), np.uint32(seed >> np.uint64(32))
    for j in range(src.size):
        u = np.uint64(_uniform(j, k1, k2))
        v = src[j]
        k = guide[v, u >> np.uint64(24)]
        while thresholds[v, k + 1] <= u:
            k += 1
        dst[j] = np.uint8(k)


@njit(cache=True, nogil=True)
def salt_and_pepper(img: np.ndarray, seed: np.uint64, amount: float, out: np.ndarray) -> None:
    """Each value set to 0 with probability amount / 2, to 255 with amount / 2, else kept."""
    src = img.ravel()
    dst = out.ravel()
    k1, k2 = np.uint32(seed & np.uint64(0xFFFFFFFF)), np.uint32(seed >> np.uint64(32))
    pepper = np.uint32(min(amount * 0.5, 1.0) * 4294967295.0)
    salt = np.uint32(min(amount, 1.0) * 4294967295.0)
    for j in range(src.size):
        u = _uniform(j, k1, k2)
        v = src[j]
        v = np.uint8(255) if u < salt else v
        v = np.uint8(0) if u < pepper else v
        dst[j] = v


@njit(cache=True, nogil=True)
def add_offsets(img: np.ndarray, seed: np.uint64, thresholds: np.ndarray, guide: np.ndarray, kmin: int,
                guide_shift: int, out: np.ndarray) -> None:
    """out = clip(v + K) with K drawn from one law for every value: K = kmin + the k with
    T[k] <= u < T[k + 1] for a 32-bit uniform u (guide[u >> guide_shift] starts the search)."""
    src = img.ravel()
    dst = out.ravel()
    k1, k2 = np.uint32(seed & np.uint64(0xFFFFFFFF)), np.uint32(seed >> np.uint64(32))
    shift = np.uint64(guide_shift)
    for j in range(src.size):
        u = np.uint64(_uniform(j, k1, k2))
        k = guide[u >> shift]
        while thresholds[k + 1] <= u:
            k += 1
        v = np.int64(src[j]) + k + kmin
        dst[j] = np.uint8(min(max(v, 0), 255))


@njit(cache=True, nogil=True)
def speckle(img: np.ndarray, seed: np.uint64, c: float, quantiles: np.ndarray, out: np.ndarray) -> None:
    """out = uint8(clip(x (1 + c n), 0, 1) 255) with n a standard normal read off its quantile table
    (linear between 2^14 + 1 quantiles: the law to a part in 10^4 within 3.9 sigma)."""
    src = img.ravel()
    dst = out.ravel()
    k1, k2 = np.uint32(seed & np.uint64(0xFFFFFFFF)), np.uint32(seed >> np.uint64(32))
    m = quantiles.size - 1
    scale = m / 4294967296.0
    for j in range(src.size):
        pos = np.float64(_uniform(j, k1, k2)) * scale
        i = min(int(pos), m - 1)
        z = quantiles[i] + (quantiles[i + 1] - quantiles[i]) * (pos - i)
        x = np.float64(src[j]) * (1.0 / 255.0)
        y = x + x * c * z
        dst[j] = np.uint8(min(max(y, 0.0), 1.0) * 255.0)
