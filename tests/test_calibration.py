"""INT8 calibration: deterministic bounded sets, real quantized operators, acceptance, bad input."""

import json
import re
from collections import Counter

import numpy as np
import pytest

from vfmaudit.calibration import build_calibration_set, quantize_onnx, quantized_op_counts, split_held_out
from vfmaudit.calibration.ort_quant import _stride
from vfmaudit.calibration.reader import StreamingDataReader
from vfmaudit.data import sample_items
from vfmaudit.errors import VfmauditError
from vfmaudit.artefact import read_onnx_info
from vfmaudit.export import export_onnx
from vfmaudit.models.preprocess import PreprocessSpec

from cli_runner import run_cli as vfmaudit


SPEC = PreprocessSpec(size=(64, 64), resize=64)


def test_calibration_set_is_deterministic_bounded_stratified_and_cached(tmp_path):
    items = sample_items(6)
    a = build_calibration_set(items, SPEC, size=40, seed=1, cache_dir=tmp_path / "c1")
    b = build_calibration_set(items, SPEC, size=40, seed=1, cache_dir=tmp_path / "c2")  # built again elsewhere
    assert not a.cached and not b.cached and len(a) == 40 and a.images.shape == (40, 64, 64, 3)
    assert np.array_equal(np.asarray(a.images), np.asarray(b.images)) and a.index == b.index
    again = build_calibration_set(items, SPEC, size=40, seed=1, cache_dir=tmp_path / "c1")
    assert again.cached and np.array_equal(np.asarray(again.images), np.asarray(a.images))
    other = build_calibration_set(items, SPEC, size=40, seed=2, cache_dir=tmp_path / "c1")
    assert not np.array_equal(np.asarray(other.images), np.asarray(a.images))
    edits = Counter(r["edit"] for r in a.index)
    assert set(edits) == {"clean", "jpeg", "brightness", "contrast", "saturation", "gaussian_blur",
                          "gaussian_noise", "resize"}
    assert max(edits.values()) - min(edits.values()) <= 3  # stratified, not clustered
    assert Counter(r["source"] for r in a.index).most_common()[-1][1] >= 40 // 6  # every image used
    # bounded by the number of distinct (image, variant) pairs too
    small = build_calibration_set(items[:2], SPEC, size=10_000, seed=1, cache_dir=tmp_path / "c1")
    assert len(small) == 2 * (3 + 7 * 3)  # clean weighs as one family: 3 slots
    clean = build_calibration_set(items, SPEC, size=40, perturbed=False, cache_dir=tmp_path / "c1")
    assert {r["edit"] for r in clean.index} == {"clean"} and len(clean) == 6


def test_held_out_split_is_disjoint_and_deterministic():
    items = sample_items()
    calib, held = split_held_out(items, 0.25, seed=0)
    assert len(held) == 3 and len(calib) == 9
    assert not {i.id for i in calib} & {i.id for i in held}
    assert [i.id for i in split_held_out(items, 0.25, seed=0)[1]] == [i.id for i in held]
    with pytest.raises(VfmauditError):
        split_held_out(items[:1])


def test_reader_streams_in_ranges(tmp_path):
    calib = build_calibration_set(sample_items(3), SPEC, size=21, cache_dir=tmp_path)
    info = read_onnx_info_stub()
    reader = StreamingDataReader(calib, info, "x", batch_size=4)
    assert len(reader) == 6
    sizes = []
    while (b := reader.get_next()) is not None:
        sizes.append(b["x"].shape[0])
    assert sizes == [4, 4, 4, 4, 4, 1] and b is None
    reader.set_range(2, 4)
    got = [reader.get_next()["x"].shape[0], reader.get_next()["x"].shape[0], reader.get_next()]
    assert got == [4, 4, None]
    assert _stride(6, 4) == 3 and _stride(7, 4) == 1 and _stride(8, 4) == 4


def read_onnx_info_stub():
    from vfmaudit.artefact import ArtefactInfo

    return ArtefactInfo(spec="timm:resnet18", weights={}, preprocess=SPEC, embedding_dim=8)


