"""The Square attack (Andriushchenko et al., ECCV 2020; the score-based part of AutoAttack), L-inf,
black-box: it only encodes images, so it attacks any backend (an ONNX, INT8 Q/DQ or TensorRT
artefact) directly.

It works on the uint8 images themselves: every query is an image inside the budget, rounded, as
every reported number is. The perturbation starts as vertical stripes of +-eps grey levels; each
query redraws one random square (per channel +-eps) of a side that shrinks on AutoAttack's
schedule and keeps it where the embedding loss rises.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _fraction(p_init: float, it: int, queries: int) -> float:
    # AutoAttack's p_selection, on a schedule stretched to the query budget (10,000 in the paper)
    t = int(it / max(queries, 1) * 10000)
    for bound, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128),
                       (8000, 256)):
        if t <= bound:
            return p_init / div
    return p_init / 512


def square_linf(encode: Callable[[np.ndarray], np.ndarray], clean: np.ndarray, e_clean: np.ndarray,
                loss: Callable[[np.ndarray, np.ndarray], np.ndarray], levels: int, queries: int,
                rng: np.random.Generator, p_init: float = 0.8) -> tuple[np.ndarray, np.ndarray, int]:
    """clean: uint8 (N, H, W, 3) at the model's input size; levels: the budget in grey levels.
    -> (adversarial uint8 images, their losses, queries spent per image)."""
    n, h, w, c = clean.shape
    base = clean.astype(np.int16)
    if levels <= 0 or queries <= 0:
        return clean.copy(), loss(encode(clean), e_clean), 0

    def make(delta: np.ndarray) -> np.ndarray:
        return np.clip(base + delta, 0, 255).astype(np.uint8)

    delta = (levels * rng.choice([-1, 1], size=(n, 1, w, c))).astype(np.int16).repeat(h, axis=1)  # stripes
    best = loss(encode(make(delta)), e_clean)
    spent = 1
    for it in range(1, queries):
        side = int(round(np.sqrt(_fraction(p_init, it, queries) * h * w)))
        side = min(max(side, 1), h - 1 if h > 1 else 1, w - 1 if w > 1 else 1)
        trial = delta.copy()
        for i in range(n):
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            window = trial[i, y:y + side, x:x + side]
            for _ in range(10):  # a new value for the square: not the one it has everywhere
                signs = (levels * rng.choice([-1, 1], size=c)).astype(np.int16)
                if not np.all(window == signs):
                    break
            window[...] = signs
        values = loss(encode(make(trial)), e_clean)
        spent += 1
        better = values > best
        delta[better] = trial[better]
        best = np.where(better, values, best)
    return make(delta), best, spent


def random_search_linf(encode, clean, e_clean, loss, levels: int, queries: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The baseline of the same budget: random corners of the L-inf ball (+-eps per value), best kept."""
    base = clean.astype(np.int16)
    best_img, best = clean.copy(), np.full(clean.shape[0], -np.inf)
    for _ in range(queries):
        img = np.clip(base + levels * rng.choice([-1, 1], size=clean.shape), 0, 255).astype(np.uint8)
        values = loss(encode(img), e_clean)
        better = values > best
        best_img[better] = img[better]
        best = np.where(better, values, best)
    return best_img, best


def numpy_loss(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The embedding losses on numpy embeddings (L2-normalised, as every encoder returns them)."""
    if name == "cosine":
        return lambda e, e0: 1.0 - np.sum(e * e0, axis=1) / np.maximum(
            np.linalg.norm(e, axis=1) * np.linalg.norm(e0, axis=1), 1e-12)
    return lambda e, e0: np.sum((e - e0) ** 2, axis=1)
