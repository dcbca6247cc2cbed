"""`vfmaudit report compare --json` without a browser: deltas, verdicts by metric direction, moved-most.

Everything is recomputed from the two audits' own files (report.json, per_image.csv) with the csv
module, not with the compare code.
"""

import csv
import json

import pytest

import toy_plugin
from cli_runner import run_cli


@pytest.fixture
def two_audits(tmp_path):
    """The same images audited by two toy encoders (different seeded projections) and families."""
    toy_plugin.register_all()
    model_a, images = toy_plugin.write_inputs(tmp_path)
    model_b = tmp_path / "b.toyproj"
    model_b.write_text("11")
    for name, model in (("a", model_a), ("b", model_b)):
        res = run_cli("audit", images, "-m", model, "-p", "invert,brightness", "--levels", "3", "--out",
                      tmp_path / name, "-q")
        assert res.returncode == 0, res.stderr
    yield tmp_path / "a", tmp_path / "b"
    toy_plugin.unregister_all()


def _radius(folder) -> dict:
    with open(folder / "per_image.csv", newline="") as f:
        return {(r["image"], r["family"]): float(r["divergence_radius"]) for r in csv.DictReader(f)}


def test_compare_json_deltas_verdicts_and_moved_most(two_audits, tmp_path):
    a, b = two_audits
    res = run_cli("report", "compare", a, b, "--out", tmp_path / "c.html", "--json", tmp_path / "c.json")
    assert res.returncode == 0, res.stderr
    comp = json.loads((tmp_path / "c.json").read_text())
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (a, b))
    assert set(comp["families"]) == {"invert", "brightness"}
    directions = ra["metric_directions"]
    verdicts = set()
    for fam, entry in comp["families"].items():
        assert set(entry) == set(directions) >= {"cosine", "euclidean", "divergence_radius"}
        for metric, d in entry.items():
            va, vb = ra["families"][fam][metric]["mean"], rb["families"][fam][metric]["mean"]
            assert d["a"] == va and d["b"] == vb and d["delta"] == pytest.approx(vb - va, abs=1e-15)
            higher_is_better = "higher" in directions[metric]
            worse = (vb < va) if higher_is_better else (vb > va)
            expected = "same" if abs(vb - va) <= 1e-6 else ("worse" if worse else "better")
            assert d["verdict"] == expected, (fam, metric, d)
            if expected != "same":
                verdicts.add((higher_is_better, d["verdict"]))
    # a verdict both ways, and in both directions of metric, so a sign mistake shows
    assert {v for _, v in verdicts} == {"worse", "better"} and {h for h, _ in verdicts} == {True, False}
    # moved most: the largest |radius B - radius A| over the shared (image, family) pairs, largest first
    pa, pb = _radius(a), _radius(b)
    expected = sorted(pa, key=lambda k: -abs(pb[k] - pa[k]))
    moved = comp["moved_most"]
    assert [(m["image"], m["family"]) for m in moved] == expected[:len(moved)] and len(moved) == min(20, len(pa))
    for m in moved:
        key = (m["image"], m["family"])
        assert m["radius_a"] == pa[key] and m["radius_b"] == pb[key]
        assert m["delta"] == pytest.approx(pb[key] - pa[key], abs=1e-15)
    assert comp["images"] == {"a": 3, "b": 3, "shared": 3} and comp["note"] is None