@pytest.fixture(scope="module")
def small_fp32(tmp_path_factory):
    """timm's own tiny test ResNet (160 px, 15 convolutions): the quantizer's paths at a tenth of resnet18's cost."""
    return export_onnx("timm:test_resnet", tmp_path_factory.mktemp("fp32") / "r18.onnx", exporter="torchscript").path


@pytest.fixture(scope="module")
def resnet18_fp32(tmp_path_factory):
    """Large enough activations that keeping every calibration batch would show in the peak memory."""
    return export_onnx("timm:resnet18", tmp_path_factory.mktemp("fp32") / "r18.onnx", exporter="torchscript").path


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_quantized_file_has_quantized_operators(tmp_path, small_fp32, method):
    calib = build_calibration_set(sample_items(4), read_onnx_info(small_fp32).preprocess, size=16, cache_dir=tmp_path)
    q = quantize_onnx(small_fp32, tmp_path / "q.onnx", calib, method=method, cache_dir=tmp_path)
    ops = quantized_op_counts(q.path)
    assert ops.get("QuantizeLinear", 0) > 10 and ops.get("DequantizeLinear", 0) > ops["QuantizeLinear"]
    assert read_onnx_info(q.path).precision == "int8"
    assert q.peak_memory_mb > 0
    # per-channel weights: some DequantizeLinear has a vector scale
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(q.path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    scales = [inits[n.input[1]] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[1] in inits]
    assert any(s.ndim == 1 and s.size > 1 for s in scales)


def test_calibrate_cli_accepts_int8_and_writes_reports(tmp_path, small_fp32):
    res = vfmaudit("calibrate", small_fp32, "--out", tmp_path / "r18.int8.onnx", "--size", "64",
                   "--cache-dir", tmp_path / "cache", "--json", tmp_path / "cal.json")
    assert res.returncode == 0, res.stderr + res.stdout
    rep = json.loads((tmp_path / "cal.json").read_text())
    cos = rep["acceptance"]["cosine_to_fp32"]
    for part in ("all", "clean", "perturbed"):
        assert {"min", "p5", "median", "mean"} <= set(cos[part])
        assert cos[part]["min"] <= cos[part]["p5"] <= cos[part]["median"]
    assert cos["all"]["median"] >= 0.98 and rep["passed"] is True
    assert set(rep["acceptance"]["robustness_profile"]) >= {"jpeg", "gaussian_blur"}
    for fam in rep["acceptance"]["robustness_profile"].values():
        assert fam["fp32"]["mean"] >= 0 and fam["int8"]["mean"] >= 0
    held = set(rep["acceptance"]["held_out_images"])
    assert held and rep["calibration"]["source_images"] + len(held) == 12
    assert rep["acceptance"]["speed"]["int8_over_fp32"] > 0
    page = (tmp_path / "r18.int8.html").read_text()  # the compare view: fp32 as A, INT8 as B
    assert "fp32 (A) against INT8 (B)" in page and page.count('<th scope="row">') >= 6 + 3
    # 3 held-out images are too few for overlap@5: the page says why instead of printing nan
    assert rep["acceptance"]["agreement"]["overlap@5"] is None and len(held) == 3
    assert "overlap@5 <span class=\"muted\">– (needs more than 5 held-out images, has 3)" in page
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)
    assert "Verdict: <b>PASS</b>: median cosine to fp32" in page
    assert_acceptance_recomputes(rep, small_fp32, tmp_path / "r18.int8.onnx")
    # a second build reuses the cached calibration set
    again = vfmaudit("calibrate", small_fp32, "--out", tmp_path / "again.onnx", "--size", "64",
                     "--cache-dir", tmp_path / "cache", "--json", tmp_path / "cal2.json")
    assert again.returncode == 0 and json.loads((tmp_path / "cal2.json").read_text())["calibration"]["cached"]
    # an impossible bar fails with exit 1
    strict = vfmaudit("calibrate", small_fp32, "--out", tmp_path / "s.onnx", "--size", "64",
                      "--cache-dir", tmp_path / "cache", "--min-median-cosine", "1.01")
    assert strict.returncode == 1 and "acceptance FAIL" in strict.stdout


