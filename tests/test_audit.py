"""The audit end to end through the real CLI and API: outputs, bad input, resume."""

import json

import numpy as np
import pytest
from PIL import Image

from vfmaudit import AuditConfig, VfmauditError, perturb, run_audit
from vfmaudit.metrics import drift_metrics

from cli_runner import run_cli as vfmaudit
from helpers import rows

FAST = ["-p", "jpeg,brightness,gaussian_noise", "--levels", "3"]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, photo_batch):
    """Five good photos, odd-but-valid ones, and unreadable ones."""
    d = tmp_path_factory.mktemp("imgs")
    for i, img in enumerate(photo_batch):
        Image.fromarray(img).save(d / f"photo{i}.png")
    (d / "sub").mkdir()
    Image.fromarray(photo_batch[0]).save(d / "sub" / "again.jpg", quality=90)
    Image.fromarray(photo_batch[1][..., 0]).save(d / "gray.png")
    Image.fromarray(np.dstack([photo_batch[2], np.full(photo_batch.shape[1:3], 200, np.uint8)])).save(d / "rgba.png")
    Image.fromarray((photo_batch[3][..., 1].astype(np.uint16) * 257)).save(d / "deep16.png")
    Image.fromarray(photo_batch[0]).convert("CMYK").save(d / "cmyk.jpg")
    data = (d / "photo1.png").read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 3])
    (d / "notes.txt").write_text("not an image")
    Image.new("1", (12000, 12000)).save(d / "bomb.png")
    return d


GOOD = {"photo0.png", "photo1.png", "photo2.png", "photo3.png", "again.jpg", "gray.png", "rgba.png",
        "deep16.png", "cmyk.jpg"}
BAD = {"truncated.png", "notes.txt", "bomb.png"}


def test_default_audit_writes_all_outputs(default_audit):
    # the main job as a user starts it: a real process of the installed package, no arguments
    res, out = default_audit
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == 1 and report["random_weights"] is True
    assert report["weights"] == "random(seed=0)" and "random weights" in res.stdout
    fams = perturb.get_preset("everyday").families  # the default -p: the everyday edits, not the 19 of ImageNet-C
    assert list(report["families"]) == fams and "imagenet_c" not in report
    for fam in fams:
        for metric in ("cosine", "euclidean", "divergence_radius"):
            s = report["families"][fam][metric]
            assert set(s) >= {"mean", "median", "p5", "p95", "worst"}
            assert s["p5"] <= s["median"] <= s["p95"]
    assert report["images"]["audited"] == 12 and report["skipped"] == []
    assert {"numpy", "torch", "vfmaudit"} <= set(report["versions"])
    table = rows(out / "per_image.csv")
    assert len(table) == 12 * len(fams)
    assert all(0 <= float(r["divergence_radius"]) <= 1.0 + 1e-6 for r in table)
    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 2 and "src=\"http" not in page and "href=\"http" not in page


def test_folder_with_bad_files_is_audited_and_lists_what_it_skipped(tmp_path, image_folder):
    res = vfmaudit("audit", image_folder, *FAST, "--out", tmp_path / "o", "--batch-size", "4")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    skipped = {s["input"].split("/")[-1]: s["reason"] for s in report["skipped"]}
    assert set(skipped) == BAD
    assert "decompression bomb" in skipped["bomb.png"]
    audited = {r["image"].split("/")[-1] for r in rows(tmp_path / "o" / "per_image.csv")}
    assert audited == GOOD
    assert report["images"] == {"audited": len(GOOD), "skipped": len(BAD)}
    assert "Traceback" not in res.stderr


def test_per_image_metrics_equal_a_direct_computation(tmp_path, image_folder, small_encoder):
    config = AuditConfig(inputs=[str(image_folder / "photo2.png")], perturbations="brightness,imagenet_c_glass_blur",
                         levels=4, out=str(tmp_path / "o"), seed=3, batch_size=16)
    run_audit(config, encoder=small_encoder)
    img = np.asarray(Image.open(image_folder / "photo2.png").convert("RGB"))
    base = small_encoder.preprocess.prepare(img)
    clean = small_encoder.encode(base)
    got = {r["family"]: r for r in rows(tmp_path / "o" / "per_image.csv")}
    for fam in ("brightness", "imagenet_c_glass_blur"):
        variants = np.stack([perturb.apply(base, fam, lv, seed=3) for lv in perturb.levels(fam, 4)])
        m = drift_metrics(clean, small_encoder.encode(variants)[None])
        for metric in ("cosine", "euclidean", "divergence_radius"):
            assert float(got[fam][metric]) == pytest.approx(m[metric][0], abs=2e-5), (fam, metric)


