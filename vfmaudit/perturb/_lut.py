"""Per-value edits of uint8 images through a 256-entry lookup table: StringZilla's SIMD byte lookup.

stringzilla.translate holds the GIL while it translates (two threads ran no faster than one, measured),
so the tables are applied through its C function sz_lookup(target, length, source, lut), which its
extension module exports: from Python through ctypes (which releases the GIL for the call), and from a
nogil Numba loop over a run of images, one table each (apply_luts), without Python between images.
Where a StringZilla build does not export it, stringzilla.translate does the same work under the GIL.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np
import stringzilla  # SIMD byte translation (what albumentations uses)


def _load_sz_lookup():
    try:
        fn = ctypes.CDLL(stringzilla.__file__).sz_lookup
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = None
    return fn


_SZ_LOOKUP = _load_sz_lookup()


def _check(image: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
    if lut.shape[-1] != 256 or not lut.flags.c_contiguous:
        raise ValueError(f"a lookup table is 256 contiguous uint8 values, got shape {lut.shape}")
    if not (image.flags.c_contiguous and out.flags.c_contiguous and out.shape == image.shape
            and image.dtype == out.dtype == np.uint8):
        raise ValueError("apply_lut takes C-contiguous uint8 arrays of one shape")


def apply_lut(image: np.ndarray, lut: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """out[...] = lut[image[...]] for a C-contiguous uint8 array of any shape (out: C-contiguous, the
    same shape, or a new array). Releases the GIL while it runs."""
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    if out is None:  # a fresh array: one pass (a copy translated in place was two, 1.5x the time)
        out = np.empty_like(image)
    _check(image, lut, out)
    if _SZ_LOOKUP is not None:
        _SZ_LOOKUP(out.ctypes.data, image.size, image.ctypes.data, lut.ctypes.data)
    else:
        stringzilla.translate(memoryview(image.reshape(-1)), memoryview(lut), out=memoryview(out.reshape(-1)))
    return out


@lru_cache(maxsize=1)
def _lookup_each():
    # compiled on first use, not cached on disk: it calls a function pointer of this process
    from numba import njit

    lookup = _SZ_LOOKUP

    @njit(nogil=True, cache=False)
    def each(images, luts, out):
        for i in range(images.shape[0]):
            lookup(out[i].ctypes.data, images[i].size, images[i].ctypes.data, luts[i].ctypes.data)

    return each


def apply_luts(images: np.ndarray, luts: np.ndarray, out: np.ndarray) -> None:
    """out[i] = luts[i][images[i]] for a C-contiguous uint8 run of images (N, ...), luts (N, 256): one nogil
    call for the run (per image, the Python around a few-microsecond lookup cost a third as much again)."""
    luts = np.ascontiguousarray(luts, dtype=np.uint8)
    _check(images, luts, out)
    if luts.shape != (images.shape[0], 256):
        raise ValueError(f"one table per image: luts must be ({images.shape[0]}, 256), got {luts.shape}")
    if _SZ_LOOKUP is None:
        for i in range(images.shape[0]):
            apply_lut(images[i], luts[i], out=out[i])
        return
    _lookup_each()(images, luts, out)
