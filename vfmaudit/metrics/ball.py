"""Minimum enclosing balls of point sets: one set with its centre and support, or batches of radii."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.metrics.welzl import welzl_gram, welzl_gram_batch

# sets per chunk when forming Gram matrices: bounds the float64 copy of the points
_CHUNK_VALUES = 8_000_000


@dataclass(frozen=True)
class Ball:
    center: np.ndarray  # (d,) float64
    radius: float
    support: np.ndarray  # indices of the points that determine the ball


def _as_points(points: np.ndarray) -> np.ndarray:
    arr = np.asarray(points)
    if arr.ndim not in (2, 3) or arr.shape[-2] < 1 or arr.shape[-1] < 1:
        raise VfmauditError(
            f"points must have shape (n, d) or (B, n, d) with n, d >= 1, got {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise VfmauditError(f"points must be numeric, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise VfmauditError("points contain NaN or infinity; check the embeddings")
    return arr


def _centred_gram(sets: np.ndarray) -> np.ndarray:
    x = sets.astype(np.float64)
    x -= x.mean(axis=-2, keepdims=True)  # centring keeps inner products well conditioned
    return np.matmul(x, np.swapaxes(x, -1, -2))


def minimum_enclosing_ball(points: np.ndarray) -> Ball:
    """Exact minimum enclosing ball of one set of points (n, d): centre, radius, support indices."""
    pts = _as_points(points)
    if pts.ndim != 2:
        raise VfmauditError(f"minimum_enclosing_ball takes one set (n, d), got {pts.shape}")
    x = pts.astype(np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    gram = xc @ xc.T
    n = x.shape[0]
    lam = np.empty(n)
    support = np.empty(n, dtype=np.int64)
    r2, k = welzl_gram(gram, np.arange(n), lam, support)
    center = mean + lam @ xc
    return Ball(center=center, radius=float(np.sqrt(r2)), support=np.sort(support[:k]))


def divergence_radius(points: np.ndarray) -> float | np.ndarray:
    """Radius of the exact minimum enclosing ball: (n, d) -> float, (B, n, d) -> (B,) float64.

    For the robustness metric pass the clean embedding and its perturbed variants as the n
    points (L2-normalised, as every Encoder returns them).
    """
    pts = _as_points(points)
    if pts.ndim == 2:
        return float(np.sqrt(welzl_gram_batch(_centred_gram(pts[None]))[0]))
    b, n, d = pts.shape
    out = np.empty(b)
    chunk = max(1, _CHUNK_VALUES // (n * d))
    for start in range(0, b, chunk):
        out[start:start + chunk] = welzl_gram_batch(_centred_gram(pts[start:start + chunk]))
    return np.sqrt(out)
