"""Per-value edits of uint8 images through a 256-entry lookup table."""

from __future__ import annotations

import cv2
import numpy as np

try:  # SIMD byte translation (what albumentations uses); OpenCV's LUT is the fallback
    import stringzilla as _sz
except ImportError:  # pragma: no cover - stringzilla is a dependency, the fallback is for odd installs
    _sz = None


def apply_lut(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """out[...] = lut[image[...]] for a C-contiguous uint8 array of any shape."""
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    if _sz is not None:
        out = image.copy()
        _sz.translate(memoryview(out.reshape(-1)), memoryview(lut), inplace=True)
        return out
    return cv2.LUT(image.reshape(1, -1), lut).reshape(image.shape)