def assert_acceptance_recomputes(rep: dict, fp32_path, int8_path) -> None:
    """The acceptance figures again, from the two saved files run in plain onnxruntime sessions on the
    report's held-out images (clean and each perturbed variant it lists): per image and in summary."""
    import onnxruntime as ort

    from vfmaudit import perturb
    from vfmaudit.data.sources import item_for_id

    info = read_onnx_info(fp32_path)
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32_path, int8_path)]
    ids = rep["acceptance"]["held_out_images"]
    base = np.stack([info.preprocess.prepare(item_for_id(i).load()) for i in ids])
    rows = rep["acceptance"]["per_image"]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    assert variants[0] == "clean" and len(variants) > 1
    cosines = []
    for variant in variants:
        if variant == "clean":
            images = base
        else:
            fam, shown = variant.rsplit("@", 1)  # the name rounds the level: the profile has it exactly
            [level] = [lv for lv in rep["acceptance"]["robustness_profile"][fam]["levels"] if f"{lv:g}" == shown]
            images = perturb.apply(base, fam, level, seed=rep["calibration"]["seed"])
        x = info.preprocess.normalize(images)
        e32, e8 = (s.run(None, {s.get_inputs()[0].name: x})[0].astype(np.float64) for s in sessions)
        e32 /= np.linalg.norm(e32, axis=1, keepdims=True)
        e8 /= np.linalg.norm(e8, axis=1, keepdims=True)
        cos = np.sum(e32 * e8, axis=1)
        got = {r["image"]: r["cosine"] for r in rows if r["variant"] == variant}
        assert np.allclose([got[i] for i in ids], cos, rtol=0, atol=1e-6), variant
        cosines.append(cos)
    everything = np.concatenate(cosines)
    summary = rep["acceptance"]["cosine_to_fp32"]["all"]
    assert summary["n"] == len(everything)
    for key, value in (("min", everything.min()), ("median", np.median(everything)), ("mean", everything.mean()),
                       ("p5", np.percentile(everything, 5))):
        assert summary[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("case,needle", [
    ("no_images", "holds no files"),
    ("not_onnx", "not a readable ONNX"),
    ("already_quantized", "already quantized"),
    ("bad_method", "unknown calibration method"),
    ("missing", "not found"),
])
def test_bad_input_exits_2(tmp_path, small_fp32, case, needle):
    args = ["calibrate", small_fp32, "--out", tmp_path / "o.onnx", "--cache-dir", tmp_path / "c", "--size", "8"]
    if case == "no_images":
        (tmp_path / "empty").mkdir()
        args += ["--images", tmp_path / "empty"]
    elif case == "not_onnx":
        (tmp_path / "x.onnx").write_text("nope")
        args[1] = tmp_path / "x.onnx"
    elif case == "already_quantized":
        calib = build_calibration_set(sample_items(2), read_onnx_info(small_fp32).preprocess, size=8, cache_dir=tmp_path)
        quantize_onnx(small_fp32, tmp_path / "q.onnx", calib, cache_dir=tmp_path)
        args[1] = tmp_path / "q.onnx"
    elif case == "bad_method":
        args += ["--method", "magic"]
    else:
        args[1] = tmp_path / "missing.onnx"
    res = vfmaudit(*args)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and "calibrating" not in ln]
    assert res.returncode == 2, res.stderr
    assert lines[-1].startswith("error:") and needle in lines[-1], res.stderr


_MEASURE_GROWTH = """
import sys
from pathlib import Path
from vfmaudit.artefact import read_onnx_info
from vfmaudit.calibration import build_calibration_set, quantize_onnx
from vfmaudit.data import sample_items
fp32, size, cache = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
calib = build_calibration_set(sample_items(8), read_onnx_info(fp32).preprocess, size=size, cache_dir=cache)
assert len(calib) == size, len(calib)
q = quantize_onnx(fp32, cache / f"q{size}.onnx", calib, method="entropy", batch_size=4, batches_in_memory=4,
                 cache_dir=cache)
print(q.memory_growth_mb)
"""


