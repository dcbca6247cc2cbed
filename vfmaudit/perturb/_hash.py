"""A fast 64-bit content hash of image bytes (keys the random streams of stochastic edits)."""

from __future__ import annotations

import numpy as np
from numba import njit

_M = np.uint64(0x9FB21C651E98DF25)


@njit(cache=True, nogil=True)
def _mix(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(32)
    h *= _M
    h ^= h >> np.uint64(29)
    return h


@njit(cache=True, nogil=True)
def content_hash(flat: np.ndarray) -> np.uint64:
    """Hash of a C-contiguous uint8 array, four independent lanes over 64-bit words."""
    n = flat.size
    n8 = n // 8
    words = flat[: n8 * 8].view(np.uint64)
    h0 = np.uint64(0x9E3779B97F4A7C15)
    h1 = np.uint64(0xC2B2AE3D27D4EB4F)
    h2 = np.uint64(0x165667B19E3779F9)
    h3 = np.uint64(0x27D4EB2F165667C5)
    i = 0
    while i + 4 <= n8:
        h0 = (h0 ^ words[i]) * _M
        h1 = (h1 ^ words[i + 1]) * _M
        h2 = (h2 ^ words[i + 2]) * _M
        h3 = (h3 ^ words[i + 3]) * _M
        h0 ^= h0 >> np.uint64(29)
        h1 ^= h1 >> np.uint64(29)
        h2 ^= h2 >> np.uint64(29)
        h3 ^= h3 >> np.uint64(29)
        i += 4
    while i < n8:
        h0 = _mix(h0 ^ words[i])
        i += 1
    for j in range(n8 * 8, n):
        h1 = _mix(h1 ^ np.uint64(flat[j]))
    h = _mix(h0 ^ _mix(h1 ^ np.uint64(n)))
    return _mix(h ^ _mix(h2 ^ _mix(h3)))


@njit(cache=True, nogil=True)
def content_hashes(rows: np.ndarray, out: np.ndarray) -> None:
    """out[i] = content_hash(rows[i]) for a C-contiguous (n, bytes) uint8 array: one nogil call for a
    thread's run of images (the hash of a 224 px image is 20-30 us, too long to hold the GIL for)."""
    for i in range(rows.shape[0]):
        out[i] = content_hash(rows[i])
