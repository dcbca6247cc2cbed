"""The label-free ImageNet-C summary: per corruption, the mean radius over severities 1..5, their
mean over the 15, and the same relative to a reference audit; in report.json, the console and the gate."""

import json

import numpy as np
import pytest

from cli_runner import run_cli
from helpers import noisy_photos, rows
from vfmaudit.audit.imagenet_c import imagenet_c_summary
from vfmaudit.perturb.families.imagenet_c import EXTRA, FIFTEEN, family_name

ARGS = ["-m", "timm:test_vit", "--batch-size", "8", "-q"]


def _families(radii: dict[str, float]) -> dict:
    return {family_name(c): {"divergence_radius": {"mean": r}, "levels": [1.0, 2.0, 3.0, 4.0, 5.0]}
            for c, r in radii.items()}


def test_the_summary_is_the_mean_over_the_15_and_the_mean_ratio_to_the_reference():
    rng = np.random.default_rng(0)
    ours = {c: float(rng.uniform(0.1, 0.5)) for c in (*FIFTEEN, *EXTRA)}
    theirs = {c: float(rng.uniform(0.1, 0.5)) for c in (*FIFTEEN, *EXTRA)}
    block = imagenet_c_summary(_families(ours), {"families": _families(theirs)}, "last-release")
    assert block["complete_15"] and block["mean_radius_15"] == pytest.approx(np.mean([ours[c] for c in FIFTEEN]))
    assert block["mean_radius_extra"] == pytest.approx(np.mean([ours[c] for c in EXTRA]))
    assert block["relative_15"] == pytest.approx(np.mean([ours[c] / theirs[c] for c in FIFTEEN]))
    assert block["corruptions"]["fog"]["relative"] == pytest.approx(ours["fog"] / theirs["fog"])
    partial = imagenet_c_summary(_families({"fog": 0.2, "snow": 0.3}))
    assert partial["mean_radius_15"] is None and "frost" in partial["missing_15"] and partial["relative_15"] is None
    assert imagenet_c_summary({"jpeg": {}}) is None  # no ImageNet-C family, no block


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photo_batch):
    return noisy_photos(tmp_path_factory.mktemp("icsum"), photo_batch, 2)


