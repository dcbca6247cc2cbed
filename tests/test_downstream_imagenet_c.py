"""Labelled ImageNet-C figures in `vfmaudit downstream`: CE and mCE against AlexNet's published errors
and against a baseline run, computed from the per-severity accuracies the report holds."""

import json

import numpy as np
import pytest

from cli_runner import run_cli
from vfmaudit.downstream.imagenet_c import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, corruption_errors
from vfmaudit.perturb.families.imagenet_c import FIFTEEN

SEV = [1.0, 2.0, 3.0, 4.0, 5.0]


def _task(rng, clean_acc):
    return {"clean": {"accuracy": clean_acc},
            "families": {f"imagenet_c_{c}": {"levels": SEV, "accuracy": list(rng.uniform(0.1, 0.6, 5))}
                         for c in FIFTEEN}}


def test_ce_and_mce_follow_the_papers_definitions():
    rng = np.random.default_rng(0)
    ours, base = {"knn": _task(rng, 0.8)}, {"tasks": {"knn": _task(rng, 0.7)}}
    block = corruption_errors(ours, base)["tasks"]["knn"]
    ce_alex, rel_alex, ce_base, rel_base = [], [], [], []
    for c in FIFTEEN:
        e = 1 - np.array(ours["knn"]["families"][f"imagenet_c_{c}"]["accuracy"])
        b = 1 - np.array(base["tasks"]["knn"]["families"][f"imagenet_c_{c}"]["accuracy"])
        a = np.array(ALEXNET_ERRORS[c])
        ce_alex.append(e.sum() / a.sum())
        rel_alex.append((e - 0.2).sum() / (a - ALEXNET_CLEAN_ERROR).sum())
        ce_base.append(e.sum() / b.sum())
        rel_base.append((e - 0.2).sum() / (b - 0.3).sum())
        assert block["corruptions"][c]["ce_alexnet"] == pytest.approx(ce_alex[-1])
    assert block["mce_alexnet"] == pytest.approx(np.mean(ce_alex))
    assert block["mrelative_ce_alexnet"] == pytest.approx(np.mean(rel_alex))
    assert block["mce_baseline"] == pytest.approx(np.mean(ce_base))
    assert block["mrelative_ce_baseline"] == pytest.approx(np.mean(rel_base))
    # AlexNet normalised by itself is 1: its per-severity table means are augmix's ALEXNET_ERR
    assert np.mean(ALEXNET_ERRORS["fog"]) == pytest.approx(0.819324, abs=1e-6)


def test_downstream_reports_ce_per_task_and_against_a_baseline(tmp_path):
    common = ["downstream", "builtin:textures", "-m", "timm:test_vit", "--max-per-class", "6", "--tasks",
              "linear-probe,knn", "-p", "imagenet_c_contrast:1:5,imagenet_c_fog:1:5", "--levels", "5", "-q"]
    first = run_cli(*common, "--out", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    second = run_cli(*common, "--seed", "1", "--out", tmp_path / "b", "--baseline-report", tmp_path / "a")
    assert second.returncode == 0, second.stderr
    a = json.loads((tmp_path / "a" / "downstream.json").read_text())
    b = json.loads((tmp_path / "b" / "downstream.json").read_text())
    assert set(b["imagenet_c"]["tasks"]) == {"linear_probe", "knn_1", "knn_20"}  # every classifier
    for task in b["imagenet_c"]["tasks"]:
        entry = b["imagenet_c"]["tasks"][task]["corruptions"]["fog"]
        errors = [1 - x for x in b["tasks"][task]["families"]["imagenet_c_fog"]["accuracy"]]
        base = [1 - x for x in a["tasks"][task]["families"]["imagenet_c_fog"]["accuracy"]]
        assert entry["error"] == pytest.approx(errors) and entry["severities"] == SEV
        assert entry["ce_alexnet"] == pytest.approx(sum(errors) / sum(ALEXNET_ERRORS["fog"]))
        if sum(base) > 0:
            assert entry["ce_baseline"] == pytest.approx(sum(errors) / sum(base))
        assert b["imagenet_c"]["tasks"][task]["mce_alexnet"] is None  # 2 of the 15: no mean claimed
    assert "retrieval" not in b["imagenet_c"]["tasks"]
    bad = run_cli(*common, "--out", tmp_path / "c", "--baseline-report", tmp_path / "nothing")
    assert bad.returncode == 2 and "--baseline-report" in bad.stderr and not (tmp_path / "c").exists()


def test_zero_shot_gets_its_corruption_errors_and_ce(tmp_path):
    """The zero-shot classifier of an OpenCLIP model (its own text tower over the class names) is one
    of the tasks that get ImageNet-C errors per severity and the AlexNet-normalised CE."""
    res = run_cli("downstream", "builtin:textures", "-m", "openclip:ViT-S-32", "--max-per-class", "2", "--tasks",
                  "zero-shot", "-p", "imagenet_c_contrast:1:5", "--levels", "5", "--out", tmp_path / "z", "-q")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "z" / "downstream.json").read_text())
    (task,) = report["imagenet_c"]["tasks"]
    assert task.startswith("zero")
    entry = report["imagenet_c"]["tasks"][task]["corruptions"]["contrast"]
    errors = [1 - a for a in report["tasks"][task]["families"]["imagenet_c_contrast"]["accuracy"]]
    assert entry["severities"] == SEV and entry["error"] == pytest.approx(errors)
    assert entry["ce_alexnet"] == pytest.approx(sum(errors) / sum(ALEXNET_ERRORS["contrast"]))
    clean = 1 - report["tasks"][task]["clean"]["accuracy"]
    assert report["imagenet_c"]["tasks"][task]["clean_error"] == pytest.approx(clean)
