"""The downstream tasks, each on embeddings: linear probe, kNN, retrieval, zero-shot.

Classifiers are fitted on clean training embeddings (as a deployed model would be) and applied
to the clean and perturbed test embeddings.
"""

from __future__ import annotations

import numpy as np

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class LinearProbe:
    """Multinomial logistic regression; C chosen on a stratified validation split of the training set."""

    def __init__(self, train_x: np.ndarray, train_y: np.ndarray, seed: int = 0):
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split

        x, y = _unit(train_x), np.asarray(train_y)
        self.C = C_GRID[2]
        counts = np.bincount(y)
        classes = int(np.count_nonzero(counts))
        held = int(np.ceil(0.25 * len(y)))
        self.C_chosen = "default: too few training images per class for a validation split"
        # a stratified split needs every class on both sides
        if len(y) >= 10 and counts[counts > 0].min() >= 2 and min(held, len(y) - held) >= classes:
            self.C_chosen = "validation split (25 % of the training images)"
            xa, xb, ya, yb = train_test_split(x, y, test_size=held, random_state=seed, stratify=y)
            scores = [LogisticRegression(C=c, max_iter=2000).fit(xa, ya).score(xb, yb) for c in C_GRID]
            self.C = C_GRID[int(np.argmax(scores))]  # the smallest C among equals: the most regularised
        self.model = LogisticRegression(C=self.C, max_iter=2000).fit(x, y)
        self.n_classes = int(y.max()) + 1

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(N, trained classes) logits whose softmax is proba's (a binary probe's d becomes [0, d])."""
        d = self.model.decision_function(_unit(x))
        return np.stack([np.zeros_like(d), d], axis=1) if d.ndim == 1 else d

    def proba(self, x: np.ndarray) -> np.ndarray:
        """(N, classes) probabilities, with a column for every class (absent ones: 0)."""
        p = self.model.predict_proba(_unit(x))
        out = np.zeros((len(p), self.n_classes))
        out[:, self.model.classes_] = p
        return out


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Majority vote of the k most cosine-similar training embeddings (ties: the smallest label)."""
    sims = _unit(x) @ _unit(train_x).T
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    labels = np.asarray(train_y)[top]
    n_classes = int(np.max(train_y)) + 1
    votes = np.stack([np.bincount(row, minlength=n_classes) for row in labels])
    return votes.argmax(axis=1)


def zero_shot_weights(text_embed, class_names: list[str], templates: list[str]) -> np.ndarray:
    """One unit vector per class: the mean of its prompts' text embeddings, normalised (CLIP's recipe)."""
    weights = []
    for name in class_names:
        emb = text_embed([t.format(name.replace("_", " ")) for t in templates])
        weights.append(_unit(emb).mean(axis=0))
    return _unit(np.stack(weights))


def zero_shot_logits(x: np.ndarray, class_weights: np.ndarray, logit_scale: float = 100.0) -> np.ndarray:
    return logit_scale * (_unit(x) @ class_weights.T)


def zero_shot_proba(x: np.ndarray, class_weights: np.ndarray, logit_scale: float = 100.0) -> np.ndarray:
    logits = zero_shot_logits(x, class_weights, logit_scale)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


# The classifiers each task runs and the metrics each reports (metric -> higher is better): read by
# the runner, the report page and the gate's downstream measurement.
KNN_KS = (1, 20)
TASK_KEYS = {"linear-probe": ("linear_probe",), "knn": tuple(f"knn_{k}" for k in KNN_KS),
             "retrieval": ("retrieval",), "zero-shot": ("zero_shot",)}
_CLASSIFIER = {"accuracy": True, "accuracy_drop": False}
TASK_METRICS = {"linear_probe": {**_CLASSIFIER, "ece": False},
                **{f"knn_{k}": dict(_CLASSIFIER) for k in KNN_KS},
                "zero_shot": {**_CLASSIFIER, "ece": False},
                "retrieval": {"recall@1": True, "recall@5": True, "map": True}}
