"""--max-images wherever a command reads images: the first N readable images of the inputs, in their
order, the unreadable ones before them skipped and listed; part of what a resume must match."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from cli_runner import run_cli
from helpers import write_tar

MODEL = "timm:test_vit"


def _png(img) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, photo_batch):
    """A folder (a corrupt file second in its order) and a WebDataset shard of the same images."""
    root = tmp_path_factory.mktemp("max_images")
    folder = root / "photos"
    folder.mkdir()
    for i, img in enumerate(photo_batch):
        Image.fromarray(img).save(folder / f"p{i}.png")
    (folder / "p0x.png").write_bytes(b"not an image")  # between p0 and p1
    members = [(f"s{i}.png", _png(img)) for i, img in enumerate(photo_batch)]
    members.insert(1, ("s0x.png", b"not an image"))
    return folder, write_tar(root / "shard-000.tar", members)


def _audited(out) -> tuple[list[str], list[str]]:
    report = json.loads((out / "report.json").read_text())
    rows = (out / "per_image.csv").read_text().splitlines()[1:]
    return sorted({r.split(",")[0] for r in rows}), [s["input"] for s in report["skipped"]]


def test_audit_reads_the_first_readable_images_of_a_folder_or_a_shard(inputs, tmp_path):
    folder, shard = inputs
    for source, names in ((folder, ["p0.png", "p1.png"]), (shard, ["s0", "s1"])):
        out = tmp_path / source.name
        res = run_cli("audit", source, "-m", MODEL, "-p", "jpeg", "--levels", "1", "--max-images", "2", "--out", out,
                      "-q")
        assert res.returncode == 0, res.stderr
        audited, skipped = _audited(out)
        assert [a.rsplit("/", 1)[-1] for a in audited] == names, audited
        assert len(skipped) == 1 and skipped[0].endswith(("p0x.png", "s0x")), skipped
        # part of the fingerprint: another cap is not a resume of this run
        again = run_cli("audit", source, "-m", MODEL, "-p", "jpeg", "--levels", "1", "--max-images", "3", "--out", out,
                        "--resume", "-q")
        assert again.returncode == 2 and "max_images (2 then, 3 now)" in again.stderr.replace("--max-images", "max_images")


def test_audit_max_images_caps_the_built_in_samples_and_is_refused_where_order_is_not_kept(tmp_path):
    res = run_cli("audit", "-m", MODEL, "-p", "jpeg", "--levels", "1", "--max-images", "2", "--out", tmp_path / "s",
                  "-q")
    assert res.returncode == 0, res.stderr
    assert len(_audited(tmp_path / "s")[0]) == 2
    for args, needle in ((["--max-images", "0"], "--max-images must be >= 1"),
                         (["--max-images", "2", "--engine", "ray"], "do not keep; pass --engine local")):
        res = run_cli("audit", "-m", MODEL, *args, "--out", tmp_path / "r", "-q")
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr


def test_finetune_calibrate_and_export_check_take_max_images(inputs, tmp_path):
    folder, _ = inputs
    out = tmp_path / "ft"
    res = run_cli("finetune", folder, "-m", "timm:test_resnet", "--max-images", "3", "--held-out", "0.34",
                  "--batch-size", "2", "--steps", "1", "--eval-perturbations", "jpeg", "--out", out, "-q")
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["train_images"] + report["held_out"]["images"] == 3 and report["config"]["max_images"] == 3
    onnx = tmp_path / "m.onnx"
    res = run_cli("export", "onnx", MODEL, "-o", onnx, "--exporter", "torchscript", "--images", folder,
                  "--max-images", "2", "--json", tmp_path / "parity.json", "-q")
    assert res.returncode == 0, res.stderr
    parity = json.loads((tmp_path / "parity.json").read_text())
    assert sorted({r["image"].rsplit("/", 1)[-1] for r in parity["per_image"]}) == ["p0.png", "p1.png"]
    res = run_cli("calibrate", onnx, "--images", folder, "--max-images", "2", "-o", tmp_path / "q.onnx",
                  "--json", tmp_path / "cal.json", "-q")
    assert res.returncode in (0, 1), res.stderr  # 1: the acceptance threshold, not the point here
    assert json.loads((tmp_path / "cal.json").read_text())["calibration"]["source_images"] == 2


def test_bench_audit_takes_max_images(inputs, tmp_path):
    folder, _ = inputs
    res = run_cli("bench", "audit", folder, "-m", MODEL, "-p", "jpeg", "--levels", "1", "--max-images", "2",
                  "--json", tmp_path / "b.json")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "b.json").read_text())["images"] == 2
    res = run_cli("bench", "audit", folder, "-m", MODEL, "--max-images", "2", "--engine", "ray")
    assert res.returncode == 2 and "pass --engine local" in res.stderr, res.stderr
