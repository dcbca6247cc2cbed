"""`vfmaudit downstream --ood`: out-of-distribution detection. The detection figures against
scikit-learn (roc_auc_score, roc_curve, average_precision_score) and brute force; every score
recomputed from the run's saved embeddings with scikit-learn's probe and plain numpy formulas; the
OOD embeddings re-encoded independently; the errors. (The gate's downstream.ood.* values:
test_downstream_shift.py; the run: conftest's downstream_extras.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from cli_runner import run_cli
from vfmaudit.data.datasets import load_dataset
from vfmaudit.metrics import average_precision, fpr_at_tpr

from conftest import EXTRAS_COMMON as COMMON, EXTRAS_MODEL as MODEL


def _brute_fpr95(scores, positive):
    """The definition: the highest threshold that keeps at least 95 % of the positives, by trying each."""
    for t in np.unique(scores)[::-1]:
        if np.mean(scores[positive] >= t) >= 0.95:
            return float(np.mean(scores[~positive] >= t))
    return None


def test_detection_figures_equal_scikit_learn_and_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(4, 60))
        scores = np.round(rng.normal(size=n), 1)  # ties on purpose
        positive = rng.random(n) < 0.6
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, scores)
        assert fpr_at_tpr(scores, positive) == pytest.approx(fpr[np.searchsorted(tpr, 0.95)], abs=1e-12)
        assert fpr_at_tpr(scores, positive) == pytest.approx(_brute_fpr95(scores, positive), abs=1e-12)
        assert average_precision(scores, positive) == pytest.approx(average_precision_score(positive, scores),
                                                                    abs=1e-12)


@pytest.fixture(scope="module")
def run(downstream_extras):
    out, noise, _, _, report = downstream_extras
    return out, noise, report


def _softmax(z):
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def test_every_score_and_figure_is_recomputed_from_the_saved_embeddings(run):
    from scipy.special import logsumexp
    from sklearn.linear_model import LogisticRegression

    out, noise, report = run
    emb = lambda name: np.load(out / "embeddings" / f"{name}.npy")  # noqa: E731
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    data = load_dataset("builtin:textures", 6)
    train_idx, _ = data.split(0.3, 0)
    y = data.labels[np.asarray(train_idx)[np.load(out / "embeddings" / "kept_train.npy")]]
    train, test = unit(emb("emb_train")), unit(emb("emb_test_clean"))
    probe = LogisticRegression(C=report["tasks"]["linear_probe"]["params"]["C"], max_iter=2000).fit(train, y)
    protos = unit(np.stack([train[y == c].mean(axis=0) for c in np.unique(y)]))
    k = report["ood"]["params"]["knn_k"]
    assert k == min(50, len(train))

    def scores(x):
        x = unit(x)
        logits = probe.decision_function(x)
        kth = np.sort(np.linalg.norm(x[:, None] - train[None], axis=2), axis=1)[:, k - 1]
        return {"msp_linear_probe": _softmax(logits).max(axis=1), "energy_linear_probe": logsumexp(logits, axis=1),
                "max_cosine": (x @ protos.T).max(axis=1), "knn": -kth}

    assert report["ood"]["scores"] == list(scores(test))
    assert set(report["ood"]["sets"]) == {"digits", "static"}
    for name, entry in report["ood"]["sets"].items():
        ood = emb(f"emb_ood_{name}")
        assert entry["images"] == len(ood) == (5 if name == "static" else 60)  # 6 per digit class
        s_id, s_ood = scores(test), scores(ood)
        for score, row in entry["scores"].items():
            s = np.r_[s_id[score], s_ood[score]]
            positive = np.r_[np.ones(len(test), bool), np.zeros(len(ood), bool)]
            assert row["clean"]["auroc"] == pytest.approx(roc_auc_score(positive, s), abs=1e-9), (name, score)
            assert row["clean"]["aupr_in"] == pytest.approx(average_precision_score(positive, s), abs=1e-9)
            assert row["clean"]["fpr95"] == pytest.approx(_brute_fpr95(s, positive), abs=1e-9)
            for j, level in enumerate(row["families"]["jpeg"]["levels"]):
                pert = scores(emb(f"emb_test_jpeg@{level:g}"))[score]
                assert row["families"]["jpeg"]["auroc"][j] == pytest.approx(
                    roc_auc_score(positive, np.r_[pert, s_ood[score]]), abs=1e-9)
    assert [s["input"] for s in report["skipped"]] == [str(noise / "broken.png")]


def test_the_ood_embeddings_are_the_images_encoded(run):
    from vfmaudit.runtime import open_encoder

    out, noise, _ = run
    enc = open_encoder(MODEL, seed=0)
    images = np.stack([enc.preprocess.prepare(np.asarray(Image.open(p).convert("RGB")))
                       for p in sorted(noise.glob("n*.png"))])
    assert np.allclose(enc.encode(images), np.load(out / "embeddings" / "emb_ood_static.npy"), atol=1e-5)


@pytest.mark.parametrize("args, needle", [
    (["--ood", "a=x", "--ood", "a=y"], "two sets are named a"),
    (["--ood", "=x"], "pass NAME=FOLDER or FOLDER"),
])
def test_bad_ood_options_are_one_line(tmp_path, args, needle):
    res = run_cli("downstream", *COMMON, *args, "--out", tmp_path / "o")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr


def test_a_one_image_ood_set_is_refused_before_any_encoding_and_leaves_nothing_behind(tmp_path):
    """Checked with the other inputs, before the model loads: one line, exit 2; the same command with a
    valid set then runs (no half-made state to refuse it with 'pass --resume')."""
    from PIL import Image

    from cli_runner import run_cli

    lonely, fine = tmp_path / "lonely", tmp_path / "fine"
    lonely.mkdir()
    fine.mkdir()
    rng = np.random.default_rng(0)
    for folder, n in ((lonely, 1), (fine, 3)):
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    common = ["builtin:textures", "-m", "timm:test_vit", "--tasks", "knn", "-p", "jpeg", "--levels", "2",
              "--max-per-class", "4", "-q", "--out", tmp_path / "o"]
    res = run_cli("downstream", *common, "--ood", f"lonely={lonely}")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "ood set lonely" in lines[0] and "1 image(s)" in lines[0], lines[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())  # nothing encoded, nothing kept
    res = run_cli("downstream", *common, "--ood", f"fine={fine}")
    assert res.returncode == 0, res.stderr
