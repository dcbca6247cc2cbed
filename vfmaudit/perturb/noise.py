"""Additive Gaussian noise on the [0, 1] scale (ImageNet-C gaussian_noise semantics)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from vfmaudit.perturb._batch import map_images
from vfmaudit.perturb.registry import Family, register


@njit(cache=True)
def _add_noise(img: np.ndarray, noise: np.ndarray, sigma: np.float32, out: np.ndarray) -> None:
    flat_in = img.ravel()
    flat_noise = noise.ravel()
    flat_out = out.ravel()
    inv = np.float32(1.0 / 255.0)
    for j in range(flat_in.size):
        v = np.float32(flat_in[j]) * inv + sigma * flat_noise[j]
        v = min(max(v, np.float32(0.0)), np.float32(1.0))
        flat_out[j] = np.uint8(v * np.float32(255.0))


def gaussian_noise(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    sigma = np.float32(level)
    if sigma <= 0:
        return batch.copy()

    def noisy(img: np.ndarray, i: int) -> np.ndarray:
        # one generator per image, keyed on its seed: the same bytes alone or in any batch
        rng = np.random.Generator(np.random.SFC64(int(seeds[i])))
        noise = rng.standard_normal(img.shape, dtype=np.float32)
        out = np.empty_like(img)
        _add_noise(img, noise, sigma, out)
        return out

    return map_images(noisy, batch)


register(Family("gaussian_noise", 0.0, 0.4, 0.0, "sigma on the [0, 1] scale",
                "add N(0, sigma^2) per channel on [0, 1], clip (ImageNet-C gaussian_noise)",
                gaussian_noise, stochastic=True))
