"""ImageNet-C noise: gaussian, shot (Poisson), impulse (salt and pepper), speckle."""

from __future__ import annotations

import numpy as np

from vfmaudit.perturb.families.imagenet_c._common import rng, to_uint8, unit
from vfmaudit.perturb.families.noise import gaussian_noise as _fast_gaussian_noise


def gaussian_noise(img: np.ndarray, p: dict, seed: int) -> np.ndarray:
    # uint8(clip(x + N(0, c), 0, 1) * 255): the engine's exact integer form of the same law
    return _fast_gaussian_noise(img[None], p["c"], np.array([seed], np.uint64))[0]


def shot_noise(img: np.ndarray, p: dict, seed: int) -> np.ndarray:
    c = p["c"]
    return to_uint8(rng(seed).poisson(unit(img) * c) / c)


def impulse_noise(img: np.ndarray, p: dict, seed: int) -> np.ndarray:
    # skimage random_noise(mode='s&p', amount=c): each channel value is flipped with probability c,
    # then to 1 or 0 with equal odds (salt_vs_pepper 0.5); one uniform decides both
    u = rng(seed).random(img.shape, dtype=np.float32)
    c = np.float32(p["c"])
    out = img.copy()
    out[u < c * np.float32(0.5)] = 0
    out[(u >= c * np.float32(0.5)) & (u < c)] = 255
    return out


def speckle_noise(img: np.ndarray, p: dict, seed: int) -> np.ndarray:
    x = unit(img)
    return to_uint8(x + x * rng(seed).normal(0.0, p["c"], img.shape).astype(np.float32))
