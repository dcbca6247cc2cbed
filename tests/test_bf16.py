"""bf16 artefacts: bit conversion, the converted graph, and the CPU emulation against independent bf16 arithmetic."""

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from cli_runner import run_cli
from vfmaudit.artefact import read_onnx_info
from vfmaudit.artefact.bf16 import bf16_bits_to_float32, emulate_bf16, float32_to_bf16_bits
from vfmaudit.export.precision import convert_precision

F32, BF16 = onnx.TensorProto.FLOAT, onnx.TensorProto.BFLOAT16


@pytest.fixture(scope="module")
def r18_pair(tmp_path_factory):
    """timm resnet18: its fp32 export and the bf16 conversion of a copy."""
    from vfmaudit import export_onnx

    d = tmp_path_factory.mktemp("bf16")
    fp32 = export_onnx("timm:resnet18", d / "r18.onnx", seed=0).path
    shutil.copy(fp32, d / "r18_bf16.onnx")
    return fp32, convert_precision(d / "r18_bf16.onnx", "bf16")


@pytest.fixture(scope="module")
def vit_bf16(tmp_path_factory):
    d = tmp_path_factory.mktemp("vitbf16")
    res = run_cli("export", "onnx", "-m", "openclip:ViT-S-32", "--precision", "bf16", "--exporter", "torchscript", "--out", d / "v.onnx",
                  "--json", d / "parity.json")
    return d, res


def _types(path) -> dict[str, int]:
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def test_bits_round_like_torch():
    """Round to nearest, ties to even, overflow to inf, NaN kept: torch's float32 -> bfloat16 is the reference."""
    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.standard_normal(20000).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, 20000),
        np.array([0.0, -0.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, -(1.0 + 2 ** -8), 3.4028235e38, -3.4028235e38,
                  1e-40, -1e-40, 1.17549435e-38, np.inf, -np.inf], np.float32)])
    ours = float32_to_bf16_bits(values)
    theirs = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(ours, theirs)
    widened = bf16_bits_to_float32(ours)
    assert np.array_equal(widened, torch.from_numpy(values).to(torch.bfloat16).float().numpy())
    assert np.isnan(bf16_bits_to_float32(float32_to_bf16_bits(np.array([np.nan], np.float32))))[0]


def test_converted_graph_is_typed_bf16_with_float32_islands_and_io(r18_pair):
    fp32, bf16 = r18_pair
    model = onnx.load(str(bf16))
    onnx.checker.check_model(model, full_check=True)  # strict type inference: every op accepts its types
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 22
    assert model.graph.input[0].type.tensor_type.elem_type == F32
    assert model.graph.output[0].type.tensor_type.elem_type == F32
    types = _types(bf16)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 20 and all(types[i] == BF16 for n in convs for i in n.input)
    reductions = [n for n in model.graph.node if n.op_type in ("ReduceMean", "ReduceL2")]
    assert reductions and all(types[n.input[0]] == F32 and types[n.output[0]] == F32 for n in reductions)
    assert not [t for t in model.graph.initializer if t.data_type == F32 and len(t.dims) == 4]  # no fp32 kernels left
    assert bf16.stat().st_size < 0.55 * fp32.stat().st_size
    info = read_onnx_info(bf16)
    record = info.extra["precision_conversion"]
    assert info.precision == "bf16" and record["bf16_nodes"] >= 40 and record["float32_ops"] == ["ReduceL2", "ReduceMean"]
    with pytest.raises(Exception, match="is bf16; convert its fp32 export"):
        convert_precision(bf16, "bf16")


