"""`vfmaudit attack --method search` (the oracle-gated edit search of Zhang et al., ICLR 2024): every
accepted step re-checked with the oracle on the recorded chain, the rejected step rejected, the
loss rising along each chain, the budget kept, SA / PA / FMR against a hand computation from an
independent open_clip classifier on the re-made images, the saved images reproduced by
`vfmaudit perturbations --apply`, and the gate's attack.fmr; real (small, seeded) models and the
built-in texture classes with their real names."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from cli_runner import run_cli
from vfmaudit.attack import AttackConfig, run_attack
from helpers import colour_classes, noisy_photos
from vfmaudit.attack.search import apply_chain, fmr_figures, parse_chain
from vfmaudit.data.datasets import load_dataset
from vfmaudit.runtime import open_encoder

TESTED = "timm:test_vit"  # its linear probe on the clean training split: the loss the search raises
ORACLE = "openclip:ViT-S-32"  # zero-shot over the real class names, with its real tokenizer
SPACE = ["-p", "hue:-0.3:0.3,saturation:0:1,jpeg:10:60", "--levels", "3"]


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    return colour_classes(tmp_path_factory.mktemp("colours") / "data")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, colours):
    out = tmp_path_factory.mktemp("search") / "labelled"
    res = run_cli("attack", "--method", "search", "-m", TESTED, "--oracle", ORACLE, "--dataset", colours, *SPACE,
                  "--max-edits", "2", "--out", out, "--save-images")
    assert res.returncode == 0, (res.stdout + res.stderr)
    return out, json.loads((out / "attack.json").read_text())


@pytest.fixture(scope="module")
def split(colours):
    """The data set's split and the tested model's model-size training images and labels."""
    data = load_dataset(str(colours))
    train_idx, test_idx = data.split(0.3, 0)
    enc = open_encoder(TESTED, seed=0)
    train = np.stack([enc.preprocess.prepare(data.items[i].load()) for i in train_idx])
    return data, enc, train, data.labels[train_idx], data.labels[test_idx]


@pytest.fixture(scope="module")
def oracle_predict(split):
    """The oracle rebuilt with open_clip directly (the documented seeding of random weights): the prompt
    'an image of {class}' through its tokenizer and text tower, argmax over the images' embeddings."""
    import open_clip
    import torch

    from vfmaudit.models.weights import model_seed

    data = split[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(model_seed(ORACLE, 0))
        model = open_clip.create_model("ViT-S-32", pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer("ViT-S-32")
    with torch.inference_mode():
        text = model.encode_text(tokenizer([f"an image of {n.replace('_', ' ')}" for n in data.class_names]))
        weights = torch.nn.functional.normalize(text.double(), dim=-1).numpy()
    images = open_encoder(ORACLE, seed=0)
    return lambda batch: np.argmax(images.encode(batch) @ weights.T, axis=1)


def _saved(out, folder: str, i: int) -> np.ndarray:
    return np.asarray(Image.open(out / folder / f"{i:05d}.png"))


def _chain(row: dict) -> list[tuple[str, float]]:
    return [(s["family"], s["level"]) for s in row["chain"]]


def test_no_accepted_step_is_one_the_oracle_rejects(labelled, split, oracle_predict):
    out, report = labelled
    y_test = split[4]
    rows = report["per_image"]
    assert len(rows) == len(y_test) and report["search"]["approved"] >= 5
    assert sum(len(r["chain"]) for r in rows) >= 5, "the search accepted too few edits to test anything"
    checked = rejected = 0
    for i, r in enumerate(rows):
        clean = _saved(out, "clean", i)
        made = [apply_chain(clean, _chain(r)[:k], 0) for k in range(len(r["chain"]) + 1)]
        labels = oracle_predict(np.stack(made))
        assert (labels[0] == y_test[i]) == r["oracle_clean"], r["image"]
        assert np.all(labels == y_test[i]) or not r["oracle_clean"], (r["image"], labels)
        checked += len(r["chain"])
        if r["stop"] == "rejected":  # the edit turned down is one the oracle rejects
            turned_down = apply_chain(made[-1], [(r["rejected"]["family"], r["rejected"]["level"])], 0)
            assert oracle_predict(turned_down[None])[0] != y_test[i]
            rejected += 1
        # the saved last accepted image is the one re-made from the recorded chain
        assert np.array_equal(_saved(out, "edited", i), made[-1])
    assert checked >= 5 and rejected >= 2 and report["search"]["stops"]["rejected"] == rejected


def test_each_chain_raises_the_loss_keeps_the_budget_and_uses_a_family_once(labelled):
    _, report = labelled
    for r in report["per_image"]:
        losses = [r["loss_clean"]] + [s["loss"] for s in r["chain"]]
        assert all(b > a for a, b in zip(losses, losses[1:])), r
        assert len(r["chain"]) <= 2 and r["queries"] <= report["config"]["queries"]
        families = [s["family"] for s in r["chain"]]
        assert len(set(families)) == len(families)
        assert r["oracle_queries"] == len(r["chain"]) + (r["stop"] == "rejected")
        if not r["chain"]:
            assert r["cosine"] == 1.0 and r["divergence_radius"] == 0.0


def test_sa_pa_and_fmr_equal_a_hand_computation_with_an_independent_classifier(labelled, split):
    """scikit-learn's logistic regression at the probe's C on the clean training embeddings; the final
    images re-made from the chains and encoded again; SA, PA and FMR counted over the approved images."""
    from sklearn.linear_model import LogisticRegression

    out, report = labelled
    _, enc, train, y_train, y_test = split
    unit = lambda e: e / np.linalg.norm(e, axis=1, keepdims=True)  # noqa: E731
    clf = LogisticRegression(C=report["search"]["classifier_params"]["C"], max_iter=2000)
    clf.fit(unit(enc.encode(train).astype(np.float64)), y_train)
    rows = report["per_image"]
    clean = np.stack([_saved(out, "clean", i) for i in range(len(rows))])
    final = np.stack([apply_chain(clean[i], _chain(r), 0) for i, r in enumerate(rows)])
    right_clean = clf.predict(unit(enc.encode(clean).astype(np.float64))) == y_test
    right_final = clf.predict(unit(enc.encode(final).astype(np.float64))) == y_test
    approved = [i for i, r in enumerate(rows) if r["oracle_clean"]]
    sa = sum(right_clean[i] for i in approved) / len(approved)
    pa = sum(right_final[i] for i in approved) / len(approved)
    got = report["search"]
    assert got["classifier"] == "linear-probe" and got["approved"] == len(approved)
    assert got["sa"] == pytest.approx(sa, abs=1e-12) and got["pa"] == pytest.approx(pa, abs=1e-12)
    assert got["fmr"] == pytest.approx(pa / sa, abs=1e-12)
    assert sa > 0 and pa < sa, "the edits found should cost the tested model accuracy here"


def test_fmr_figures_by_hand():
    approved = np.array([1, 1, 1, 1, 0], bool)
    assert fmr_figures(approved, np.array([1, 1, 1, 0, 1], bool), np.array([1, 0, 0, 0, 1], bool)) == \
        {"approved": 4, "sa": 0.75, "pa": 0.25, "fmr": 0.25 / 0.75}
    assert fmr_figures(approved, np.zeros(5, bool), np.zeros(5, bool))["fmr"] is None


def test_the_recorded_chain_reproduces_the_edited_image_through_the_cli(labelled, tmp_path):
    out, report = labelled
    i = max(range(len(report["per_image"])), key=lambda k: len(report["per_image"][k]["chain"]))
    r = report["per_image"][i]
    made = tmp_path / "made.png"
    res = run_cli("perturbations", "--apply", r["chain_spec"], "--seed", "0", out / "clean" / f"{i:05d}.png",
                  "--out", made)
    assert res.returncode == 0, (res.stdout + res.stderr)
    assert np.array_equal(np.asarray(Image.open(made)), _saved(out, "edited", i))
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[i]["chain"] == r["chain_spec"] and int(rows[i]["steps"]) == len(r["chain"])


def test_unlabelled_search_keeps_each_image_its_own_nearest_neighbour(folder_of_photos):
    result = run_attack(AttackConfig(images=[str(folder_of_photos)], model="timm:test_vit", method="search",
                                     oracle="timm:test_vit", perturbations="jpeg:10:60,brightness:0.3:1.7", levels=3,
                                     max_edits=2, seed=0))
    report = result.to_json()
    assert "fmr" not in report["search"] and report["oracle"]["mode"] == "nearest"
    oracle = open_encoder("timm:test_vit", seed=0)
    clean = result.data.images
    gallery = oracle.encode(clean)
    for i, r in enumerate(report["per_image"]):
        made = apply_chain(clean[i], _chain(r), 0)
        assert np.array_equal(made, result.final_images[i])
        assert int(np.argmax(oracle.encode(made[None]) @ gallery.T)) == i or not r["oracle_clean"]
        if r["chain"]:
            assert r["cosine"] < 1.0 and r["divergence_radius"] > 0.0
    assert report["search"]["cosine"]["worst"] <= report["search"]["cosine"]["mean"]


@pytest.fixture(scope="module")
def folder_of_photos(tmp_path_factory, photo_batch):
    return noisy_photos(tmp_path_factory.mktemp("search_imgs"), photo_batch, 4)


def test_a_short_budget_stops_the_search():
    result = run_attack(AttackConfig(model="timm:test_vit", method="search", oracle="timm:test_vit",
                                     perturbations="jpeg:10:60,brightness:0.3:1.7", levels=3, max_edits=3, queries=4,
                                     max_images=3))
    for r in result.rows:
        assert r["queries"] <= 4
        assert r["stop"] in ("budget", "no_gain", "rejected", "oracle_rejects_clean")


@pytest.mark.parametrize("argv, needle", [
    (["attack", "--method", "search"], "--oracle"),
    (["attack", "--method", "search", "--oracle", "timm:test_vit", "--oracle-mode", "zero-shot"], "class names"),
    (["attack", "--method", "search", "--oracle", "timm:test_vit", "--max-edits", "0"], "--max-edits"),
    (["perturbations", "--apply", "jpeg"], "FAMILY:LEVEL"),
    (["perturbations", "--apply", "jpeg:500", "x.png"], "outside the domain"),
])
def test_unusable_search_input_exits_2_with_one_line(argv, needle, tmp_path):
    res = run_cli(*argv, "--out", tmp_path / "o.png") if argv[0] == "perturbations" and "x.png" in argv \
        else run_cli(*argv)
    assert res.returncode == 2, (res.stdout + res.stderr)
    assert needle in (res.stdout + res.stderr) and "Traceback" not in (res.stdout + res.stderr)


def test_parse_chain_round_trips():
    assert parse_chain("jpeg:30,brightness:1.4") == [("jpeg", 30.0), ("brightness", 1.4)]


def test_the_gate_reads_fmr(tmp_path, colours):
    """The gate's attack.* values are the figures of the same search run through the API."""
    policy = tmp_path / "p.toml"
    policy.write_text('model = "timm:test_vit"\n[attack]\nmethod = "search"\noracle = "openclip:ViT-S-32"\n'
                      f'dataset = "{colours}"\nperturbations = "hue:-0.3:0.3,jpeg:10:60"'
                      '\nlevels = 2\nmax_edits = 2\nmax_per_class = 6\n'
                      '[[check]]\nmetric = "attack.fmr"\nmin = 0.0\n'
                      '[[check]]\nmetric = "attack.search.cosine.worst"\nmin = -1.0\n'
                      '[[check]]\nmetric = "attack.pa"\nmax = 2.0\n')
    res = run_cli("gate", policy, "--json", tmp_path / "gate.json")
    assert res.returncode in (0, 1), (res.stdout + res.stderr)
    gate = json.loads((tmp_path / "gate.json").read_text())
    values = {c["metric"]: c["value"] for c in gate["checks"]}
    direct = run_attack(AttackConfig(method="search", model=TESTED, oracle=ORACLE, dataset=str(colours),
                                     perturbations="hue:-0.3:0.3,jpeg:10:60", levels=2, max_edits=2, max_per_class=6,
                                     queries=1000)).figures
    assert values == {"attack.fmr": direct["fmr"], "attack.search.cosine.worst": direct["cosine"]["worst"],
                      "attack.pa": direct["pa"]}


def test_example_edit_search_policy_passes(tmp_path):
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "policies" / "edit-search.toml"
    res = run_cli("gate", example, "--out", tmp_path / "g")
    assert res.returncode == 0, (res.stdout + res.stderr)
    gate = json.loads((tmp_path / "g" / "gate.json").read_text())
    assert {c["metric"] for c in gate["checks"]} == {"attack.approved", "attack.search.cosine.worst"}


def test_a_search_in_shards_resumes_without_redoing_finished_shards(tmp_path, colours, labelled):
    """Shards of 4 images give the one-shard run's chains; with the last shard's files gone (as after
    a kill), --resume searches that shard only and gives the same rows."""
    _, whole = labelled
    out = tmp_path / "sharded"
    common = ["attack", "--method", "search", "-m", TESTED, "--oracle", ORACLE, "--dataset", colours, *SPACE,
              "--max-edits", "2", "--batch-size", "2", "--shard-size", "4", "--out", out, "-q"]
    res = run_cli(*common)
    assert res.returncode == 0, res.stderr
    first = json.loads((out / "attack.json").read_text())
    n = len(first["per_image"])
    assert first["engine"] == {"engine": "local", "shards": -(-n // 4), "reused": 0}
    assert [r["chain_spec"] for r in first["per_image"]] == [r["chain_spec"] for r in whole["per_image"]]
    assert first["search"]["fmr"] == whole["search"]["fmr"]
    last = first["engine"]["shards"] - 1
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("0*.npy") if p.stem != f"{last:05d}"}
    for suffix in (".npy", ".json"):
        (out / "shards" / f"{last:05d}{suffix}").unlink()
    (out / "attack.json").unlink()
    res = run_cli(*common, "--resume")
    assert res.returncode == 0, res.stderr
    again = json.loads((out / "attack.json").read_text())
    assert again["engine"]["reused"] == last and again["per_image"] == first["per_image"]
    assert all((out / "shards" / name).stat().st_mtime_ns == t for name, t in kept.items())
