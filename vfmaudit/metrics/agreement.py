"""Label-free task agreement: do an image's nearest neighbours stay the same under another embedding?

For each image i, its k nearest neighbours among the other images (cosine) are taken once with
the reference embeddings and once with the candidate's embedding of i in place of the
reference's (against the candidate's gallery, or the reference gallery). top-1 agreement is
the fraction of images whose nearest neighbour is unchanged; overlap@k the mean fraction of
the k neighbours kept. This is what retrieval and kNN classification see, without labels.
"""

from __future__ import annotations

import numpy as np

from vfmaudit.errors import VfmauditError

DEFAULT_KS = (1, 5, 10)
AGREEMENT_KEYS = ("top1", *(f"overlap@{k}" for k in DEFAULT_KS))  # the keys neighbour_agreement returns


def _neighbours(queries: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of each query's k most similar gallery rows, excluding its own index."""
    sims = queries @ gallery.T
    np.fill_diagonal(sims, -np.inf)
    # argsort on (-sim, index) so ties break by index, the same for both embeddings
    order = np.lexsort((np.broadcast_to(np.arange(sims.shape[1]), sims.shape), -sims), axis=1)
    return order[:, :k]


def neighbour_agreement(reference: np.ndarray, candidate: np.ndarray, ks: tuple[int, ...] = DEFAULT_KS,
                        candidate_gallery: bool = True) -> dict[str, float | None]:
    """{'top1': ..., 'overlap@k': ...} for reference and candidate embeddings (N, D) of the same images.

    candidate_gallery: neighbours of the candidate's query are searched among the candidate's
    embeddings of the others (a re-indexed deployment: parity, INT8); False: among the reference
    ones (a perturbed query against a clean index). A k that needs more images than there are is None.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim != 2:
        raise VfmauditError(f"reference and candidate must be (N, D) of one shape, got {ref.shape} and {cand.shape}")
    ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
    cand = cand / np.maximum(np.linalg.norm(cand, axis=1, keepdims=True), 1e-12)
    n = len(ref)
    out: dict[str, float | None] = {}
    usable = [k for k in ks if 1 <= k <= n - 1]
    kmax = max(usable, default=0)
    if kmax:
        nb_ref = _neighbours(ref, ref, kmax)
        nb_cand = _neighbours(cand, cand if candidate_gallery else ref, kmax)
        out["top1"] = float(np.mean(nb_ref[:, 0] == nb_cand[:, 0]))
    else:
        out["top1"] = None
    for k in ks:
        if k in usable:
            kept = [len(set(nb_ref[i, :k]) & set(nb_cand[i, :k])) / k for i in range(n)]
            out[f"overlap@{k}"] = float(np.mean(kept))
        else:
            out[f"overlap@{k}"] = None
    return out


def mean_agreement(parts: list[dict]) -> dict:
    """Key-wise mean of several neighbour_agreement results (None where a k had too few images)."""
    if not parts:
        return {}
    return {k: (None if any(p[k] is None for p in parts) else float(np.mean([p[k] for p in parts])))
            for k in parts[0]}