def test_peak_memory_stays_flat_as_the_calibration_set_grows(tmp_path, resnet18_fp32):
    """README: activations are collected a few batches at a time, so peak memory does not grow with the
    set (ORT's entropy calibrator alone keeps every batch). Memory holds 4 batches of 4 images at most:
    16 images are 4 batches, 48 are 12 (three times the activations if all were kept). Each size in a
    fresh process, so one run's heap cannot hide the other's."""
    import subprocess
    import sys

    growth = {}
    for size in (16, 48):
        res = subprocess.run([sys.executable, "-c", _MEASURE_GROWTH, str(resnet18_fp32), str(size), str(tmp_path)],
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        growth[size] = float(res.stdout.split()[-1])
    # flat: at most a little above the small set's growth (not the 3x of keeping every batch)
    assert growth[48] <= 1.25 * growth[16] + 40, growth


def test_vit_quantization_uint8_activations_float_attention_cached_ranges_and_clean_only(tmp_path, monkeypatch):
    """README: UINT8 activations and INT8 weights; attention's activation x activation MatMuls stay float;
    the tensor ranges are cached (a second build never runs the calibrator); --clean-only sets hold
    clean images only."""
    import onnx
    from onnx import TensorProto, numpy_helper

    from vfmaudit.calibration import reader as reader_module
    from vfmaudit.calibration.ort_quant import activation_matmuls, preprocess_for_quantization

    import timm

    vit = export_onnx("timm:test_vit", tmp_path / "vit.onnx", exporter="torchscript").path
    depth = len(timm.create_model("test_vit").blocks)
    info = read_onnx_info(vit)
    clean = build_calibration_set(sample_items(4), info.preprocess, size=8, perturbed=False, cache_dir=tmp_path)
    assert {r["edit"] for r in clean.index} == {"clean"}
    q = quantize_onnx(vit, tmp_path / "q.onnx", clean, batch_size=4, cache_dir=tmp_path)
    model = onnx.load(str(q.path))
    inits = {i.name: i for i in model.graph.initializer}
    weight_zp, act_zp = set(), set()
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits:
            (weight_zp if n.input[0] in inits else act_zp).add(inits[n.input[2]].data_type)
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:  # a weight stored quantized
            weight_zp.add(inits[n.input[0]].data_type)
    # weights INT8 (biases INT32, as QDQ stores them)
    assert act_zp == {TensorProto.UINT8} and TensorProto.INT8 in weight_zp <= {TensorProto.INT8, TensorProto.INT32}
    attention = activation_matmuls(preprocess_for_quantization(vit, tmp_path / "pre.onnx"))
    assert depth >= 2 and len(attention) == 2 * depth  # QK^T and attn*V in each block
    dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    for n in model.graph.node:
        if n.name in attention:
            assert not set(n.input) & dequantized, n.name  # both inputs float
    # a second build with the same file, set and method reads the cached ranges: no calibration batch is read
    monkeypatch.setattr(reader_module.StreamingDataReader, "get_next",
                        lambda self: pytest.fail("the calibrator ran although the ranges were cached"))
    again = quantize_onnx(vit, tmp_path / "q2.onnx", clean, batch_size=4, cache_dir=tmp_path)
    first = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    second = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(again.path)).graph.initializer}
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)


def test_the_imagenet_c_pixel_mode_is_part_of_the_calibration_cache_key(tmp_path):
    """An ImageNet-C preset calibrated in scale mode is another set than in imagenet mode: not reused."""
    from vfmaudit.perturb.families.imagenet_c import set_options

    items = sample_items(2)
    common = dict(size=6, seed=0, cache_dir=tmp_path / "c", perturbations="imagenet_c_defocus_blur")
    try:
        set_options("imagenet")
        a = build_calibration_set(items, SPEC, **common)
        set_options("scale")
        b = build_calibration_set(items, SPEC, **common)
    finally:
        set_options("imagenet")
    assert not b.cached and a.path != b.path
    assert not np.array_equal(np.asarray(a.images), np.asarray(b.images))