def test_every_allow_listed_op_takes_bf16_where_the_converter_puts_it():
    """ONNX's own operator schemas at opset 22: each input the converter retypes admits bfloat16."""
    from vfmaudit.export.bf16 import ALL, BF16_OPS, BF16_OPSET

    for op, spec in BF16_OPS.items():
        schema = onnx.defs.get_schema(op, BF16_OPSET)
        allowed = {c.type_param_str: c.allowed_type_strs for c in schema.type_constraints}
        positions = range(len(schema.inputs)) if spec is ALL else spec
        for i in positions:
            formal = schema.inputs[min(i, len(schema.inputs) - 1)]  # variadic inputs repeat the last formal
            assert "tensor(bfloat16)" in allowed.get(formal.type_str, [formal.type_str]), (op, i)


@pytest.mark.parametrize("which", ["r18", "vit"])
def test_emulation_is_exactly_what_bf16_arithmetic_gives(which, r18_pair, vit_bf16):
    """onnx's reference evaluator runs the bf16 graph itself (numpy with ml_dtypes' bfloat16): the emulated
    float32 graph gives the same bits in the same evaluator, and onnxruntime's run of it stays close."""
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    path = r18_pair[1] if which == "r18" else vit_bf16[0] / "v.onnx"
    model = onnx.load(str(path))
    x = np.random.default_rng(1).standard_normal((2, 3, 224, 224)).astype(np.float32)
    feed = {model.graph.input[0].name: x}
    native = np.asarray(ReferenceEvaluator(model).run(None, feed)[0], np.float32)
    emulated_model = emulate_bf16(model)
    assert not [t for t in emulated_model.graph.initializer if t.data_type == BF16]
    emulated = ReferenceEvaluator(emulated_model).run(None, feed)[0]
    if which == "r18":
        assert np.array_equal(native, emulated)
    else:
        # ViT's attention projections are biased Gemms on transposed weights: the evaluator rounds the
        # product and the bias separately (bf16 kernels fuse the bias into one rounding), and numpy's
        # dot of strided bfloat16 arrays accumulates in a version-dependent order (bit-exact with
        # numpy 2.3, not with 2.4.6 / ml_dtypes 0.7). The emulation stays within bf16 precision of it.
        cos_native = np.sum(native * emulated, axis=1) / np.linalg.norm(native, axis=1) / np.linalg.norm(emulated, axis=1)
        assert cos_native.min() > 0.99995 and np.abs(native - emulated).max() < 4e-3
    session = ort.InferenceSession(emulated_model.SerializeToString(), providers=["CPUExecutionProvider"])
    on_ort = session.run(None, feed)[0]
    cos = np.sum(native * on_ort, axis=1) / np.linalg.norm(native, axis=1) / np.linalg.norm(on_ort, axis=1)
    assert cos.min() > 0.9999


def test_bf16_export_passes_export_check_at_the_bf16_threshold(vit_bf16):
    d, res = vit_bf16
    assert res.returncode == 0, res.stderr
    parity = json.loads((d / "parity.json").read_text())
    assert parity["passed"] and parity["precision"] == "bf16" and parity["min_cosine_required"] == 0.995
    assert "emulated" in parity["artefact_info"]["emulation"]
    # the rounding is real: further from torch than an fp32 export (~1e-7), as close as bf16 allows
    assert 0.995 < parity["summary"]["min_cosine"] < 0.99999
    types = _types(d / "v.onnx")
    model = onnx.load(str(d / "v.onnx"))
    by_op = lambda op: [n for n in model.graph.node if n.op_type == op]  # noqa: E731
    assert by_op("LayerNormalization") and all(types[n.input[0]] == F32 for n in by_op("LayerNormalization"))
    assert by_op("Softmax") and all(types[n.input[0]] == F32 for n in by_op("Softmax"))
    assert all(types[i] == BF16 for n in by_op("MatMul") + by_op("Gemm") for i in n.input[:2])
    check = run_cli("export", "check", d / "v.onnx")
    assert check.returncode == 0 and "bf16" in check.stdout and "emulated" in check.stdout


