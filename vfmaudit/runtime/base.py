"""The Encoder protocol every backend implements."""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np

from vfmaudit.artefact.feeds import make_feed, pad_batch
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


def device_index(device: str) -> int:
    """cuda -> 0, cuda:N -> N: the GPU that provider options, bindings, engines and events name."""
    _, _, index = device.partition(":")
    if index and not index.isdigit():
        raise VfmauditError(f"unknown device '{device}'; use cpu, cuda or cuda:N", param="device")
    return int(index or 0)


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


def encode_batches(images: np.ndarray | list, preprocess: PreprocessSpec, embed_dim: int, step: int,
                   input_format: str, run: Callable[[np.ndarray], np.ndarray], pad_to: int | None = None,
                   input_dtype: type = np.float32) -> np.ndarray:
    """Artefact encoders' loop: model-size uint8 -> (normalised) feed per chunk -> run ->
    L2-normalised float32 rows. pad_to: a static batch size the last chunk is padded to."""
    batch = to_model_size(preprocess, images)
    out = np.empty((batch.shape[0], embed_dim), dtype=np.float32)
    for start in range(0, batch.shape[0], step):
        chunk = batch[start:start + step]
        n = chunk.shape[0]
        if pad_to:
            chunk = pad_batch(chunk, pad_to)
        feed = make_feed(chunk, input_format, preprocess, input_dtype)
        emb = np.asarray(run(feed), dtype=np.float32)[:n]
        out[start:start + n] = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return out


def to_model_size(spec: PreprocessSpec, images: np.ndarray | list) -> np.ndarray:
    """Apply the geometric preprocessing unless the images already have the model's size."""
    images = check_images(images)
    if isinstance(images, np.ndarray) and images.shape[1:3] == tuple(spec.size):
        return images
    return prepare_batch(spec, list(images))