@pytest.mark.parametrize("args,needle", [
    (["audit", "{empty}"], "holds no files"),
    (["audit", "/no/such/path.jpg"], "no such file"),
    (["audit", "-p", "fog"], "unknown perturbation"),
    (["audit", "-p", "jpeg:5:50"], "outside the domain"),
    (["audit", "--levels", "0"], "--levels must be >= 1"),  # the library's `levels`, shown as the flag
    (["audit", "--pretrained", "/no/such/weights.pt"], "weights file not found"),
    (["audit", "--model", "openclip:NoSuchNet"], "unknown OpenCLIP architecture"),
    (["audit", "--backend", "nope"], "unknown backend"),
    (["audit", "--levels", "many"], "--levels"),
    (["audit", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["audit", "--model", "m.onnx"], "ONNX file not found: m.onnx; check the path passed as --model"),
    (["audit", "-p", "parity,jpeg"], "'jpeg' is listed twice"),
])
def test_runs_that_cannot_start_fail_with_one_line_and_exit_2(tmp_path, args, needle):
    (tmp_path / "empty").mkdir()
    args = [a.replace("{empty}", str(tmp_path / "empty")) for a in args]
    res = vfmaudit(*args, "--out", tmp_path / "o", cwd=tmp_path)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.stderr
    assert not (tmp_path / "o").exists()  # stopped before writing anything: --out not even created


def test_interrupted_audit_resumes_without_redoing_finished_images(tmp_path, image_folder, small_encoder):
    out = tmp_path / "o"
    base = dict(inputs=[str(image_folder)], perturbations="jpeg,contrast", levels=3, out=str(out), batch_size=3)
    def interrupt_after_first_chunk(event, n):
        if event == "advance":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_audit(AuditConfig(**base), progress=interrupt_after_first_chunk, encoder=small_encoder)
    done_first = {r["image"] for r in rows(out / "per_image.csv")}
    skipped_first = (out / "skipped.jsonl").read_text().splitlines()
    assert 0 < len(done_first) < len(GOOD)

    with pytest.raises(VfmauditError, match="pass resume") as refused:  # refuses to overwrite finished work
        run_audit(AuditConfig(**base), encoder=small_encoder)
    assert "resume" in refused.value.param  # the API names parameters; the CLI shows them as flags

    counted = []
    result = run_audit(AuditConfig(**base, resume=True), encoder=small_encoder,
                       progress=lambda e, n: counted.append((e, n)))
    started = [n for e, n in counted if e == "start"][0]
    assert started == len(GOOD) + len(BAD) - len(done_first) - len(skipped_first)
    final = rows(out / "per_image.csv")
    assert len(final) == 2 * len(GOOD) and len({r["image"] for r in final}) == len(GOOD)
    assert result.report["images"]["audited"] == len(GOOD)

    fresh = tmp_path / "fresh"
    run_audit(AuditConfig(**{**base, "out": str(fresh)}), encoder=small_encoder)
    key = lambda r: (r["image"], r["family"])  # noqa: E731
    a = {key(r): r for r in final}
    b = {key(r): r for r in rows(fresh / "per_image.csv")}
    assert a.keys() == b.keys()
    for k in a:
        assert float(a[k]["divergence_radius"]) == pytest.approx(float(b[k]["divergence_radius"]), abs=1e-5)


def test_resume_with_other_options_is_refused(tmp_path, image_folder):
    first = vfmaudit("audit", image_folder / "photo0.png", *FAST, "--out", tmp_path / "o")
    assert first.returncode == 0, first.stderr
    again = vfmaudit("audit", image_folder / "photo0.png", *FAST, "--out", tmp_path / "o")
    assert again.returncode == 2 and "--resume" in again.stderr
    other = vfmaudit("audit", image_folder / "photo0.png", *FAST, "--seed", "4", "--out", tmp_path / "o", "--resume")
    assert other.returncode == 2 and "seed" in other.stderr
    same = vfmaudit("audit", image_folder / "photo0.png", *FAST, "--out", tmp_path / "o", "--resume")
    assert same.returncode == 0, same.stderr
    over = vfmaudit("audit", image_folder / "photo0.png", *FAST, "--seed", "4", "--out", tmp_path / "o",
                    "--overwrite")
    assert over.returncode == 0 and json.loads((tmp_path / "o" / "report.json").read_text())["seed"] == 4


def test_perturbations_command_lists_the_catalogue():
    res = vfmaudit("perturbations")
    assert res.returncode == 0
    for name in perturb.families():
        assert name in res.stdout


def test_a_chunk_of_many_families_moves_the_bar_family_by_family(tmp_path, monkeypatch, photo_batch):
    """One image under every ImageNet-C corruption is one chunk of minutes: the bar advances per family
    (naming it), and the chunk's end completes the image exactly."""
    from PIL import Image

    from cli_runner import run_cli
    from vfmaudit.cli.common import AuditProgress

    Image.fromarray(photo_batch[0]).save(tmp_path / "one.png")
    calls = []
    real_call, real_part = AuditProgress.__call__, AuditProgress.part
    monkeypatch.setattr(AuditProgress, "__call__", lambda self, event, n: (
        calls.append((event, n, "")), real_call(self, event, n))[1])
    monkeypatch.setattr(AuditProgress, "part", lambda self, share, family: (
        calls.append(("part", share, family)), real_part(self, share, family))[1])
    families = ["imagenet_c_gaussian_noise", "imagenet_c_defocus_blur", "imagenet_c_contrast"]
    res = run_cli("audit", tmp_path / "one.png", "-m", "timm:test_vit", "-p", ",".join(families), "--levels", "2",
                  "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    parts = [(n, doing) for event, n, doing in calls if event == "part"]
    assert [d for _, d in parts] == families and sum(n for n, _ in parts) == pytest.approx(1.0), calls
    assert calls[0][0] == "start" and calls[-1][:2] == ("advance", 1)
