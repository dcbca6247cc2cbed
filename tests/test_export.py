"""Export to ONNX, parity with torch, the onnx backend, and bad artefacts."""

import json

import numpy as np
import pytest

from vfmaudit.errors import VfmauditError
from vfmaudit.artefact import read_onnx_info
from vfmaudit.export import check_parity, export_onnx
from vfmaudit.runtime import create_encoder

from cli_runner import run_cli as vfmaudit


@pytest.fixture(scope="module")
def vit_onnx(tmp_path_factory):
    """OpenCLIP ViT through the default exporter path (dynamo, TorchScript fallback)."""
    return export_onnx("openclip:ViT-S-32", tmp_path_factory.mktemp("vit") / "vit.onnx", seed=0)


@pytest.fixture(scope="module")
def vit_baked(tmp_path_factory):
    return export_onnx("openclip:ViT-S-32", tmp_path_factory.mktemp("vitb") / "vit_u8.onnx", seed=0,
                       bake_preprocess=True, exporter="torchscript")


@pytest.mark.parametrize("spec,exporter", [
    ("openclip:RN50", "torchscript"),
    ("timm:resnet18", "auto"),
    ("timm:vit_tiny_patch16_224", "torchscript"),
])
def test_export_and_parity_across_architectures(tmp_path, spec, exporter):
    res = export_onnx(spec, tmp_path / "m.onnx", seed=1, exporter=exporter)
    assert res.exporter == ("dynamo" if exporter == "auto" else exporter)  # no silent fallback
    report = check_parity(res.path, max_images=4)
    assert report.passed, report.summary()
    assert report.summary()["min_cosine"] >= 0.9999
    assert report.reference["model"] == spec and report.reference["seed"] == 1  # rebuilt from metadata
    assert len(report.rows) == 4 * 6  # clean + 5 perturbed variants per image


def test_default_exporter_is_dynamo_without_fallback(vit_onnx):
    """The default path must really be dynamo: a silent TorchScript fallback hides a missing dependency."""
    assert vit_onnx.exporter == "dynamo", vit_onnx.info.extra.get("fallback_reasons")
    assert read_onnx_info(vit_onnx.path).exporter == "dynamo"
    assert vit_onnx.info.extra["fallback_reasons"] == []


def test_metadata_checker_and_dynamic_batch(vit_onnx, photos):
    import onnx

    info = read_onnx_info(vit_onnx.path)
    assert info.spec == "openclip:ViT-S-32" and info.embedding_dim == 384
    assert info.weights["kind"] == "random" and info.weights["seed"] == 0
    assert info.preprocess.size == (224, 224) and info.vfmaudit_version
    onnx.checker.check_model(str(vit_onnx.path))
    model = onnx.load(str(vit_onnx.path))
    assert model.opset_import[0].version >= 17
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value  # symbolic batch axis

    enc = create_encoder("onnx", model=str(vit_onnx.path), batch_size=64)
    ref = create_encoder("torch", model="openclip:ViT-S-32", seed=0)
    rng = np.random.default_rng(0)
    for n in (1, 5, 32):  # exported at batch 2
        x = rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)
        a, r = enc.encode(x), ref.encode(x)
        assert a.shape == (n, 384)
        assert np.min(np.sum(a * r, axis=1)) > 0.9999
    assert enc.describe()["providers"][-1] == "CPUExecutionProvider"


def test_baked_preprocessing_equals_python_preprocessing(vit_baked, vit_onnx, photos):
    info = read_onnx_info(vit_baked.path)
    assert info.input_format == "uint8_nhwc"
    baked = create_encoder("onnx", model=str(vit_baked.path))
    plain = create_encoder("onnx", model=str(vit_onnx.path))
    a, b = baked.encode(list(photos)), plain.encode(list(photos))
    assert np.abs(a - b).max() < 1e-5
    assert baked.session.get_inputs()[0].type == "tensor(uint8)"
    assert check_parity(vit_baked.path, max_images=3).passed


def test_audit_on_onnx_equals_torch_audit(tmp_path, vit_onnx):
    from vfmaudit import AuditConfig, run_audit

    common = dict(perturbations="jpeg,gaussian_noise", levels=2, batch_size=8)  # a deterministic and a seeded edit
    run_audit(AuditConfig(out=str(tmp_path / "t"), model="openclip:ViT-S-32", **common))
    onnx_res = run_audit(AuditConfig(out=str(tmp_path / "o"), model=str(vit_onnx.path), **common))
    assert onnx_res.report["backend"]["backend"] == "onnx"
    import csv

    def load(d):
        with open(d / "per_image.csv") as f:
            return {(r["image"], r["family"]): r for r in csv.DictReader(f)}

    t, o = load(tmp_path / "t"), load(tmp_path / "o")
    assert t.keys() == o.keys() and len(t) == 12 * 2
    for k in t:
        for m in ("cosine", "euclidean", "divergence_radius"):
            assert abs(float(t[k][m]) - float(o[k][m])) < 1e-5, (k, m)  # parity is ~1e-7


