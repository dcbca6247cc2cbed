"""Shared plumbing for perturbations: input checks, thread fan-out, per-image seeds."""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.perturb._hash import content_hashes

_num_threads = max(1, os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None
_pool_size = 0

_MASK64 = (1 << 64) - 1
SPLITMIX_GAMMA = 0x9E3779B97F4A7C15  # splitmix64's increment (2^64 / golden ratio)


def set_num_threads(n: int) -> None:
    """Threads a batch is spread over, one contiguous run of images each (OpenCV and nogil Numba
    kernels alike)."""
    global _num_threads
    if n < 1:
        raise VfmauditError(f"thread count must be >= 1, got {n}")
    _num_threads = int(n)


def get_num_threads() -> int:
    return _num_threads


def as_batch(images: np.ndarray) -> tuple[np.ndarray, bool]:
    """Validate uint8 RGB images; return a C-contiguous (N,H,W,3) view and whether input was one image."""
    if not isinstance(images, np.ndarray):
        raise VfmauditError(f"images must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise VfmauditError(
            f"images must be uint8 RGB, got dtype {images.dtype}; convert with np.clip(x, 0, 255).astype(np.uint8)"
        )
    single = images.ndim == 3
    batch = images[None] if single else images
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise VfmauditError(
            f"images must have shape (H, W, 3) or (N, H, W, 3), got {images.shape}"
        )
    return np.ascontiguousarray(batch), single


def map_into(fn: Callable[[np.ndarray, int, np.ndarray], None], batch: np.ndarray) -> np.ndarray:
    """fn(batch[i], i, out[i]) writes image i of the result; runs of images spread over a thread pool
    (OpenCV and nogil Numba kernels release the GIL). out[i] is C-contiguous."""
    out = np.empty_like(batch)

    def run(a: int, b: int) -> None:
        for i in range(a, b):
            fn(batch[i], i, out[i])

    _fan_out(run, batch.shape[0])
    return out


def map_runs(fn: Callable[[np.ndarray, np.ndarray], None], batch: np.ndarray) -> np.ndarray:
    """fn(batch[a:b], out[a:b]) for one contiguous run of images per thread: for edits whose work per
    image is too small to pay a call each (a whole run in one nogil call, then numpy over the run)."""
    out = np.empty_like(batch)
    _fan_out(lambda a, b: fn(batch[a:b], out[a:b]), batch.shape[0])
    return out


def _fan_out(run: Callable[[int, int], None], n: int) -> None:
    """run(a, b) on one contiguous run of the n images per thread, not one task per image: a task's
    hand-off costs more than a fast edit of a 224 px image, and it holds the GIL while it does."""
    threads = max(1, min(_num_threads, n))
    bounds = [n * t // threads for t in range(threads + 1)]
    if threads == 1:
        run(0, n)
    else:
        list(_get_pool(threads).map(lambda t: run(bounds[t], bounds[t + 1]), range(threads)))


def map_images(fn: Callable[[np.ndarray, int], np.ndarray], batch: np.ndarray) -> np.ndarray:
    """out[i] = fn(batch[i], i), for functions that return a new image (OpenCV calls)."""

    def into(img: np.ndarray, i: int, out: np.ndarray) -> None:
        out[...] = fn(img, i)

    return map_into(into, batch)


def _get_pool(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != threads:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vfmaudit-perturb")
        _pool_size = threads
    return _pool


def _splitmix64(x: int) -> int:
    x = (x + SPLITMIX_GAMMA) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def image_seeds(batch: np.ndarray, seed: int, name: str, level: float) -> np.ndarray:
    """One 64-bit seed per image from (seed, family, level, image content).

    Keyed on content, not batch position, so an image gets the same random edit whether it is
    processed alone or inside any batch, on any number of threads.
    """
    base = _splitmix64(int(seed) & _MASK64)
    base = _splitmix64(base ^ zlib.crc32(name.encode()))
    base = _splitmix64(base ^ (int(np.float64(level).view(np.uint64)) & _MASK64))
    n = batch.shape[0]
    flat = np.ascontiguousarray(batch).reshape(n, -1)
    contents = np.empty(n, dtype=np.uint64)
    _fan_out(lambda a, b: content_hashes(flat[a:b], contents[a:b]), n)  # in the threads, not before them
    shape_key = (batch.shape[1] << 16) ^ batch.shape[2]  # an image's (rows, columns)
    return np.array([_splitmix64(base ^ int(c) ^ shape_key) for c in contents], dtype=np.uint64)