def test_bf16_error_is_of_the_order_torch_bf16_gives(vit_bf16):
    """Independent of ONNX: the torch model in bfloat16 on the same images (torch's CPU kernels also take bf16
    in and out and work in float32 inside). Both errors come from the same rounding, so they agree within a
    small factor: an emulation that did not round would be orders of magnitude below, a wrong graph far above."""
    from vfmaudit.data import sample_items
    from vfmaudit.models import build_model
    from vfmaudit.runtime import create_encoder

    d, _ = vit_bf16
    built = build_model("openclip:ViT-S-32", seed=0)
    images = np.stack([built.preprocess.prepare(it.load()) for it in sample_items()[:6]])
    x = torch.from_numpy(built.preprocess.normalize(images))
    with torch.no_grad():
        ref = built.module.eval()(x).numpy()
        torch_bf16 = built.module.to(torch.bfloat16)(x.to(torch.bfloat16)).float().numpy()
    ours = create_encoder("onnx", model=str(d / "v.onnx")).encode(images)

    def loss(e):
        return float(np.mean(1 - np.sum(e * ref, 1) / np.linalg.norm(e, axis=1) / np.linalg.norm(ref, axis=1)))

    assert 0.25 < loss(ours) / loss(torch_bf16) < 4


def test_bench_skips_an_emulated_bf16_run_with_the_reason(r18_pair, tmp_path):
    res = run_cli("bench", "encoder", "--model", r18_pair[1], "--backends", "onnx", "--precision", "bf16",
                  "--batch-sizes", "2", "--iterations", "1", "--json", tmp_path / "b.json")
    assert res.returncode == 2 and "no configuration could run here" in res.stderr  # nothing was measured
    row = json.loads((tmp_path / "b.json").read_text())["rows"][0]
    assert row["status"] == "skipped" and "emulation" in row["reason"] and "throughput" not in row


def test_torchscript_export_with_external_data_converts_to_bf16(tmp_path, monkeypatch):
    """opset 17 (TorchScript) is moved to 22 by onnx's converter; weights stay in an external file."""
    from vfmaudit import check_parity, export_onnx
    from vfmaudit.export import onnx_export

    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)
    res = export_onnx("timm:resnet18", tmp_path / "big.onnx", exporter="torchscript", precision="bf16")
    model = onnx.load(str(res.path), load_external_data=False)
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert res.external_data and len(external) > 10 and all(t.data_type == BF16 for t in external)
    assert (tmp_path / "big.onnx").stat().st_size < 1_000_000
    assert check_parity(res.path, max_images=2).passed


def test_calibrating_a_bf16_file_is_one_line(r18_pair, tmp_path):
    res = run_cli("calibrate", r18_pair[1], "--out", tmp_path / "x.onnx")
    assert res.returncode == 2 and "is bf16; INT8 quantization starts from float32" in res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "x.onnx").exists()


