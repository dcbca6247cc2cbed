"""ImageNet-C noise: gaussian, shot (Poisson), impulse (salt and pepper), speckle.

Each output value depends on its input grey level and one random draw, so each is drawn from the
original's law with one 32-bit uniform (a splitmix64 stream per image): gaussian noise as an integer offset whose law is exact
(the original's truncation included), shot noise from per-grey-level tables of the Poisson law
under the original's float arithmetic, speckle through the normal's quantile table.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from vfmaudit.perturb.families.imagenet_c import _kernels
from vfmaudit.perturb.families.imagenet_c._common import output_for

_LEVELS = np.arange(256, dtype=np.float64)


def _tables(cdf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cdf[v, k] = P(out <= k | v) (256, 256) -> thresholds (256, 257) and the search guide (256, 256)."""
    below = np.concatenate([np.zeros((256, 1)), np.clip(cdf, 0.0, 1.0)], axis=1)  # P(out < k), k = 0..256
    below = np.maximum.accumulate(below, axis=1)
    thresholds = np.round(below * 2.0 ** 32).astype(np.uint64)
    thresholds[:, 256] = 2 ** 32  # no uniform reaches it
    starts = np.arange(256, dtype=np.uint64) << np.uint64(24)
    guide = np.stack([np.searchsorted(t, starts, side="right") - 1 for t in thresholds]).clip(0, 255)
    return thresholds, guide.astype(np.int32)


_TABLE_BITS = 14  # 2^14 buckets of uint16: 32 KB, in L1 beside the values


@lru_cache(maxsize=64)
def gaussian_offsets(c: float) -> tuple[np.ndarray, np.ndarray, int, int]:
    """uint8(clip(v / 255 + c n, 0, 1) 255) is clip(v + K) with K = floor(255 c n), whatever v: K's
    law P(K < k) = Phi(k / (255 c)) as thresholds over k = -256..256 (K beyond +-256 clips as +-256
    does, for every v), and a table by the top 14 bits of the uniform: the k of that bucket, or its
    first k and the top bit set where a threshold falls inside the bucket.
    -> (table, thresholds, kmin, shift)."""
    from scipy.special import ndtr  # here, not at import: scipy.special costs every process a quarter second

    s = 255.0 * c
    ks = np.arange(-256, 256 + 2)
    thresholds = np.round(ndtr(ks / s) * 2.0 ** 32).astype(np.uint64)
    thresholds[0], thresholds[-1] = 0, 2 ** 32
    shift = 32 - _TABLE_BITS
    starts = np.arange(1 << _TABLE_BITS, dtype=np.uint64) << np.uint64(shift)
    ends = starts + np.uint64((1 << shift) - 1)
    last_k = len(ks) - 2
    first = (np.searchsorted(thresholds, starts, side="right") - 1).clip(0, last_k)
    last = (np.searchsorted(thresholds, ends, side="right") - 1).clip(0, last_k)
    table = (first | np.where(first != last, 0x8000, 0)).astype(np.uint16)
    return table, thresholds, -256, shift


@lru_cache(maxsize=1)
def normal_quantiles() -> np.ndarray:
    """N(0, 1) at the midpoints of 2^16 equal-probability cells, float32 (256 KB, in L2); the kernels
    index it with a uniform's top 16 bits. Each cell holds probability 2^-16 exactly, so every
    threshold of the output law is off by less than 2^-16, out to 4.3 sigma."""
    from scipy.special import ndtri

    return ndtri((np.arange(2 ** 16) + 0.5) / 2 ** 16).astype(np.float32)


@lru_cache(maxsize=64)
def shot_tables(c: float) -> tuple[np.ndarray, np.ndarray]:
    # poisson(x c) / c truncated: out <= k  <=>  N <= n_k, the largest count whose uint8(N / c * 255) <= k
    from scipy.special import pdtr

    counts = np.arange(int(np.ceil(c)) + 2, dtype=np.float64)
    out = (np.clip(counts / c, 0, 1) * 255).astype(np.uint8)  # the original's float arithmetic, count by count
    n_k = np.searchsorted(out, np.arange(256), side="right") - 1  # out is non-decreasing in N
    rates = (_LEVELS / 255.0 * c)[:, None]
    cdf = np.where(n_k[None, :] >= 0, pdtr(np.maximum(n_k, 0)[None, :], rates), 0.0)
    cdf[:, 255] = 1.0
    cdf[0, :] = 1.0  # rate 0: no photon, out 0
    return _tables(cdf)


def gaussian_noise(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    table, thresholds, kmin, shift = gaussian_offsets(float(p["c"]))
    out = output_for(img, out)
    _kernels.add_offsets(img, np.uint64(seed), table, thresholds, kmin, shift, out)
    return out


def shot_noise(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    thresholds, guide = shot_tables(float(p["c"]))
    out = output_for(img, out)
    _kernels.sample_levels(img, np.uint64(seed), thresholds, guide, out)
    return out


def speckle_noise(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    out = output_for(img, out)
    _kernels.speckle(img, np.uint64(seed), float(p["c"]), normal_quantiles(), out)
    return out


def impulse_noise(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    # skimage random_noise(mode='s&p', amount=c): each channel value is flipped with probability c,
    # then to 1 or 0 with equal odds (salt_vs_pepper 0.5); one uniform decides both
    out = output_for(img, out)
    _kernels.salt_and_pepper(img, np.uint64(seed), float(p["c"]), out)
    return out
