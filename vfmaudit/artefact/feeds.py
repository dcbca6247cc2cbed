"""What a deployed file takes as input, and how a batch of images becomes that input.

Two layouts exist: float32 NCHW normalised with the model's mean/std (a plain export), and
uint8 NHWC at the model's size (an export with the preprocessing baked into the graph).
"""

from __future__ import annotations

import numpy as np

from vfmaudit.models.preprocess import PreprocessSpec

INPUT_FLOAT_NCHW = "float32_nchw_normalized"
INPUT_UINT8_NHWC = "uint8_nhwc"
INPUT_FORMATS = (INPUT_FLOAT_NCHW, INPUT_UINT8_NHWC)


def make_feed(images: np.ndarray, input_format: str, preprocess: PreprocessSpec,
              dtype: type = np.float32) -> np.ndarray:
    """uint8 (N, H, W, 3) at the model's size -> the array the artefact's input takes."""
    if input_format == INPUT_UINT8_NHWC:
        return np.ascontiguousarray(images)
    return preprocess.normalize(images).astype(dtype, copy=False)


def pad_batch(images: np.ndarray, size: int) -> np.ndarray:
    """Repeat the last image up to `size` rows (static-batch artefacts, calibrators)."""
    n = len(images)
    if n >= size:
        return images
    return np.concatenate([images, np.repeat(images[-1:], size - n, axis=0)])
