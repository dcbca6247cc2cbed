"""The Encoder protocol every backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.models.preprocess import PreprocessSpec, prepare_batch


@runtime_checkable
class Encoder(Protocol):
    """uint8 RGB images (N, H, W, 3) in, float32 L2-normalised embeddings (N, D) out.

    The encoder owns its preprocessing (resize, centre crop, normalisation from the model's
    own config), so every backend sees the same input.
    """

    backend: str
    preprocess: PreprocessSpec
    embed_dim: int

    def encode(self, images: np.ndarray) -> np.ndarray: ...

    def describe(self) -> dict: ...


def check_images(images: np.ndarray | list) -> np.ndarray | list:
    if isinstance(images, list):
        if not all(isinstance(i, np.ndarray) and i.dtype == np.uint8 and i.ndim == 3 and i.shape[2] == 3
                   for i in images):
            raise VfmauditError("images must be uint8 RGB arrays of shape (H, W, 3)")
        return images
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise VfmauditError("images must be a uint8 numpy array (N, H, W, 3) of RGB")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise VfmauditError(f"images must have shape (N, H, W, 3), got {images.shape}")
    return images


def to_model_size(spec: PreprocessSpec, images: np.ndarray | list) -> np.ndarray:
    """Apply the geometric preprocessing unless the images already have the model's size."""
    images = check_images(images)
    if isinstance(images, np.ndarray) and images.shape[1:3] == tuple(spec.size):
        return images
    return prepare_batch(spec, list(images))
