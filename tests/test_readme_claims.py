"""README claims that had no test of their own, each checked against what it promises.

Small and fast: the toy encoder (a seeded projection, tests/toy_plugin.py) wherever a real model
would not change what is checked.
"""

import csv
import json

import numpy as np
import pytest
from PIL import Image

import toy_plugin
from cli_runner import run_cli


@pytest.fixture
def toy(tmp_path):
    toy_plugin.register_all()
    yield toy_plugin.write_inputs(tmp_path)
    toy_plugin.unregister_all()


def _policy(tmp_path, model, images, checks: str, name: str = "policy.toml", perturbations: str = "invert"):
    path = tmp_path / name
    path.write_text(f'model = "{model}"\nimages = ["{images}"]\n\n[audit]\nperturbations = "{perturbations}"\n'
                    f'levels = 2\n\n' + checks)
    return path


def test_documented_thresholds_are_the_ones_in_force():
    """README: external data above 1.5 GB; parity thresholds fp32 0.9999, fp16 0.999, bf16 0.995, int8 0.99."""
    from vfmaudit.export import onnx_export
    from vfmaudit.export.parity import DEFAULT_MIN_COSINE

    assert onnx_export.EXTERNAL_DATA_BYTES == 1_500_000_000
    assert DEFAULT_MIN_COSINE == {"fp32": 0.9999, "fp16": 0.999, "bf16": 0.995, "int8": 0.99}


def test_per_level_csv_holds_each_variants_own_values_and_json_is_the_report(toy, tmp_path):
    """per_level.csv: one row per image x family x level with that variant's cosine and euclidean,
    recomputed here from the toy encoder directly; --json writes the same document as report.json."""
    from vfmaudit import perturb
    from vfmaudit.models.preprocess import PreprocessSpec

    model, images = toy
    res = run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "3", "--out", tmp_path / "o", "-q",
                  "--json", tmp_path / "copy.json")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "copy.json").read_text()) == json.loads((tmp_path / "o" / "report.json").read_text())
    enc = toy_plugin.ProjectionEncoder(str(model), 8)
    spec = PreprocessSpec(size=(16, 16), resize=16)
    with open(tmp_path / "o" / "per_level.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 3
    for r in rows:
        img = spec.prepare(np.asarray(Image.open(r["image"]).convert("RGB")))
        clean = enc.encode(img[None])[0]
        variant = enc.encode(perturb.apply(img[None], "invert", float(r["level"]), seed=0))[0]
        assert float(r["cosine"]) == pytest.approx(float(clean @ variant), abs=1e-6)
        assert float(r["euclidean"]) == pytest.approx(float(np.linalg.norm(clean - variant)), abs=1e-6)


def test_exif_rotated_images_are_read_upright(tmp_path):
    """README: EXIF-rotated images are read as they are shown (PIL's exif_transpose as the reference)."""
    from PIL import ImageOps

    from vfmaudit.data import collect_items

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(pixels).save(tmp_path / "r.jpg", quality=95, exif=exif)
    [item] = collect_items([str(tmp_path / "r.jpg")])
    ours = item.load()
    reference = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "r.jpg")).convert("RGB"))
    assert ours.shape == (30, 20, 3) and np.array_equal(ours, reference)


def test_max_pixels_skips_larger_images_and_lists_them(toy, tmp_path):
    model, images = toy  # three 24x20 images (480 pixels)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(images / "big.png")  # 1600 pixels
    res = run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "2", "--max-pixels", "1000",
                  "--out", tmp_path / "o", "-q")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["images"]["audited"] == 3
    [skipped] = report["skipped"]
    assert skipped["input"].endswith("big.png") and "1600" in skipped["reason"]
    page = (tmp_path / "o" / "report.html").read_text()
    assert "big.png</code>:" in page and "skipped: 1" in page  # the page lists it too


