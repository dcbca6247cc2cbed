"""Out-of-distribution detection: how well scores computed from the embeddings tell the test images
(in distribution) from images of no training class, clean and with the test images perturbed.

Every score is higher for what looks in distribution (the positive class of AUROC, FPR@95 and
AUPR-In):
- msp_TASK: the largest class probability of the linear probe or zero-shot classifier (Hendrycks &
  Gimpel, 2017);
- energy_TASK: the negative free energy logsumexp(logits) (Liu et al., 2020; temperature 1), from the
  probe's decision function or zero-shot's 100 x cosine logits;
- max_cosine: the largest cosine to a class prototype (the normalised mean of the class's
  normalised training embeddings);
- knn: minus the distance to the k-th nearest normalised training embedding (Sun et al., 2022).
"""

from __future__ import annotations

import numpy as np

from vfmaudit.metrics import auroc, average_precision, fpr_at_tpr, l2_normalize

KNN_OOD_K = 50  # Sun et al.'s k for ImageNet-1k; fewer training images: all of them
OOD_METRICS = ("auroc", "fpr95", "aupr_in")


def score_names(tasks: list[str]) -> list[str]:
    """The scores a run with these tasks (downstream's task names) computes, in report order."""
    logits = [t.replace("-", "_") for t in ("linear-probe", "zero-shot") if t in tasks]
    return [f"{kind}_{t}" for t in logits for kind in ("msp", "energy")] + ["max_cosine", "knn"]


def logsumexp(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))[:, 0]


def prototypes(train: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(classes, D): the normalised mean of each class's normalised training embeddings."""
    unit = l2_normalize(np.asarray(train, dtype=np.float64))
    return l2_normalize(np.stack([unit[labels == c].mean(axis=0) for c in np.unique(labels)]))


def knn_score(train: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Minus the distance of each normalised x to its k-th nearest normalised training embedding."""
    t, q = l2_normalize(np.asarray(train, dtype=np.float64)), l2_normalize(np.asarray(x, dtype=np.float64))
    d = np.sqrt(np.maximum(2.0 - 2.0 * (q @ t.T), 0.0))
    return -np.partition(d, k - 1, axis=1)[:, k - 1]


def scorers(train: np.ndarray, y_train: np.ndarray, logits: dict) -> tuple[dict, dict]:
    """name -> (embeddings -> score), and the scores' parameters. logits: task -> (embeddings -> logits)."""
    protos = prototypes(train, y_train)
    k = min(KNN_OOD_K, len(train))
    out = {}
    for task, fn in logits.items():
        out[f"msp_{task}"] = lambda x, fn=fn: _softmax(fn(x)).max(axis=1)
        out[f"energy_{task}"] = lambda x, fn=fn: logsumexp(fn(x))
    out["max_cosine"] = lambda x: (l2_normalize(np.asarray(x, dtype=np.float64)) @ protos.T).max(axis=1)
    out["knn"] = lambda x: knn_score(train, x, k)
    return out, {"knn_k": k, "energy_temperature": 1.0}


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def detection(id_scores: np.ndarray, ood_scores: np.ndarray) -> dict:
    """AUROC, FPR at 95 % TPR and AUPR with the in-distribution images the positives."""
    s = np.concatenate([id_scores, ood_scores])
    positive = np.r_[np.ones(len(id_scores), bool), np.zeros(len(ood_scores), bool)]
    return {"auroc": auroc(s, positive), "fpr95": fpr_at_tpr(s, positive, 0.95),
            "aupr_in": average_precision(s, positive)}


def ood_results(score_fns: dict, clean: np.ndarray, emb: dict, plans, ood_sets: dict) -> dict:
    """Per OOD set: per score its detection figures on the clean test images, and per family the
    AUROC at each level with the test images perturbed (the OOD images stay clean)."""
    results = {name: {"images": int(len(ood)), "scores": {}} for name, ood in ood_sets.items()}
    for score, fn in score_fns.items():  # the test images' scores once, for every OOD set
        id_clean = fn(clean)
        id_perturbed = {(p.name, lv): fn(np.asarray(emb[(p.name, lv)])) for p in plans for lv in p.levels}
        for name, ood in ood_sets.items():
            ood_s = fn(ood)
            families = {p.name: {"levels": list(p.levels),
                                 "auroc": [detection(id_perturbed[(p.name, lv)], ood_s)["auroc"] for lv in p.levels]}
                        for p in plans}
            results[name]["scores"][score] = {"clean": detection(id_clean, ood_s), "families": families}
    return results
