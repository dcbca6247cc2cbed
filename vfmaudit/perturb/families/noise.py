"""Additive Gaussian noise on the [0, 1] scale (ImageNet-C gaussian_noise semantics).

ImageNet-C computes uint8(clip(x/255 + sigma*n, 0, 1) * 255) with n ~ N(0, 1). For integer x
that equals clip(x + floor(s*n), 0, 255) with s = 255*sigma, so each pixel needs one draw of
the integer K = floor(s*n), whose law is exact: P(K < k) = Phi(k/s). K is drawn by inverting
that CDF with a 32-bit uniform (a 2^16-bucket table gives the start, an exact comparison
finishes), which is the same distribution as the float reference, at a fraction of its cost.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

from vfmaudit.perturb._batch import map_into
from vfmaudit.perturb.registry import Family, register

_BUCKET_BITS = 16


@lru_cache(maxsize=64)
def _cdf_tables(sigma: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Thresholds T[k - kmin] = round(2^32 * P(K < k)) and each bucket's first k."""
    s = 255.0 * sigma
    kmin, kmax = math.floor(-7.0 * s) - 1, math.ceil(7.0 * s) + 1
    ks = np.arange(kmin, kmax + 2)
    cdf = np.array([0.5 * math.erfc(-(k / s) / math.sqrt(2.0)) for k in ks])
    thresholds = np.round(cdf * 2.0**32).astype(np.uint64)
    thresholds[-1] = 2**32  # sentinel: no uniform reaches it
    buckets = np.arange(1 << _BUCKET_BITS, dtype=np.uint64) << np.uint64(32 - _BUCKET_BITS)
    start = np.searchsorted(thresholds, buckets, side="right") - 1  # last k with T <= bucket start
    return thresholds, np.clip(start, 0, len(ks) - 2).astype(np.int32), kmin


@njit(cache=True, nogil=True, inline="always")
def _hash32(x: np.uint32) -> np.uint32:
    # "lowbias32" integer hash (C. Wellons): a cheap, well-mixed counter-based generator.
    # Numba widens integer arithmetic to 64 bits, so every step truncates back to 32.
    x = np.uint32(x ^ (x >> np.uint32(16)))
    x = np.uint32(x * np.uint32(0x7FEB352D))
    x = np.uint32(x ^ (x >> np.uint32(15)))
    x = np.uint32(x * np.uint32(0x846CA68B))
    x = np.uint32(x ^ (x >> np.uint32(16)))
    return x


@njit(cache=True, nogil=True)
def _noise_kernel(img: np.ndarray, key: np.uint64, thresholds: np.ndarray, start: np.ndarray,
                  kmin: int, out: np.ndarray) -> None:
    src = img.ravel()
    dst = out.ravel()
    k1 = np.uint32(key & np.uint64(0xFFFFFFFF))
    k2 = np.uint32(key >> np.uint64(32))
    shift = np.uint32(32 - _BUCKET_BITS)
    for j in range(src.size):
        u = _hash32(np.uint32(_hash32(np.uint32(np.uint32(j) ^ k1)) + k2))
        k = start[u >> shift]
        while thresholds[k + 1] <= u:
            k += 1
        v = np.int32(src[j]) + np.int32(k + kmin)
        dst[j] = np.uint8(min(max(v, 0), 255))


def gaussian_noise(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    sigma = float(level)
    if sigma <= 0:
        return batch.copy()
    thresholds, start, kmin = _cdf_tables(sigma)
    return map_into(lambda img, i, out: _noise_kernel(img, seeds[i], thresholds, start, kmin, out), batch)


register(Family(name="gaussian_noise", lo=0.0, hi=0.4, identity=0.0, units="sigma on the [0, 1] scale",
                apply_batch=gaussian_noise, stochastic=True,
                description="add N(0, sigma^2) per channel on [0, 1], clip (ImageNet-C gaussian_noise)"))