def test_optimize_cpu_with_bf16_is_refused_before_any_work(tmp_path):
    res = run_cli("export", "onnx", "-m", "timm:resnet18", "--precision", "bf16", "--optimize-cpu",
                  "--out", tmp_path / "m.onnx")
    assert res.returncode == 2 and "--optimize-cpu" in res.stderr and "no bf16 kernels" in res.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_baked_preprocessing_converts_and_audits_like_the_fp32_file(tmp_path):
    """uint8 NHWC input (a Cast into the graph) through the converter; the audit runs on the emulation."""
    from vfmaudit import check_parity, export_onnx

    res = export_onnx("timm:resnet18", tmp_path / "baked.onnx", bake_preprocess=True, precision="bf16",
                      exporter="torchscript")
    model = onnx.load(str(res.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert check_parity(res.path, max_images=2).passed
    audit = run_cli("audit", "--model", res.path, "-p", "jpeg", "--levels", "2", "--out", tmp_path / "a")
    assert audit.returncode == 0, audit.stderr
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["backend"]["precision"] == "bf16" and "emulated" in report["backend"]["emulation"]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_export_convert_writes_a_new_checked_file(r18_pair, tmp_path, precision):
    fp32 = r18_pair[0]
    before = fp32.read_bytes()
    res = run_cli("export", "convert", fp32, "--precision", precision, "--out", tmp_path / "m.onnx",
                  "--json", tmp_path / "m.json")
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["precision"] == precision and data["parity"]["passed"] and data["parity"]["precision"] == precision
    assert data["conversion"]["io"] == "float32" and read_onnx_info(tmp_path / "m.onnx").precision == precision
    assert fp32.read_bytes() == before  # the fp32 file is left as it was
    assert "Warning" not in res.stderr  # the fp16 converter's per-tensor warnings are counted, not printed
    assert ("fp16_range_clamps" in data["conversion"]) == (precision == "fp16")


@pytest.mark.parametrize("args, needle", [
    (["--out", "{fp32}"], "should be a new .onnx file"),
    (["--out", "{tmp}/x.onnx", "--precision", "int8"], "--precision must be fp16 or bf16"),
    (["--out", "{tmp}/x.onnx", "--precision", "bf16", "{bf16}"], "is bf16; convert its fp32 export"),
])
def test_export_convert_bad_input_is_one_line(r18_pair, tmp_path, args, needle):
    fp32, bf16 = r18_pair
    fill = lambda a: a.format(fp32=fp32, bf16=bf16, tmp=tmp_path)  # noqa: E731
    source = [fill(a) for a in args if a == "{bf16}"] or [str(fp32)]
    res = run_cli("export", "convert", *source, *[fill(a) for a in args if a != "{bf16}"])
    assert res.returncode == 2 and needle in res.stderr and res.stderr.count("\n") == 1


def test_the_graph_not_the_metadata_decides(r18_pair, tmp_path):
    """A bf16 graph whose metadata says fp32 (edited by another tool) is still refused for conversion,
    and still runs through the emulation."""
    from vfmaudit.artefact import write_onnx_info
    from vfmaudit.runtime import create_encoder

    lying = tmp_path / "lying.onnx"
    shutil.copy(r18_pair[1], lying)
    info = read_onnx_info(lying)
    info.precision = "fp32"
    write_onnx_info(lying, info)
    with pytest.raises(Exception, match="is bf16; convert its fp32 export"):
        convert_precision(lying, "fp16", tmp_path / "x.onnx")
    assert "emulated" in create_encoder("onnx", model=str(lying)).describe()["emulation"]


def test_torch_backend_runs_bf16_on_cpu():
    """The torch model itself in bfloat16 (oneDNN kernels): close to fp32, not equal to it."""
    from vfmaudit.data import sample_items
    from vfmaudit.runtime import create_encoder

    images = np.stack([it.load()[:200, :200] for it in sample_items()[:3]])
    fp32 = create_encoder("torch", model="timm:resnet18", seed=0).encode(images)
    enc = create_encoder("torch", model="timm:resnet18", seed=0, precision="bf16")
    bf16 = enc.encode(images)
    cos = np.sum(fp32 * bf16, 1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert enc.describe()["precision"] == "bf16" and bf16.dtype == np.float32
    assert cos.min() > 0.999 and not np.array_equal(fp32, bf16)


def test_an_fp16_conversion_that_onnxconverter_common_gets_wrong_is_one_line_and_leaves_no_file(tmp_path):
    """onnxconverter-common fails on a TorchScript export of a ViT (its Cast clean-up crashes on a Cast
    feeding several nodes; without it, Identity nodes over weights get contradicting types): the
    conversion is redone without the clean-up, onnx's strict checker finds the bad types, and the
    user gets one line and no half-made file, not an internal error."""
    from vfmaudit import export_onnx

    ts = export_onnx("timm:test_vit", tmp_path / "ts.onnx", exporter="torchscript", seed=0).path
    res = run_cli("export", "convert", ts, "-o", tmp_path / "ts16.onnx", "--precision", "fp16", "--no-check")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "onnxconverter-common made an invalid fp16 graph" in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "ts16.onnx").exists()
