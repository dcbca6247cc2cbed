"""vfmaudit downstream: every task against an independent computation, data layouts, resume, prediction."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import linregress

from cli_runner import run_cli
from vfmaudit.data.datasets import load_dataset
from vfmaudit.downstream.tasks import LinearProbe, knn_predict
from vfmaudit.metrics import (auroc, expected_calibration_error, linear_fit, mean_average_precision, recall_at_k,
                              threshold_at_precision)

SMALL = ["--max-per-class", "8", "-p", "gaussian_blur,jpeg", "--levels", "2", "-q"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "out"
    res = run_cli("downstream", "builtin:textures", "-m", "openclip:ViT-S-32", *SMALL, "--out", out)
    assert res.returncode == 0, res.stderr
    return out


def embeddings(out: Path, name: str) -> np.ndarray:
    return np.load(out / "embeddings" / f"{name}.npy")


def test_outputs_and_tasks_match_independent_computations(small_run):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    report = json.loads((small_run / "downstream.json").read_text())
    assert report["schema"] == "vfmaudit.downstream" and report["random_weights"] is True
    assert set(report["tasks"]) == {"linear_probe", "knn_1", "knn_20", "retrieval", "zero_shot"}
    data = load_dataset("builtin:textures", 8)
    train_idx, test_idx = data.split(0.3, 0)
    y_train, y_test = data.labels[train_idx], data.labels[test_idx]
    train, clean = embeddings(small_run, "emb_train"), embeddings(small_run, "emb_test_clean")
    assert len(train) == len(train_idx) and len(clean) == len(test_idx)

    unit = lambda x: x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)  # noqa: E731
    C = report["tasks"]["linear_probe"]["params"]["C"]
    ref = LogisticRegression(C=C, max_iter=2000).fit(unit(train), y_train)
    blur = embeddings(small_run, "emb_test_gaussian_blur@4")
    for emb, got in ((clean, report["tasks"]["linear_probe"]["clean"]["accuracy"]),
                     (blur, report["tasks"]["linear_probe"]["families"]["gaussian_blur"]["accuracy"][-1])):
        assert got == pytest.approx(ref.score(unit(emb), y_test))
    ece = expected_calibration_error(ref.predict_proba(unit(clean)), y_test)
    assert report["tasks"]["linear_probe"]["clean"]["ece"] == pytest.approx(ece, abs=1e-4)

    for k in (1, 20):
        knn = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(train, y_train)
        assert report["tasks"][f"knn_{k}"]["clean"]["accuracy"] == pytest.approx(knn.score(clean, y_test), abs=0.05)
        assert np.mean(knn_predict(train, y_train, blur, k) == knn.predict(blur)) >= 0.9  # ties aside

    retrieval = report["tasks"]["retrieval"]["families"]["gaussian_blur"]
    assert retrieval["recall@1"][-1] == pytest.approx(brute_recall(blur, clean, 1))
    assert retrieval["map"][-1] == pytest.approx(brute_map(blur, clean, y_test))

    rows = list(csv.DictReader(open(small_run / "per_level.csv")))
    assert {r["task"] for r in rows} == set(report["tasks"])
    assert len([r for r in rows if r["task"] == "linear_probe"]) == 2 * 2
    page = (small_run / "report.html").read_text()
    assert "<svg" in page and "Random weights" in page


def brute_recall(query, gallery, k):
    hits = 0
    for i in range(len(query)):
        sims = [float(query[i] @ g / np.linalg.norm(query[i]) / np.linalg.norm(g)) for g in gallery]
        order = sorted(range(len(gallery)), key=lambda j: -sims[j])
        hits += i in order[:k]
    return hits / len(query)


def brute_map(query, gallery, labels):
    aps = []
    for i in range(len(query)):
        others = [j for j in range(len(gallery)) if j != i]
        sims = {j: float(query[i] @ gallery[j] / np.linalg.norm(query[i]) / np.linalg.norm(gallery[j])) for j in others}
        ranked = sorted(others, key=lambda j: -sims[j])
        precisions, hits = [], 0
        for rank, j in enumerate(ranked, start=1):
            if labels[j] == labels[i]:
                hits += 1
                precisions.append(hits / rank)
        if precisions:
            aps.append(np.mean(precisions))
    return float(np.mean(aps))


def test_retrieval_metrics_equal_brute_force():
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(30, 8))
    query = gallery + 0.8 * rng.normal(size=gallery.shape)
    labels = rng.integers(0, 4, 30)
    for k in (1, 5):
        assert recall_at_k(query, gallery, k) == pytest.approx(brute_recall(query, gallery, k))
    assert mean_average_precision(query, gallery, labels) == pytest.approx(brute_map(query, gallery, labels))


def test_expected_calibration_error_on_hand_made_probabilities():
    # four predictions at confidence 0.9 (bin 14), three right: |0.75 - 0.9| = 0.15, weight 4/6;
    # two at 0.6 (bin 9), one right: |0.5 - 0.6| = 0.1, weight 2/6  ->  0.1 + 0.0333 = 0.1333
    probs = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 2)
    labels = np.array([0, 0, 0, 1, 0, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.1)
    assert expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == pytest.approx(0.0)


def test_prediction_fit_recovers_a_known_slope():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 0.5, 40)
    y = 0.8 * x + 0.02 + rng.normal(0, 0.005, 40)
    fit = linear_fit(x, y)
    assert fit["slope"] == pytest.approx(0.8, abs=0.03) and fit["intercept"] == pytest.approx(0.02, abs=0.01)
    ref = linregress(x, y)  # an independent least-squares implementation
    assert fit["slope"] == pytest.approx(ref.slope, abs=1e-10)
    assert fit["intercept"] == pytest.approx(ref.intercept, abs=1e-10)
    assert fit["r2"] == pytest.approx(ref.rvalue ** 2, abs=1e-10)
    residual = y - (ref.slope * x + ref.intercept)
    assert fit["rmse"] == pytest.approx(np.sqrt(np.mean(residual ** 2)), abs=1e-12)
    assert linear_fit(np.ones(5), np.arange(5))["slope"] is None  # no spread in x: no fit


def test_auroc_and_threshold_against_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    flips = rng.random(200) < 0.3
    radius = np.round(rng.normal(0.2, 0.05, 200) + 0.1 * flips, 2)  # ties on purpose
    assert auroc(radius, flips) == pytest.approx(roc_auc_score(flips, radius))
    t = threshold_at_precision(radius, flips, 0.95)
    # brute force: every candidate threshold, the smallest that still flags at >= 95 % precision
    ok = [c for c in np.unique(radius) if flips[radius >= c].mean() >= 0.95]
    assert t is not None and t == min(ok) and flips[radius >= t].mean() >= 0.95
    assert auroc(radius, np.zeros(200, bool)) is None


def test_linear_probe_chooses_its_regularisation_on_a_validation_split():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 16))
    y = rng.integers(0, 3, 90)
    x = centres[y] + 0.7 * rng.normal(size=(90, 16))
    probe = LinearProbe(x, y, seed=0)
    assert probe.C_chosen.startswith("validation split")
    # the same choice redone with scikit-learn: a stratified 25 % split of the unit-normalised embeddings,
    # the first C of the grid with the best validation accuracy
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from vfmaudit.downstream.tasks import C_GRID

    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    xa, xb, ya, yb = train_test_split(unit, y, test_size=int(np.ceil(0.25 * len(y))), random_state=0, stratify=y)
    scores = [LogisticRegression(C=c, max_iter=2000).fit(xa, ya).score(xb, yb) for c in C_GRID]
    assert probe.C == C_GRID[int(np.argmax(scores))]
    p = probe.proba(x)
    assert p.shape == (90, 3) and np.allclose(p.sum(axis=1), 1) and np.mean(p.argmax(1) == y) > 0.8


def test_linear_probe_on_too_few_images_per_class_keeps_the_default_regularisation():
    """15 images of 5 classes: a 25 % validation split (4 images) cannot hold every class."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 3)
    x = rng.normal(size=(5, 8))[y] + 0.1 * rng.normal(size=(15, 8))
    probe = LinearProbe(x, y, seed=0)
    assert probe.C == 1.0 and probe.C_chosen.startswith("default: too few")
    assert np.mean(probe.proba(x).argmax(1) == y) == 1.0


