"""Embedding drift metrics of DESIGN.md: cosine, euclidean and divergence radius."""

from __future__ import annotations

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.metrics.ball import divergence_radius


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _pair(clean: np.ndarray, perturbed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(clean, dtype=np.float64)
    p = np.asarray(perturbed, dtype=np.float64)
    if c.ndim + 1 != p.ndim or c.shape[:-1] != p.shape[:-2] or c.shape[-1] != p.shape[-1]:
        raise VfmauditError(
            f"clean must be (d,) or (B, d) and perturbed (n, d) or (B, n, d) to match; "
            f"got {c.shape} and {p.shape}"
        )
    return c, p


def cosine(clean: np.ndarray, perturbed: np.ndarray) -> float | np.ndarray:
    """mean_i cos(f(x), f(P(x, k_i))): clean (d,), perturbed (n, d) -> float; batched (B, d), (B, n, d) -> (B,)."""
    c, p = _pair(clean, perturbed)
    cos = np.einsum("...d,...nd->...n", l2_normalize(c), l2_normalize(p)).mean(axis=-1)
    return float(cos) if cos.ndim == 0 else cos


def euclidean(clean: np.ndarray, perturbed: np.ndarray) -> float | np.ndarray:
    """mean_i ||f(x) - f(P(x, k_i))|| on L2-normalised embeddings; shapes as cosine()."""
    c, p = _pair(clean, perturbed)
    dist = np.linalg.norm(l2_normalize(p) - l2_normalize(c)[..., None, :], axis=-1).mean(axis=-1)
    return float(dist) if dist.ndim == 0 else dist


def drift_metrics(clean: np.ndarray, perturbed: np.ndarray) -> dict[str, np.ndarray]:
    """All three metrics for a batch: clean (B, d), perturbed (B, n, d) -> dict of (B,) arrays.

    Embeddings are L2-normalised first; the clean embedding is one of the enclosed points.
    """
    c, p = _pair(clean, perturbed)
    if c.ndim == 1:
        c, p = c[None], p[None]
    cn, pn = l2_normalize(c), l2_normalize(p)
    points = np.concatenate([cn[:, None, :], pn], axis=1)
    return {
        "cosine": cosine(cn, pn),
        "euclidean": euclidean(cn, pn),
        "divergence_radius": divergence_radius(points),
    }