def test_cpu_optimised_file_keeps_embeddings(tmp_path, vit_onnx):
    from vfmaudit.export.cpu_optimize import optimize_for_cpu

    opt = optimize_for_cpu(vit_onnx.path, tmp_path / "vit.cpu.onnx")
    assert opt.model_type == "vit" and opt.fusions.get("LayerNormalization", 0) > 0
    assert read_onnx_info(opt.path).extra["optimized_for"] == "onnxruntime-cpu"
    assert check_parity(opt.path, max_images=3).summary()["min_cosine"] >= 0.9999


def test_cli_export_check_and_json(tmp_path):
    res = vfmaudit("export", "onnx", "--model", "timm:test_resnet", "--out", tmp_path / "r18.onnx",
                   "--exporter", "torchscript", "--json", tmp_path / "parity.json")
    assert res.returncode == 0, res.stderr
    assert "parity PASS" in res.stdout
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["passed"] is True and report["precision"] == "fp32"
    assert report["min_cosine_required"] == 0.9999
    assert {"min_cosine", "mean_cosine", "max_abs_diff", "max_rel_diff", "would_pass"} <= set(report["summary"])
    assert {"image", "variant", "cosine", "max_abs_diff", "max_rel_diff"} <= set(report["per_image"][0])
    assert report["artefact_info"]["providers"] == ["CPUExecutionProvider"]

    # another model's weights as the reference: the check fails with exit 1 and says so
    bad = vfmaudit("export", "check", tmp_path / "r18.onnx", "--seed", "7")
    assert bad.returncode == 1 and "parity FAIL" in bad.stdout
    # a threshold of -1 passes anything
    lenient = vfmaudit("export", "check", tmp_path / "r18.onnx", "--seed", "7", "--min-cosine", "-1")
    assert lenient.returncode == 0


def _tiny_onnx(path, input_type, shape, with_metadata=True):
    import onnx
    from onnx import helper

    from vfmaudit.artefact import ArtefactInfo
    from vfmaudit.models.preprocess import PreprocessSpec

    inp = helper.make_tensor_value_info("x", input_type, shape)
    out = helper.make_tensor_value_info("y", input_type, shape)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if with_metadata:
        info = ArtefactInfo(spec="timm:resnet18", weights={"kind": "random", "seed": 0},
                            preprocess=PreprocessSpec(size=(28, 28), resize=28), embedding_dim=8)
        for k, v in info.to_props().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("case,needle", [
    ("missing", "not found"),
    ("not_onnx", "not a readable ONNX"),
    ("wrong_shape", "shape"),
    ("wrong_dtype", "tensor(int64)"),
    ("no_metadata", "no vfmaudit metadata"),
])
def test_bad_artefacts_give_one_line_and_exit_2(tmp_path, case, needle):
    from onnx import TensorProto

    path = tmp_path / "m.onnx"
    if case == "not_onnx":
        path.write_text("this is not a model")
    elif case == "wrong_shape":
        _tiny_onnx(path, TensorProto.FLOAT, ["N", 1, 28, 28])
    elif case == "wrong_dtype":
        _tiny_onnx(path, TensorProto.INT64, ["N", 3, 28, 28])
    elif case == "no_metadata":
        _tiny_onnx(path, TensorProto.FLOAT, ["N", 3, 28, 28], with_metadata=False)
    for cmd in (["export", "check", path], ["audit", "--model", path, "-p", "jpeg", "--levels", "2",
                                            "--out", tmp_path / "o"]):
        res = vfmaudit(*cmd)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 2, res.stderr
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.stderr


def test_engine_from_another_tensorrt_version_is_a_clear_error(tmp_path, vit_onnx):
    from vfmaudit.artefact import check_compatible, write_sidecar

    with pytest.raises(VfmauditError, match="built with TensorRT 8.6.1.*this is TensorRT 10.5.0.*rebuild"):
        check_compatible({"tensorrt_version": "8.6.1", "gpu": "NVIDIA H100"}, "10.5.0", "NVIDIA H100")
    with pytest.raises(VfmauditError, match="built for NVIDIA A10.*this GPU is NVIDIA H100"):
        check_compatible({"tensorrt_version": "10.5.0", "gpu": "NVIDIA A10"}, "10.5.0", "NVIDIA H100")
    check_compatible({"tensorrt_version": "10.5.0", "gpu": "NVIDIA H100"}, "10.5.0", "NVIDIA H100")

    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\x00" * 64)
    # valid metadata (as export tensorrt copies it from the ONNX source), so the run gets past it to the version
    props = read_onnx_info(vit_onnx.path).to_props()
    write_sidecar(engine, {"tensorrt_version": "0.0.1", "gpu": "none", "vfmaudit": props})
    res = vfmaudit("audit", "--model", engine, "-p", "jpeg", "--levels", "2", "--out", tmp_path / "o")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    try:
        import tensorrt  # noqa: F401
        import torch

        expected = ("built with TensorRT 0.0.1" if torch.cuda.is_available() else "needs an NVIDIA GPU")
    except ImportError:
        expected = "TensorRT is not installed"
    assert expected in lines[0] and "no vfmaudit metadata" not in lines[0], lines[0]
    (tmp_path / "bare.engine").write_bytes(b"\x00")
    res = vfmaudit("export", "check", tmp_path / "bare.engine")
    assert res.returncode == 2 and "side-car" in res.stderr