def test_table_and_thumbnail_limits_of_the_page(toy, tmp_path, monkeypatch):
    """README: at most N thumbnails (--report-thumbnails), and the table embeds at most 20,000 rows,
    saying so when it is cut (the limit lowered here to see it cut)."""
    from vfmaudit.report import html_report

    model, images = toy
    assert html_report.MAX_TABLE_ROWS == 20_000
    monkeypatch.setattr(html_report, "MAX_TABLE_ROWS", 2)
    res = run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "2", "--out", tmp_path / "o", "-q",
                  "--report-thumbnails", "3")
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "o" / "report.html").read_text()
    import re

    data = json.loads(re.search(r'id="per-image-data">(.*?)</script>', page).group(1))
    assert len(data) == 2 and "The table shows the first 2 of 3 rows" in page
    thumbnails = set(re.findall(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", page))
    assert 0 < len(thumbnails) <= 3  # one image's strip: clean + 2 levels
    none = run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "2", "--out", tmp_path / "n", "-q",
                   "--report-thumbnails", "0")
    assert none.returncode == 0 and "data:image/jpeg" not in (tmp_path / "n" / "report.html").read_text()


def test_markdown_is_appended_so_github_step_summary_works(toy, tmp_path, monkeypatch):
    model, images = toy
    policy = _policy(tmp_path, model, images, '[[check]]\nmetric = "audit.invert.cosine.mean"\nmin = -1\n')
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    for i in range(2):
        res = run_cli("gate", policy, "--out", tmp_path / f"g{i}", "--markdown", summary, "-q")
        assert res.returncode == 0, res.stderr
    text = summary.read_text()
    assert text.startswith("# earlier step\n") and text.count("audit.invert.cosine.mean") == 2


def test_gate_json_carries_the_hardware_fingerprint(toy, tmp_path):
    import os

    import torch

    model, images = toy
    policy = _policy(tmp_path, model, images, '[[check]]\nmetric = "audit.invert.cosine.mean"\nmin = -1\n')
    assert run_cli("gate", policy, "--out", tmp_path / "g", "-q").returncode == 0
    fp = json.loads((tmp_path / "g" / "gate.json").read_text())["fingerprint"]
    assert fp["cpu_cores"] == os.cpu_count() and fp["torch_threads"] == torch.get_num_threads()
    assert fp["cpu"] and fp["memory_gb"] > 0 and fp["gpu"] is None  # no GPU on this machine's CI


def test_max_relative_drop_against_a_baseline_through_the_cli(toy, tmp_path):
    """A baseline gate on one model, then the same check on another: the relative change in the bad
    direction, recomputed from the two gate.json files, decides the verdict."""
    model, images = toy
    metric = "audit.brightness.divergence_radius.mean"  # lower is better
    base = _policy(tmp_path, model, images, f'[[check]]\nmetric = "{metric}"\nmax = 10\n', "base.toml", "brightness")
    assert run_cli("gate", base, "--out", tmp_path / "base", "-q").returncode == 0
    other = tmp_path / "other.toyproj"
    other.write_text("11")
    baseline_value = json.loads((tmp_path / "base" / "gate.json").read_text())["values"][metric]
    outcomes = {}
    for limit in (0.0, 10.0):
        policy = _policy(tmp_path, other, images, f'[[check]]\nmetric = "{metric}"\nmax_relative_drop = {limit}\n',
                         f"rel{limit}.toml", "brightness")
        res = run_cli("gate", policy, "--out", tmp_path / f"g{limit}", "--baseline", tmp_path / "base", "-q")
        data = json.loads((tmp_path / f"g{limit}" / "gate.json").read_text())
        value = data["values"][metric]
        relative = (value - baseline_value) / abs(baseline_value)  # in the bad direction (higher)
        outcomes[limit] = (res.returncode, relative)
    (code0, rel), (code10, _) = outcomes[0.0], outcomes[10.0]
    assert rel != 0
    assert code0 == (1 if rel > 0 else 0) and code10 == 0


def test_onnxruntime_providers_are_tried_tensorrt_then_cuda_then_cpu():
    from vfmaudit.errors import VfmauditError
    from vfmaudit.runtime.onnx_backend import provider_chain

    every = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    chain = provider_chain("cuda:1", every)
    assert [p if isinstance(p, str) else p[0] for p in chain] == every
    assert chain[0][1]["device_id"] == 1 and chain[1][1]["device_id"] == 1  # the asked GPU, not GPU 0
    assert [p if isinstance(p, str) else p[0] for p in provider_chain("cuda", every[1:])] == every[1:]
    assert provider_chain("cpu", every) == ["CPUExecutionProvider"]
    with pytest.raises(VfmauditError, match="no CUDA or TensorRT provider"):
        provider_chain("cuda", ["CPUExecutionProvider"])


def test_the_onnx_encoder_reports_the_providers_that_ran_and_binds_io_only_on_gpu(tmp_path):
    from vfmaudit import export_onnx
    from vfmaudit.runtime import create_encoder

    path = export_onnx("timm:resnet18", tmp_path / "r18.onnx", exporter="torchscript").path
    enc = create_encoder("onnx", model=str(path))
    assert enc.describe()["providers"] == ["CPUExecutionProvider"] and enc._binding is False


def test_optimize_cpu_through_the_cli_writes_a_cpu_file_that_gives_the_same_embeddings(tmp_path):
    from vfmaudit.data import sample_items
    from vfmaudit.runtime import create_encoder

    res = run_cli("export", "onnx", "-m", "timm:test_resnet", "--exporter", "torchscript", "--optimize-cpu",
                  "--out", tmp_path / "r18.onnx")
    assert res.returncode == 0, res.stderr
    cpu_file = tmp_path / "r18.cpu.onnx"
    assert cpu_file.is_file() and str(cpu_file) in res.stdout
    a, b = create_encoder("onnx", model=str(tmp_path / "r18.onnx")), create_encoder("onnx", model=str(cpu_file))
    images = np.stack([a.preprocess.prepare(it.load()) for it in sample_items(3)])
    assert np.min(np.sum(a.encode(images) * b.encode(images), axis=1)) > 0.9999


def test_builtin_shapes_and_digits_sets():
    """builtin:shapes: 5 classes, deterministic; builtin:digits: scikit-learn's digits, upsampled to 64x64,
    colourised (the upsampled intensity still orders the pixels as the 8x8 digit does)."""
    from sklearn.datasets import load_digits

    from vfmaudit.data.datasets import load_dataset

    shapes = load_dataset("builtin:shapes", 3)
    assert len(shapes.class_names) == 5 and sorted(set(shapes.labels)) == list(range(5))
    assert len(shapes.items) == 15 and np.array_equal(shapes.items[0].load(), load_dataset("builtin:shapes", 3).items[0].load())
    digits = load_dataset("builtin:digits", 2)
    assert digits.class_names == [str(c) for c in range(10)] and list(digits.labels) == [c for c in range(10) for _ in (0, 1)]
    ref = load_digits()
    first_three = np.flatnonzero(ref.target == 3)[0]
    img = digits.items[6].load()  # class 3, first image
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    # each 8x8 cell's mean brightness follows the source digit's ink (foreground brighter than background)
    cells = img.astype(float).mean(axis=2).reshape(8, 8, 8, 8).mean(axis=(1, 3))
    ink = ref.images[first_three]
    assert np.corrcoef(cells.ravel(), ink.ravel())[0, 1] > 0.9


def test_finetune_train_modes_choose_the_documented_parameters():
    """--train all: every parameter of the image tower; norm: the normalisation layers' only; last:N:
    the last N blocks and what follows them."""
    import torch

    from vfmaudit.finetune.trainable import image_tower, select_trainable
    from vfmaudit.models import build_model

    module = build_model("timm:resnet18", seed=0).module
    tower = image_tower(module)
    every = {n for n, _ in tower.named_parameters()}
    assert set(select_trainable(module, "all")) == every
    norms = {f"{m}.{p}" for m, mod in tower.named_modules() if isinstance(mod, torch.nn.BatchNorm2d)
             for p, _ in mod.named_parameters(recurse=False)}
    assert set(select_trainable(module, "norm")) == norms and norms
    last = select_trainable(module, "last", 1)
    assert last and all(n.startswith("layer4.1.") or not n.startswith(("layer", "conv1", "bn1")) for n in last)
    assert {n for n, p in tower.named_parameters() if p.requires_grad} == set(last)  # the rest is frozen


def test_lr_schedule_is_a_linear_warm_up_then_cosine_decay():
    import math

    from vfmaudit.finetune.trainer import schedule

    total, warm = 100, 10
    assert [schedule(s, total, warm) for s in range(warm)] == [(s + 1) / warm for s in range(warm)]
    for s in range(warm, total):
        expected = 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
        assert schedule(s, total, warm) == pytest.approx(expected, abs=1e-12)


def test_a_dinov2_encoder_is_built_and_embeds():
    """DINOv2 (timm's vit_small_patch14_dinov2), seeded random weights: its own 518-px preprocessing from
    timm's config and 384-d embeddings, unit length, the same for the same seed."""
    from vfmaudit.runtime import create_encoder

    enc = create_encoder("torch", model="timm:vit_small_patch14_dinov2", seed=0)
    assert enc.preprocess.size == (518, 518) and enc.embed_dim == 384
    img = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    out = enc.encode(img)
    assert out.shape == (1, 384) and abs(float(np.linalg.norm(out)) - 1) < 1e-5
    again = create_encoder("torch", model="timm:vit_small_patch14_dinov2", seed=0).encode(img)
    assert np.array_equal(out, again)