def test_audit_reports_the_summary_and_its_ratio_to_a_reference_audit(folder, tmp_path):
    plan = ["-p", "imagenet_c_fog,imagenet_c_contrast,imagenet_c_pixelate", "--levels", "2"]
    first = run_cli("audit", folder, *ARGS, *plan, "--out", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    second = run_cli("audit", folder, *[a for a in ARGS if a != "-q"], *plan, "--seed", "3", "--out",
                     tmp_path / "b", "--reference-report", tmp_path / "a" / "report.json")
    assert second.returncode == 0, second.stderr
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    for c in ("fog", "contrast", "pixelate"):
        mine, ref = b["imagenet_c"]["corruptions"][c], a["families"][family_name(c)]["divergence_radius"]["mean"]
        assert mine["radius"] == b["families"][family_name(c)]["divergence_radius"]["mean"]
        assert mine["relative"] == pytest.approx(mine["radius"] / ref)
        assert not mine["imagenet_c_severities"]  # two levels over [0, 5], not severities 1..5: said so
    assert b["imagenet_c"]["mean_radius_15"] is None and b["imagenet_c"]["reference"].endswith("report.json")
    assert "ImageNet-C: 3 corruption(s) measured" in second.stdout and "missing: gaussian_noise" in second.stdout
    page = (tmp_path / "b" / "report.html").read_text()
    assert 'id="imagenet-c-summary"' in page and "ImageNet-C: 3 corruption(s) measured" in page
    assert f"{b['imagenet_c']['corruptions']['fog']['relative']:.4f}" in page


def test_an_unreadable_reference_is_one_line_before_any_work(folder, tmp_path):
    res = run_cli("audit", folder, *ARGS, "-p", "imagenet-c", "--out", tmp_path / "o",
                  "--reference-report", tmp_path / "nothing")
    assert res.returncode == 2 and "--reference-report" in res.stderr and res.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_the_gate_reads_the_summary(tmp_path):
    (tmp_path / "policy.toml").write_text(
        'model = "timm:test_vit"\n[audit]\nperturbations = "imagenet-c"\n'
        '[[check]]\nmetric = "audit.imagenet_c.mean_radius_15"\nmax = 0.5\n'
        '[[check]]\nmetric = "audit.imagenet_c.fog.radius"\nmax = 0.5\n')
    plan = run_cli("gate", tmp_path / "policy.toml", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "audit.imagenet_c.mean_radius_15" in plan.stdout and "audit.imagenet_c.fog.radius" in plan.stdout


def test_audit_under_the_release_protocol(folder, tmp_path):
    res = run_cli("audit", folder, *ARGS, "-p", "imagenet_c_contrast", "--levels", "2", "--protocol", "imagenet-c",
                  "--out", tmp_path / "p")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    assert report["protocol"] == "imagenet-c" and report["images"]["audited"] == 2
    bad = run_cli("audit", folder, *ARGS, "--protocol", "imagenet", "--out", tmp_path / "q")
    assert bad.returncode == 2 and "unknown --protocol 'imagenet'" in bad.stderr and not (tmp_path / "q").exists()


def test_a_calibration_set_from_the_imagenet_c_preset_holds_its_severities(tmp_path):
    from vfmaudit.calibration.dataset import build_calibration_set
    from vfmaudit.data.sources import sample_items
    from vfmaudit.models.preprocess import PreprocessSpec

    spec = PreprocessSpec(size=(64, 64), resize=64)
    calib = build_calibration_set(sample_items()[:4], spec, size=40, cache_dir=tmp_path, perturbations="imagenet-c")
    edits = {(e["edit"], e["level"]) for e in calib.index}
    assert {f for f, _ in edits} - {"clean"} <= {family_name(c) for c in FIFTEEN}
    assert {lv for f, lv in edits if f != "clean"} <= {1.0, 2.0, 3.0, 4.0, 5.0} and len(edits) > 10


def test_pixel_mode_and_frost_folder_options_reach_the_corruptions_and_the_report(folder, tmp_path, monkeypatch):
    import cv2

    from vfmaudit.perturb.families.imagenet_c import set_frost_dir
    from vfmaudit.perturb.families.imagenet_c.frost import ORIGINAL_FILES

    monkeypatch.setenv("VFMAUDIT_IMAGENET_C_PIXELS", "imagenet")  # restored after the test: the CLI sets both
    monkeypatch.setenv("VFMAUDIT_FROST_DIR", "")
    frost = tmp_path / "frost"
    frost.mkdir()
    for name, (w, h) in ORIGINAL_FILES:
        cv2.imwrite(str(frost / name), np.full((h, w, 3), 90, np.uint8))
    try:
        res = run_cli("audit", folder, *ARGS, "-p", "imagenet_c_frost,imagenet_c_defocus_blur", "--levels", "2",
                      "--imagenet-c-pixels", "scale", "--frost-dir", frost, "--out", tmp_path / "o")
        assert res.returncode == 0, res.stderr
        options = json.loads((tmp_path / "o" / "report.json").read_text())["imagenet_c"]["options"]
        assert options["pixels"] == "scale" and options["frost"]["textures"] == str(frost)
        assert set(options["frost"]["sha256"]) == {n for n, _ in ORIGINAL_FILES}
        (frost / "frost3.png").unlink()
        bad = run_cli("audit", folder, *ARGS, "-p", "imagenet_c_frost", "--frost-dir", frost, "--out", tmp_path / "b")
        assert bad.returncode == 2 and "frost3.png is missing" in bad.stderr and not (tmp_path / "b").exists()
        wrong = run_cli("audit", folder, *ARGS, "--imagenet-c-pixels", "px", "--out", tmp_path / "c")
        assert wrong.returncode == 2 and "pixel mode 'px'" in wrong.stderr
        # one run's options do not leak into the next run of the process; the environment is the default
        after = run_cli("audit", folder, *ARGS, "-p", "imagenet_c_defocus_blur", "--levels", "1", "--out", tmp_path / "d")
        assert after.returncode == 0, after.stderr
        options = json.loads((tmp_path / "d" / "report.json").read_text())["imagenet_c"]["options"]
        assert options["pixels"] == "imagenet" and options["frost"]["textures"] == "procedural"
        monkeypatch.setenv("VFMAUDIT_IMAGENET_C_PIXELS", "scale")
        from_env = run_cli("audit", folder, *ARGS, "-p", "imagenet_c_defocus_blur", "--levels", "1", "--out",
                           tmp_path / "e")
        assert from_env.returncode == 0, from_env.stderr
        assert json.loads((tmp_path / "e" / "report.json").read_text())["imagenet_c"]["options"]["pixels"] == "scale"
        d, e = rows(tmp_path / "d" / "per_image.csv"), rows(tmp_path / "e" / "per_image.csv")
        assert [r["divergence_radius"] for r in d] != [r["divergence_radius"] for r in e]  # scaled radii differ
    finally:
        set_frost_dir(None)


def test_downstream_takes_the_imagenet_c_options_and_records_them(tmp_path):
    common = ["downstream", "builtin:textures", "-m", "timm:test_vit", "--max-per-class", "4", "--tasks", "knn",
              "-p", "imagenet_c_defocus_blur", "--levels", "1", "-q"]
    res = run_cli(*common, "--imagenet-c-pixels", "scale", "--out", tmp_path / "s")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "s" / "downstream.json").read_text())
    assert report["imagenet_c"]["options"]["pixels"] == "scale"
    # a resume with the other pixel mode would mix embeddings of two corruptions: refused
    again = run_cli(*common, "--out", tmp_path / "s", "--resume")
    assert again.returncode == 2 and "cannot resume" in again.stderr and "imagenet_c_pixels" in again.stderr
