"""The typographic family and downstream's typographic attack: identity at 0, the same bytes across
runs and batch splits, every size, the text inside the image; the attack's success and control
rates against a hand computation (scikit-learn's probe on the saved embeddings, the documented
targets, the images re-rendered and re-encoded independently) and the examples picture. (The gate:
test_downstream_shift.py; the run: conftest's downstream_extras.)

On random weights the written name does not pull predictions towards its class (the report shows
success and control rates alike); what is tested is the rendering and the computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cli_runner import run_cli
from vfmaudit import perturb
from vfmaudit.data.datasets import load_dataset
from vfmaudit.perturb.families.typographic import WORDS, write_text

from conftest import EXTRAS_MODEL as MODEL


def test_level_zero_is_the_identity_and_the_bytes_do_not_depend_on_the_batch(photo_batch):
    assert np.array_equal(perturb.apply(photo_batch, "typographic", 0.0), photo_batch)
    whole = perturb.apply(photo_batch, "typographic", 0.7, seed=5)
    alone = np.stack([perturb.apply(img, "typographic", 0.7, seed=5) for img in photo_batch])
    assert np.array_equal(whole, alone) and np.array_equal(whole, perturb.apply(photo_batch, "typographic", 0.7, seed=5))
    assert not np.array_equal(whole, perturb.apply(photo_batch, "typographic", 0.7, seed=6))


@pytest.mark.parametrize("shape", [(1, 1, 3), (17, 31, 3), (224, 224, 3), (768, 1024, 3)])
def test_every_size_keeps_shape_and_dtype_and_larger_levels_write_larger_text(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    small, large = (perturb.apply(img, "typographic", lv, seed=1) for lv in (0.3, 1.0))
    assert small.shape == large.shape == shape and small.dtype == large.dtype == np.uint8
    if min(shape[:2]) >= 17:
        changed = [np.count_nonzero((out != img).any(axis=2)) for out in (small, large)]
        assert 0 < changed[0] < changed[1] < img.shape[0] * img.shape[1] / 2


def test_the_whole_word_is_written_inside_the_image():
    img = np.full((64, 200, 3), 128, np.uint8)
    out = write_text(img, "umbrella", 1.0, np.random.default_rng(0))
    ys, xs = np.nonzero((out != img).any(axis=2))
    assert xs.min() > 0 and xs.max() < 199 and ys.min() >= 0 and ys.max() < 64  # not cut at an edge
    other = write_text(img, "lamp", 1.0, np.random.default_rng(0))
    assert not np.array_equal(out, other)  # the word is what is drawn


@pytest.fixture(scope="module")
def run(downstream_extras):
    out, _, _, _, report = downstream_extras
    return out, report


def test_success_and_control_rates_equal_a_hand_computation(run):
    from sklearn.linear_model import LogisticRegression

    from vfmaudit.downstream.typographic import TARGET_STREAM
    from vfmaudit.runtime import open_encoder

    out, report = run
    t = report["typographic"]
    assert t["levels"] == [0.5, 1.0] and set(t["tasks"]) == {"linear_probe", "knn_1", "knn_20"}
    data = load_dataset("builtin:textures", 6)
    train_idx, test_idx = data.split(0.3, 0)
    emb = lambda name: np.load(out / "embeddings" / f"{name}.npy")  # noqa: E731
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    y_train = data.labels[np.asarray(train_idx)[np.load(out / "embeddings" / "kept_train.npy")]]
    y = data.labels[np.asarray(test_idx)[np.load(out / "embeddings" / "kept_test.npy")]]
    n = len(data.class_names)
    rng = np.random.default_rng([0, TARGET_STREAM])
    target = (y + 1 + rng.integers(0, n - 1, len(y))) % n
    assert np.all(target != y)
    probe = LogisticRegression(C=report["tasks"]["linear_probe"]["params"]["C"], max_iter=2000).fit(
        unit(emb("emb_train")), y_train)
    for j, lv in enumerate(t["levels"]):
        attacked, control = emb(f"emb_typographic_class@{lv:g}"), emb(f"emb_typographic_control@{lv:g}")
        pred, pred_c = probe.predict(unit(attacked)), probe.predict(unit(control))
        lp = t["tasks"]["linear_probe"]
        assert lp["success_rate"][j] == pytest.approx(np.mean(pred == target))
        assert lp["control_rate"][j] == pytest.approx(np.mean(pred_c == target))
        assert lp["accuracy"][j] == pytest.approx(np.mean(pred == y))
    # the attacked images: the target's name written at the image's own place, encoded as the run did
    enc = open_encoder(MODEL, seed=0)
    images = np.load(out / "embeddings" / "images_test.npy")
    names = [data.class_names[c].replace("_", " ") for c in target]
    remade = np.stack([write_text(img, w, 1.0, np.random.default_rng([0, i])) for i, (img, w) in
                       enumerate(zip(images, names))])
    assert np.allclose(enc.encode(remade), emb("emb_typographic_class@1"), atol=1e-5)
    # the examples picture: clean above, attacked below, the first four test images
    strip = np.asarray(Image.open(out / t["examples"]))
    h, w = images.shape[1:3]
    assert strip.shape == (2 * h, 4 * w, 3)
    assert np.array_equal(strip[:h, :w], images[0]) and np.array_equal(strip[h:, :w], remade[0])


def test_the_control_words_are_no_class_names():
    from vfmaudit.downstream.typographic import control_words

    assert "dog" in WORDS and "dog" not in control_words(["Dog", "cat"]) and "lamp" in control_words(["dog"])


def test_one_level_is_said_in_the_singular(tmp_path):
    res = run_cli("downstream", "builtin:textures", "-m", "timm:test_vit", "--tasks", "knn", "-p", "typographic",
                  "--levels", "1", "--max-per-class", "4", "--out", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("typographic attack"))
    assert " at level " in line and "at levels" not in line, line
