"""Downstream numbers: accuracy, expected calibration error, retrieval recall and mAP, and how well
the embedding metrics predict an accuracy drop (linear fit, AUROC, threshold at a precision)."""

from __future__ import annotations

import numpy as np

from vfmaudit.errors import VfmauditError


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE with `bins` equal-width confidence bins: sum_b |B|/N * |accuracy(B) - confidence(B)|."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise VfmauditError(f"probs must be (N, classes) and labels (N,), got {p.shape} and {y.shape}")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin b holds confidences in (edges[b], edges[b+1]]; confidence 0 goes to the first bin
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def recall_at_k(query: np.ndarray, gallery: np.ndarray, k: int) -> float:
    """Fraction of queries i whose own gallery row i is among their k most similar (cosine)."""
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    sims = q @ g.T
    own = sims[np.arange(len(q)), np.arange(len(q))]
    rank = (sims > own[:, None]).sum(axis=1)  # how many score strictly better than the right answer
    return float(np.mean(rank < k))


def mean_average_precision(query: np.ndarray, gallery: np.ndarray, labels: np.ndarray) -> float:
    """Class-level mAP: each query i ranks the gallery without its own row; relevant = same label."""
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    sims = q @ g.T
    aps = []
    for i in range(len(q)):
        others = np.delete(np.arange(len(g)), i)
        order = others[np.argsort(-sims[i, others], kind="stable")]
        relevant = labels[order] == labels[i]
        if not relevant.any():
            continue
        hits = np.cumsum(relevant)
        aps.append(float(np.mean(hits[relevant] / (np.flatnonzero(relevant) + 1))))
    return float(np.mean(aps)) if aps else float("nan")


def linear_fit(x: np.ndarray, y: np.ndarray) -> dict:
    """Least-squares y = slope * x + intercept, with R^2 and RMSE (None when x has no spread)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        return {"slope": None, "intercept": None, "r2": None, "rmse": None, "n": int(len(x))}
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {"slope": float(slope), "intercept": float(intercept),
            "r2": (1.0 - ss_res / ss_tot) if ss_tot > 0 else None,
            "rmse": float(np.sqrt(ss_res / len(x))), "n": int(len(x))}


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of `scores` for the boolean `positive` (ties count one half)."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def threshold_at_precision(scores: np.ndarray, positive: np.ndarray, precision: float = 0.95) -> float | None:
    """The smallest score t such that flagging every score >= t is right at least `precision` of the time."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    best = None
    for t in np.unique(s)[::-1]:  # from the highest score down: flags grow
        flagged = s >= t
        if pos[flagged].mean() >= precision:
            best = float(t)
    return best


def fpr_at_tpr(scores: np.ndarray, positive: np.ndarray, tpr: float = 0.95) -> float | None:
    """The false-positive rate at the highest threshold t that still flags (score >= t) at least `tpr`
    of the positives: FPR@95 of out-of-distribution detection, in-distribution the positive class."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    if not pos.any() or pos.all():
        return None
    ranked = np.sort(s[pos])[::-1]
    t = ranked[int(np.ceil(tpr * len(ranked))) - 1]  # the k-th highest positive, k = ceil(tpr * n)
    return float(np.mean(s[~pos] >= t))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the precision-recall curve as the step sum over thresholds (scikit-learn's
    average_precision_score): sum over distinct scores of (recall gained) x (precision there)."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    if not pos.any():
        return None
    order = np.argsort(-s, kind="mergesort")
    s, pos = s[order], pos[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the end of each run of equal scores
    tp = np.cumsum(pos)[last]
    precision, recall = tp / (last + 1), tp / pos.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
