"""`vfmaudit downstream --shift`: shifted sets of the training classes classified by the clean
split's classifiers. Accuracies against scikit-learn's probe and a brute-force kNN on the saved
embeddings, the class-subset restriction and the class map against a hand computation, the
built-in sketch set, the gate's downstream.shift/ood/typographic values, effective robustness, the
errors. (The run: conftest's downstream_extras.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cli_runner import run_cli
from vfmaudit.data.datasets import load_dataset

from conftest import EXTRAS_COMMON as COMMON, EXTRAS_MODEL as MODEL, EXTRAS_SUBSET as SUBSET


@pytest.fixture(scope="module")
def run(downstream_extras):
    out, _, subset, class_map, report = downstream_extras
    return out, subset, class_map, report


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _knn(train, y, x, k):
    sims = _unit(x) @ _unit(train).T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.array([np.bincount(y[row], minlength=y.max() + 1).argmax() for row in top])


def test_shift_accuracy_equals_scikit_learn_and_brute_force_on_the_saved_embeddings(run):
    from sklearn.linear_model import LogisticRegression

    out, _, _, report = run
    emb = lambda name: np.load(out / "embeddings" / f"{name}.npy")  # noqa: E731
    data = load_dataset("builtin:textures", 6)
    train_idx, _ = data.split(0.3, 0)
    y = data.labels[np.asarray(train_idx)[np.load(out / "embeddings" / "kept_train.npy")]]
    train = emb("emb_train")
    probe = LogisticRegression(C=report["tasks"]["linear_probe"]["params"]["C"], max_iter=2000).fit(_unit(train), y)
    for name, restrict in (("textures_sketch", None), ("two", [data.class_names.index(c) for c in SUBSET.values()])):
        entry = report["shift"][name]
        x = emb(f"emb_shift_{name}")
        if restrict is None:
            truth = load_dataset("builtin:textures-sketch", 6).labels
            proba_pred = probe.predict_proba(_unit(x)).argmax(axis=1)
            knn = {k: _knn(train, y, x, k) for k in (1, 20)}
        else:  # folders in sorted order (c, h), mapped to the training classes; predictions over the two only
            truth = np.repeat([data.class_names.index(SUBSET[f]) for f in sorted(SUBSET)], 4)
            cols = np.array(sorted(restrict))
            proba_pred = cols[probe.predict_proba(_unit(x))[:, cols].argmax(axis=1)]
            keep = np.isin(y, cols)
            knn = {k: _knn(train[keep], y[keep], x, k) for k in (1, 20)}
        assert entry["images"] == len(x) == len(truth)
        assert entry["restricted_to_subset"] == (restrict is not None)
        assert entry["classes"] == (5 if restrict is None else 2)
        lp = entry["tasks"]["linear_probe"]
        assert lp["accuracy"] == pytest.approx(np.mean(proba_pred == truth))
        assert lp["accuracy_drop"] == pytest.approx(report["tasks"]["linear_probe"]["clean"]["accuracy"]
                                                    - lp["accuracy"])
        assert 0 <= lp["ece"] <= 1
        for k in (1, 20):
            assert entry["tasks"][f"knn_{k}"]["accuracy"] == pytest.approx(np.mean(knn[k] == truth)), (name, k)


def test_the_builtin_sketch_set_is_deterministic_and_not_the_training_images():
    a, b = load_dataset("builtin:textures-sketch", 2), load_dataset("builtin:textures-sketch", 2)
    assert a.class_names == load_dataset("builtin:textures", 2).class_names
    for x, y in zip(a.items, b.items):
        assert np.array_equal(x.load(), y.load())
    img = a.items[0].load()
    assert img.dtype == np.uint8 and img.ndim == 3 and len(np.unique(img[..., 0])) > 2
    assert np.array_equal(img[..., 0], img[..., 2])  # grey strokes on paper


def test_the_gate_reads_the_shift_ood_and_typographic_figures(downstream_extras, tmp_path):
    """One policy over the same downstream run as the fixture's: its values are the report's."""
    out, noise, subset, class_map, report = downstream_extras
    policy = tmp_path / "p.toml"
    policy.write_text(f'model = "{MODEL}"\n[downstream]\ntasks = "linear-probe,knn"\nperturbations = "jpeg,typographic"\n'
                      f'levels = 3\nmax_per_class = 6\nshift = "two={subset}"\nclass_map = "{class_map}"\n'
                      f'ood = "static={noise}"\n'
                      '[[check]]\nmetric = "downstream.shift.two.linear_probe.accuracy"\nmin = 0.0\n'
                      '[[check]]\nmetric = "downstream.shift.two.knn_20.accuracy_drop"\nmax = 2.0\n'
                      '[[check]]\nmetric = "downstream.ood.static.knn.auroc"\nmin = 0.0\n'
                      '[[check]]\nmetric = "downstream.ood.static.max_cosine.fpr95"\nmax = 1.0\n'
                      '[[check]]\nmetric = "downstream.ood.static.msp_linear_probe.perturbed_auroc.min"\nmin = 0.0\n'
                      '[[check]]\nmetric = "downstream.typographic.linear_probe.success_rate.max"\nmax = 1.0\n'
                      '[[check]]\nmetric = "downstream.typographic.linear_probe.control_rate"\nmax = 1.0\n')
    res = run_cli("gate", policy, "--json", tmp_path / "gate.json")
    assert res.returncode == 0, res.stdout + res.stderr
    values = {c["metric"]: c["value"] for c in json.loads((tmp_path / "gate.json").read_text())["checks"]}
    two, static = report["shift"]["two"]["tasks"], report["ood"]["sets"]["static"]["scores"]
    perturbed = [a for fam in static["msp_linear_probe"]["families"].values() for a in fam["auroc"]]
    assert values == {
        "downstream.shift.two.linear_probe.accuracy": pytest.approx(two["linear_probe"]["accuracy"]),
        "downstream.shift.two.knn_20.accuracy_drop": pytest.approx(two["knn_20"]["accuracy_drop"]),
        "downstream.ood.static.knn.auroc": pytest.approx(static["knn"]["clean"]["auroc"]),
        "downstream.ood.static.max_cosine.fpr95": pytest.approx(static["max_cosine"]["clean"]["fpr95"]),
        "downstream.ood.static.msp_linear_probe.perturbed_auroc.min": pytest.approx(min(perturbed)),
        "downstream.typographic.linear_probe.success_rate.max": pytest.approx(
            max(report["typographic"]["tasks"]["linear_probe"]["success_rate"])),
        "downstream.typographic.linear_probe.control_rate": pytest.approx(
            report["typographic"]["tasks"]["linear_probe"]["control_rate"][-1])}
    bad = tmp_path / "bad.toml"
    bad.write_text(f'model = "{MODEL}"\n[downstream]\nood = "static={noise}"\n'
                   '[[check]]\nmetric = "downstream.ood.static.knn.aucroc"\nmin = 0.0\n')
    res = run_cli("gate", bad, "--dry-run")
    assert res.returncode == 2 and "downstream.ood.static.knn.auroc" in res.stderr  # the closest name


def test_a_shift_class_that_is_no_training_class_is_one_line(run, tmp_path):
    _, subset, _, _ = run
    res = run_cli("downstream", *COMMON, "--shift", f"two={subset}", "--out", tmp_path / "o")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "classes c, h are not training classes" in lines[0] and "--class-map" in lines[0]


def test_effective_robustness_over_three_runs_is_a_logit_fit_of_their_accuracies(tmp_path):
    from scipy.special import expit, logit

    outs = []
    for i, (model, seed) in enumerate([(MODEL, 0), (MODEL, 1), ("timm:resnet18", 0)]):
        outs.append(tmp_path / f"run{i}")
        res = run_cli("downstream", "builtin:textures", "-m", model, "--seed", str(seed), "--tasks", "linear-probe",
                      "-p", "jpeg", "--levels", "2", "--max-per-class", "6", "--shift", "builtin:textures-sketch",
                      "--out", outs[-1], "-q")
        assert res.returncode == 0, res.stderr
    res = run_cli("report", "shift", *outs, "--out", tmp_path / "shift.html", "--json", tmp_path / "er.json")
    assert res.returncode == 0, res.stderr
    er = json.loads((tmp_path / "er.json").read_text())
    pair = er["pairs"]["textures_sketch/linear_probe"]
    rows = [json.loads((o / "downstream.json").read_text())["shift"]["textures_sketch"]["tasks"]["linear_probe"]
            for o in outs]
    clean = np.clip([r["clean_accuracy"] for r in rows], 1e-4, 1 - 1e-4)
    shifted = np.clip([r["accuracy"] for r in rows], 1e-4, 1 - 1e-4)
    assert [p["clean_accuracy"] for p in pair["points"]] == [r["clean_accuracy"] for r in rows]
    assert np.ptp(clean) > 0  # three models, three clean accuracies: a line to fit
    slope, intercept = np.polyfit(logit(clean), logit(shifted), 1)
    assert pair["fit_logit"]["slope"] == pytest.approx(slope) and pair["fit_logit"]["intercept"] == pytest.approx(intercept)
    for p, c, r in zip(pair["points"], clean, rows):
        assert p["effective_robustness"] == pytest.approx(r["accuracy"] - expit(slope * logit(c) + intercept))
    page = (tmp_path / "shift.html").read_text()
    assert "Effective robustness" in page and "<svg" in page and "textures_sketch/linear_probe" in page
    one = run_cli("report", "shift", outs[0], "--out", tmp_path / "one.html")
    assert one.returncode == 2 and "at least two downstream RUNS" in one.stderr


def test_train_and_test_folders_are_a_given_split_and_max_per_class_caps_folders(tmp_path):
    """--train DIR --test DIR: the split as given (no seeded split); --max-per-class also caps folders."""
    sketches = load_dataset("builtin:textures-sketch", 6)
    for side, rows in (("tr", range(0, 4)), ("te", range(4, 6))):
        for c, cls in enumerate(sketches.class_names[:3]):
            (tmp_path / side / cls).mkdir(parents=True)
            for j in rows:
                i = np.flatnonzero(sketches.labels == c)[j]
                Image.fromarray(sketches.items[i].load()).save(tmp_path / side / cls / f"{j}.png")
    out = tmp_path / "out"
    res = run_cli("downstream", "--train", tmp_path / "tr", "--test", tmp_path / "te", "-m", MODEL, "--tasks",
                  "linear-probe", "-p", "jpeg", "--levels", "2", "--max-per-class", "3", "--out", out, "-q")
    assert res.returncode == 0, res.stderr
    ds = json.loads((out / "downstream.json").read_text())["dataset"]
    assert ds["split"] == "given (train/, test/)" and ds["train_images"] == 9 and ds["test_images"] == 6
    one = run_cli("downstream", "--train", tmp_path / "tr", "-m", MODEL, "--out", tmp_path / "o2", "-q")
    assert one.returncode == 2 and "both --train and --test" in one.stderr