def test_tensorrt_build_and_parity(tmp_path, vit_onnx):
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (it needs the gpu extra and a GPU)")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("TensorRT is installed but there is no CUDA GPU")
    from vfmaudit.export.tensorrt_build import build_engine

    res = build_engine(vit_onnx.path, tmp_path / "vit.engine", min_batch=1, opt_batch=4, max_batch=8)
    side = json.loads(res.sidecar.read_text())
    assert side["tensorrt_version"] == trt.__version__ and side["source_onnx_sha256"]
    report = check_parity(res.engine, device="cuda", max_images=3)
    assert report.passed


def test_tensorrt_absent_is_one_line(tmp_path, vit_onnx):
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    res = vfmaudit("export", "tensorrt", vit_onnx.path, "--out", tmp_path / "m.engine")
    assert res.returncode == 2 and "TensorRT is not installed" in res.stderr


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_external_data_for_large_models(tmp_path, monkeypatch, exporter):
    """Above the size threshold weights go to an external file; the artefact still loads and checks."""
    import onnx

    from vfmaudit.export import onnx_export

    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)  # every model counts as large
    res = export_onnx("timm:resnet18", tmp_path / "big.onnx", exporter=exporter)
    assert res.exporter == exporter and res.external_data
    model = onnx.load(str(res.path), load_external_data=False)
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert len(external) > 10
    assert (tmp_path / "big.onnx").stat().st_size < 5_000_000  # the weights are not in the .onnx file
    assert read_onnx_info(res.path).spec == "timm:resnet18"
    assert check_parity(res.path, max_images=1).passed


def test_fallback_to_torchscript_is_a_console_warning(tmp_path, monkeypatch, capsys):
    """When dynamo fails on a model, the TorchScript file is still written, and the user is told."""
    from vfmaudit.cli import main
    from vfmaudit.export import onnx_export

    real_export = onnx_export._export

    def dynamo_fails(module, example, path, exporter, *args):
        if exporter == "dynamo":
            raise RuntimeError("unsupported operator for this test")
        return real_export(module, example, path, exporter, *args)

    monkeypatch.setattr(onnx_export, "_export", dynamo_fails)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "onnx", "-m", "timm:resnet18", "--out", str(tmp_path / "r.onnx"), "--no-check"])
    assert exit_info.value.code == 0
    err = capsys.readouterr().err
    assert "warning: the dynamo exporter failed" in err and "torchscript" in err
    assert "unsupported operator for this test" in err
    assert read_onnx_info(tmp_path / "r.onnx").exporter == "torchscript"


def test_a_parity_report_is_one_document_whatever_the_clock(monkeypatch):
    import itertools

    from vfmaudit.artefact import provenance
    from vfmaudit.export.parity import ParityReport

    ticks = itertools.count()
    monkeypatch.setattr(provenance, "utc_now", lambda: f"2026-01-01T00:00:{next(ticks):02d}+00:00")
    report = ParityReport(artefact="m.onnx", reference={}, precision="fp32", min_cosine_required=0.999,
                          rows=[{"image": "a", "variant": "clean", "cosine": 1.0, "max_abs_diff": 0.0,
                                 "max_rel_diff": 0.0}])
    assert report.to_json() == report.to_json()


def test_export_onnx_takes_the_spec_as_an_argument_or_as_model(tmp_path):
    """`export onnx SPEC` and `export onnx -m SPEC` are the same command; two different specs are one line."""
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    for args, path in ((["timm:test_vit"], a), (["-m", "timm:test_vit"], b)):
        res = vfmaudit("export", "onnx", *args, "-o", path, "--no-check", "--exporter", "torchscript", "-q")
        assert res.returncode == 0, res.stderr
    assert read_onnx_info(a).spec == read_onnx_info(b).spec == "timm:test_vit"
    res = vfmaudit("export", "onnx", "timm:test_vit", "-m", "timm:test_resnet", "-o", tmp_path / "c.onnx")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "two models given" in lines[0] and "--model" in lines[0]
    assert not (tmp_path / "c.onnx").exists()
