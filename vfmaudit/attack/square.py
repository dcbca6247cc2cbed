"""The Square attack (Andriushchenko et al., ECCV 2020; the score-based part of AutoAttack), L-inf
and L2, black-box: it only encodes images, so it attacks any backend (an ONNX, INT8 Q/DQ or
TensorRT artefact) directly.

Every query is a uint8 image inside the budget, rounded, as every reported number is.
L-inf: the perturbation starts as vertical stripes of +-eps grey levels; each query redraws one
random square (per channel +-eps) of a side that shrinks on AutoAttack's schedule and keeps it
where the embedding loss rises. L2: the perturbation starts as a grid of two-lobed pseudo-Gaussian
tiles with random signs, at norm eps; each query picks two random squares and, per channel, moves
the second's share of the budget (and what is unused) into the first, there an even mix of its
old content and a fresh two-lobed pattern of random sign (the paper's Algorithm 3: the norm stays
eps), rounded toward the clean image so the norm cannot grow.
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


def _rings(a: int, b: int) -> np.ndarray:
    """An (a, b) pseudo-Gaussian: 1 / (k + 1)^2 summed over the concentric rectangles k that cover a
    cell (the paper's pattern), at unit L2 norm."""
    out = np.zeros((a, b))
    cy, cx = a // 2 - 1, b // 2 - 1
    for k in range(max(cy, cx) + 2):
        y0, y1 = max(cy - k, 0), min(cy + k + 2, a)
        x0, x1 = max(cx - k, 0), min(cx + k + 2, b)
        out[y0:y1, x0:x1] += 1.0 / (k + 1) ** 2
    return out / max(np.linalg.norm(out), 1e-12)


def two_lobes(side: int, rng: np.random.Generator) -> np.ndarray:
    """A (side, side) pattern of unit norm: one pseudo-Gaussian lobe up, one down, split across a
    random axis."""
    if side < 2:
        return np.ones((side, side))
    top = side // 2
    pattern = np.concatenate([_rings(top, side), -_rings(side - top, side)], axis=0)
    pattern = pattern if rng.random() < 0.5 else pattern.T
    return pattern / np.linalg.norm(pattern)


def _l2_start(n: int, h: int, w: int, c: int, eps: float, rng: np.random.Generator) -> np.ndarray:
    """The paper's start: tiles of side about min(h, w) / 5, each a two-lobed pattern with a random
    sign per channel, the whole at norm eps (in [0, 1] units)."""
    side = max(min(h, w) // 5, 1)
    delta = np.zeros((n, h, w, c))
    for i in range(n):
        for y in range(0, h, side):
            for x in range(0, w, side):
                tile = two_lobes(side, rng)[:h - y, :w - x]
                delta[i, y:y + side, x:x + side] = tile[..., None] * rng.choice([-1.0, 1.0], size=c)
    norms = np.linalg.norm(delta.reshape(n, -1), axis=1).reshape(n, 1, 1, 1)
    return delta * (eps / np.maximum(norms, 1e-12))


def square_l2(encode: Callable[[np.ndarray], np.ndarray], clean: np.ndarray, e_clean: np.ndarray,
              loss: Callable[[np.ndarray, np.ndarray], np.ndarray], eps: float, queries: int,
              rng: np.random.Generator, p_init: float = 0.8) -> tuple[np.ndarray, np.ndarray, int]:
    """clean: uint8 (N, H, W, 3) at the model's input size; eps: the L2 budget on [0, 1] pixels.
    -> (adversarial uint8 images, their losses, queries spent per image)."""
    from vfmaudit.attack.threat import to_uint8

    n, h, w, c = clean.shape
    x01 = clean.astype(np.float64) / 255.0
    if eps <= 0 or queries <= 0:
        return clean.copy(), loss(encode(clean), e_clean), 0

    def make(delta: np.ndarray) -> np.ndarray:
        return to_uint8(clean, x01 + delta, "l2", eps)

    delta = _l2_start(n, h, w, c, eps, rng)
    best = loss(encode(make(delta)), e_clean)
    spent = 1
    for it in range(1, queries):
        side = int(round(np.sqrt(_fraction(p_init, it, queries) * h * w)))
        side = min(max(side, 3), h, w)
        trial = delta.copy()
        for i in range(n):
            y1, x1 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            y2, x2 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            union = np.zeros((h, w), bool)
            union[y1:y1 + side, x1:x1 + side] = True
            union[y2:y2 + side, x2:x2 + side] = True
            d = trial[i]
            unused = max(eps ** 2 - float(np.sum(d ** 2)), 0.0)  # budget the clipping to the image freed
            eta = two_lobes(side, rng)
            for ch in range(c):  # the paper's update, channel by channel: the norm ends at eps
                nu = d[..., ch]
                old = nu[y1:y1 + side, x1:x1 + side]
                n_old = np.linalg.norm(old)
                mixed = rng.choice([-1.0, 1.0]) * eta + (old / n_old if n_old > 0 else 0.0)
                available = np.sqrt(float(np.sum(nu[union] ** 2)) + unused / c)
                nu[union] = 0.0  # the second square's share moves to the first
                nu[y1:y1 + side, x1:x1 + side] = mixed * (available / max(np.linalg.norm(mixed), 1e-12))
            d[...] = np.clip(x01[i] + d, 0.0, 1.0) - x01[i]  # inside the image: the norm can only shrink
        values = loss(encode(make(trial)), e_clean)
        spent += 1
        better = values > best
        delta[better] = trial[better]
        best = np.where(better, values, best)
    return make(delta), best, spent


def random_search_l2(encode, clean, e_clean, loss, eps: float, queries: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The L2 baseline of the same budget: random Gaussian directions at norm eps, best kept."""
    from vfmaudit.attack.threat import to_uint8

    x01 = clean.astype(np.float64) / 255.0
    best_img, best = clean.copy(), np.full(clean.shape[0], -np.inf)
    for _ in range(queries):
        z = rng.standard_normal(clean.shape)
        z *= eps / np.linalg.norm(z.reshape(len(z), -1), axis=1).reshape(-1, 1, 1, 1)
        img = to_uint8(clean, x01 + z, "l2", eps)
        values = loss(encode(img), e_clean)
        better = values > best
        best_img[better] = img[better]
        best = np.where(better, values, best)
    return best_img, best


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
