"""Per-value edits of uint8 images through a 256-entry lookup table."""

from __future__ import annotations

import numpy as np
import stringzilla  # SIMD byte translation (what albumentations uses)


def apply_lut(image: np.ndarray, lut: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """out[...] = lut[image[...]] for a C-contiguous uint8 array of any shape (out: C-contiguous, the
    same shape, or a new array)."""
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    if out is None:  # a fresh array: one pass (a copy translated in place was two, 1.5x the time)
        out = np.empty_like(image)
    stringzilla.translate(memoryview(image.reshape(-1)), memoryview(lut), out=memoryview(out.reshape(-1)))
    return out
