"""Embedding drift metrics of docs/architecture.md: cosine, euclidean and divergence radius.

The three are registered in the metrics registry here; `drift_metrics` computes every
registered metric for a batch.
"""

from __future__ import annotations

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.metrics.ball import divergence_radius
from vfmaudit.metrics.registry import Metric, metrics, register_metric


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


def _cosine_levels(cn: np.ndarray, pn: np.ndarray) -> np.ndarray:
    return np.einsum("...d,...nd->...n", cn, pn)


def _euclidean_levels(cn: np.ndarray, pn: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pn - cn[..., None, :], axis=-1)


def _radius(cn: np.ndarray, pn: np.ndarray) -> np.ndarray:
    # the clean embedding is one of the enclosed points
    return divergence_radius(np.concatenate([cn[:, None, :], pn], axis=1))


def cosine(clean: np.ndarray, perturbed: np.ndarray) -> float | np.ndarray:
    """mean_i cos(f(x), f(P(x, k_i))): clean (d,), perturbed (n, d) -> float; batched (B, d), (B, n, d) -> (B,)."""
    c, p = _pair(clean, perturbed)
    cos = _cosine_levels(l2_normalize(c), l2_normalize(p)).mean(axis=-1)
    return float(cos) if cos.ndim == 0 else cos


def euclidean(clean: np.ndarray, perturbed: np.ndarray) -> float | np.ndarray:
    """mean_i ||f(x) - f(P(x, k_i))|| on L2-normalised embeddings; shapes as cosine()."""
    c, p = _pair(clean, perturbed)
    dist = _euclidean_levels(l2_normalize(c), l2_normalize(p)).mean(axis=-1)
    return float(dist) if dist.ndim == 0 else dist


def drift_metrics(clean: np.ndarray, perturbed: np.ndarray) -> dict[str, np.ndarray | float]:
    """Every registered metric: clean (B, d), perturbed (B, n, d) -> dict of (B,) arrays; one image,
    clean (d,) and perturbed (n, d) -> dict of floats.

    Embeddings are L2-normalised first; the clean embedding is one of the enclosed points.
    """
    c, p = _pair(clean, perturbed)
    single = c.ndim == 1
    if single:
        c, p = c[None], p[None]
    cn, pn = l2_normalize(c), l2_normalize(p)
    values = {name: m.compute(cn, pn)[0] for name, m in metrics().items()}
    return {name: float(v[0]) for name, v in values.items()} if single else values


register_metric(Metric(name="cosine", higher_is_better=True, range=(-1.0, 1.0), per_level=_cosine_levels,
                       headline=2, display_name="cosine", symbol="cos",
                       description="mean cosine similarity between clean and perturbed embeddings (1 = robust)"))
register_metric(Metric(name="euclidean", higher_is_better=False, range=(0.0, 2.0), per_level=_euclidean_levels,
                       description="mean L2 distance between clean and perturbed embeddings (0 = robust)"))
register_metric(Metric(name="divergence_radius", higher_is_better=False, range=(0.0, 1.0), per_image=_radius,
                       headline=1, display_name="divergence radius", symbol="radius",
                       description="radius of the minimum enclosing ball of the clean and perturbed embeddings "
                                   "(0 = robust, at most 1); reacts to the single worst edit"))