def test_zero_shot_accuracy_equals_an_independent_open_clip_classifier(small_run):
    """The same seeded OpenCLIP model built with open_clip directly: prompts encoded with its tokenizer and
    text tower, averaged per class (CLIP's recipe), argmax over the test embeddings: the same accuracy."""
    import open_clip
    import torch

    from vfmaudit.models.weights import model_seed

    report = json.loads((small_run / "downstream.json").read_text())
    templates, classes = report["tasks"]["zero_shot"]["params"]["templates"], report["dataset"]["classes"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(model_seed("openclip:ViT-S-32", 0))  # the documented seeding of random weights
        model = open_clip.create_model("ViT-S-32", pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer("ViT-S-32")
    with torch.inference_mode():
        weights = []
        for name in classes:
            text = model.encode_text(tokenizer([t.format(name.replace("_", " ")) for t in templates])).double()
            mean = torch.nn.functional.normalize(text, dim=-1).mean(dim=0)
            weights.append(torch.nn.functional.normalize(mean, dim=0).numpy())
    data = load_dataset("builtin:textures", 8)
    _, test_idx = data.split(0.3, 0)
    y_test = data.labels[test_idx]
    for key, got in (("emb_test_clean", report["tasks"]["zero_shot"]["clean"]["accuracy"]),
                     ("emb_test_jpeg@10", report["tasks"]["zero_shot"]["families"]["jpeg"]["accuracy"][0])):
        emb = embeddings(small_run, key).astype(np.float64)
        pred = (emb / np.linalg.norm(emb, axis=1, keepdims=True) @ np.stack(weights).T).argmax(axis=1)
        assert got == np.mean(pred == y_test), key


def test_zero_shot_runs_on_a_random_openclip_model_with_its_real_tokenizer(small_run):
    import open_clip

    report = json.loads((small_run / "downstream.json").read_text())
    zs = report["tasks"]["zero_shot"]
    assert 0 <= zs["clean"]["accuracy"] <= 1 and 0 <= zs["clean"]["ece"] <= 1
    assert zs["params"]["templates"][0] == "a photo of a {}."
    tokens = open_clip.get_tokenizer("ViT-S-32")(["a photo of a horizontal stripes."])
    assert tokens.shape[-1] == 77 and int(tokens[0].count_nonzero()) > 5


def test_data_layouts_folder_split_folders_and_csv(tmp_path):
    rng = np.random.default_rng(0)

    def save(path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)

    for c in ("cat", "dog"):
        for i in range(3):
            save(tmp_path / "folder" / c / f"{i}.png")
            save(tmp_path / "split" / ("train" if i < 2 else "test") / c / f"{i}.png")
    d = load_dataset(str(tmp_path / "folder"))
    assert d.class_names == ["cat", "dog"] and list(d.labels) == [0, 0, 0, 1, 1, 1]
    s = load_dataset(str(tmp_path / "split"))
    train, test = s.split()
    assert len(train) == 4 and len(test) == 2 and sorted(s.labels[test]) == [0, 1]
    with open(tmp_path / "set.csv", "w") as f:
        f.write("path,label\n" + "".join(f"folder/{c}/{i}.png,{c}\n" for c in ("cat", "dog") for i in range(3)))
    c = load_dataset(str(tmp_path / "set.csv"))
    assert c.class_names == ["cat", "dog"] and len(c.items) == 6
    a, b = d.split(0.34, seed=5), d.split(0.34, seed=5)
    assert (a[0] == b[0]).all() and sorted(d.labels[a[1]]) == [0, 1]  # deterministic and stratified


@pytest.mark.parametrize("args,needle", [
    (["downstream", "no/such/dir"], "data set not found"),
    (["downstream", "builtin:cifar"], "unknown built-in data set 'cifar'"),
    (["downstream", "--tasks", "segmentation"], "unknown task 'segmentation'"),
    (["downstream", "--prompts", "a photo"], "--prompts must be"),
    (["downstream", "-m", "timm:resnet18", "--tasks", "zero-shot", "--max-per-class", "3", "-p", "jpeg"],
     "zero-shot needs an OpenCLIP model"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    res = run_cli(*args, "--out", tmp_path / "o")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("encoding")]
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr


def test_resume_reuses_embeddings_and_gives_the_same_numbers(small_run, tmp_path):
    again = run_cli("downstream", "builtin:textures", "-m", "openclip:ViT-S-32", *SMALL, "--out", small_run)
    assert again.returncode == 2 and "--resume" in again.stderr
    before = json.loads((small_run / "downstream.json").read_text())
    res = run_cli("downstream", "builtin:textures", "-m", "openclip:ViT-S-32", *SMALL, "--out", small_run, "--resume")
    assert res.returncode == 0, res.stderr
    after = json.loads((small_run / "downstream.json").read_text())
    assert after["embeddings_reused"] >= 5 and after["tasks"] == before["tasks"]
    other = run_cli("downstream", "builtin:textures", "-m", "openclip:ViT-S-32", "--max-per-class", "8", "-p", "jpeg",
                    "--levels", "2", "-q", "--out", small_run, "--resume")
    assert other.returncode == 2 and "cannot resume the run in" in other.stderr
    assert "perturbations or levels" in other.stderr and "differ" in other.stderr


def test_gate_checks_downstream_metrics(tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text('model = "openclip:ViT-S-32"\n[downstream]\ntasks = "linear-probe,retrieval"\n'
                      'perturbations = "gaussian_blur"\nlevels = 2\nmax_per_class = 6\n'
                      '[[check]]\nmetric = "downstream.linear_probe.gaussian_blur.accuracy_drop.max"\nmax = 1.0\n'
                      '[[check]]\nmetric = "downstream.retrieval.clean.recall@1"\nmin = 0.99\n')
    res = run_cli("gate", policy, "--out", tmp_path / "g")
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads((tmp_path / "g" / "gate.json").read_text())
    assert data["reports"]["downstream"].endswith("downstream/downstream.json")
    assert data["values"]["downstream.retrieval.clean.recall@1"] == 1.0


def test_fitting_and_classifying_are_stage_lines_off_a_terminal(tmp_path, monkeypatch):
    from vfmaudit.cli.common import Stages

    monkeypatch.setattr(Stages, "DELAY_S", 0.0)
    res = run_cli("downstream", "builtin:textures", "-m", "openclip:ViT-S-32", "--max-per-class", "4", "-p", "jpeg",
                  "--levels", "1", "--tasks", "linear-probe,zero-shot", "--out", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    for needle in ("opening openclip:ViT-S-32", "encoding: ", "fitting the linear probe on",
                   "zero-shot: encoding", "classifying clean and perturbed test images (classifiers): 1/2",
                   "writing report.html"):
        assert needle in res.stderr, (needle, res.stderr)
    assert "\x1b[" not in res.stderr


def test_the_prediction_is_the_fit_of_the_reported_drops_on_the_reported_radii(small_run):
    """The report's prediction section, recomputed with scipy from the report's own per-level figures:
    accuracy drop against mean radius (and against 1 - cosine) over every (family, level)."""
    report = json.loads((small_run / "downstream.json").read_text())
    for task, pred in report["prediction"].items():
        fams = report["tasks"][task]["families"]
        radius = [x for f in fams for x in report["robustness"][f]["radius_mean"]]
        one_minus_cos = [1 - x for f in fams for x in report["robustness"][f]["cosine_mean"]]
        drop = [x for f in fams for x in fams[f]["accuracy_drop"]]
        for key, xs in (("vs_radius", radius), ("vs_one_minus_cosine", one_minus_cos)):
            ref = linregress(xs, drop)
            assert pred[key]["slope"] == pytest.approx(ref.slope, abs=1e-9), (task, key)
            assert pred[key]["intercept"] == pytest.approx(ref.intercept, abs=1e-9), (task, key)
        n_test = report["dataset"]["test_images"]
        levels = sum(len(fams[f]["levels"]) for f in fams)
        assert pred["per_image"]["predictions"] == n_test * levels


def test_every_input_check_comes_before_the_model_loads(small_run, tmp_path, monkeypatch):
    """An --out holding an evaluation, an --out that is a file, a folder of empty class folders: one
    line, exit 2, and no model opened (a real model takes seconds to minutes to load)."""
    import vfmaudit.downstream.runner as runner

    def no_model(*a, **k):
        raise AssertionError("the model was opened before the input checks")

    monkeypatch.setattr(runner, "open_encoder", no_model)
    (tmp_path / "file").write_text("x")
    for cls in ("a", "b"):
        (tmp_path / "empty" / cls).mkdir(parents=True)
    for args, expected in ((["builtin:textures", "--out", small_run], "already holds a downstream evaluation"),
                           (["builtin:textures", "--out", tmp_path / "file"], "is a file"),
                           ([tmp_path / "empty", "--out", tmp_path / "o"], "holds no files")):
        res = run_cli("downstream", *args, "-m", "openclip:ViT-S-32", *SMALL)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 2 and len(lines) == 1 and expected in lines[0], (args, res.stderr)
