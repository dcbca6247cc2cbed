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

    def redraw(d: np.ndarray, _i: int, side: int) -> None:  # one random square, a new +-eps per channel
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        window = d[y:y + side, x:x + side]
        for _ in range(10):  # a new value for the square: not the one it has everywhere
            signs = (levels * rng.choice([-1, 1], size=c)).astype(np.int16)
            if not np.all(window == signs):
                break
        window[...] = signs

    return _search(encode, e_clean, loss, make, delta, redraw, queries, p_init, 1, (max(h - 1, 1), max(w - 1, 1)))


def _search(encode, e_clean, loss, make: Callable[[np.ndarray], np.ndarray], delta: np.ndarray,
            update: Callable[[np.ndarray, int, int], None], queries: int, p_init: float, min_side: int,
            largest: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Square's random search, both norms: each query changes every image's perturbation by
    update(delta_i, i, side), the square's side on AutoAttack's schedule within [min_side, largest],
    and keeps the change where the loss rose. -> (make(best delta), its losses, queries spent)."""
    h, w = delta.shape[1:3]
    best = loss(encode(make(delta)), e_clean)
    spent = 1
    for it in range(1, queries):
        side = int(round(np.sqrt(_fraction(p_init, it, queries) * h * w)))
        side = min(max(side, min_side), *largest)
        trial = delta.copy()
        for i in range(len(trial)):
            update(trial[i], i, side)
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

    def move(d: np.ndarray, i: int, side: int) -> None:  # the paper's update
        y1, x1 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        y2, x2 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        union = np.zeros((h, w), bool)
        union[y1:y1 + side, x1:x1 + side] = True
        union[y2:y2 + side, x2:x2 + side] = True
        unused = max(eps ** 2 - float(np.sum(d ** 2)), 0.0)  # budget the clipping to the image freed
        eta = two_lobes(side, rng)
        for ch in range(c):  # channel by channel: the norm ends at eps
            nu = d[..., ch]
            old = nu[y1:y1 + side, x1:x1 + side]
            n_old = np.linalg.norm(old)
            mixed = rng.choice([-1.0, 1.0]) * eta + (old / n_old if n_old > 0 else 0.0)
            available = np.sqrt(float(np.sum(nu[union] ** 2)) + unused / c)
            nu[union] = 0.0  # the second square's share moves to the first
            nu[y1:y1 + side, x1:x1 + side] = mixed * (available / max(np.linalg.norm(mixed), 1e-12))
        d[...] = np.clip(x01[i] + d, 0.0, 1.0) - x01[i]  # inside the image: the norm can only shrink

    return _search(encode, e_clean, loss, make, delta, move, queries, p_init, 3, (h, w))


def random_search_l2(encode, clean, e_clean, loss, eps: float, queries: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The L2 baseline of the same budget: random Gaussian directions at norm eps, best kept."""
    from vfmaudit.attack.threat import random_in_budget

    return _best_of(encode, clean, e_clean, loss, lambda: random_in_budget(clean, "l2", eps, rng), queries)


def random_search_linf(encode, clean, e_clean, loss, levels: int, queries: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The baseline of the same budget: random corners of the L-inf ball (+-eps per value), best kept."""
    base = clean.astype(np.int16)
    return _best_of(encode, clean, e_clean, loss,
                    lambda: np.clip(base + levels * rng.choice([-1, 1], size=clean.shape), 0, 255).astype(np.uint8),
                    queries)


def _best_of(encode, clean, e_clean, loss, draw: Callable[[], np.ndarray], queries: int) -> tuple[np.ndarray, np.ndarray]:
    """The best per image of `queries` independent draws of images."""
    best_img, best = clean.copy(), np.full(clean.shape[0], -np.inf)
    for _ in range(queries):
        img = draw()
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
