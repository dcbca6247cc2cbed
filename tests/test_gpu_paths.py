"""The GPU paths, checked where no GPU is: what they decide on the CPU, with real files and data.

TensorRT, onnxruntime-gpu and a CUDA device are absent here, so what is tested is what those paths
compute before they call them: the graph TensorRT would parse, the engine cache folder, the device
index in provider options and side-cars, the dtype of every bound tensor, the one-line errors for
failed TensorRT calls, the split of device time into copies and compute, the rows the GPU smoke
script skips and why. TensorRT's own objects are stood in for by small classes where a test needs
one (they cannot be made here); everything else is the real thing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch

from vfmaudit.errors import VfmauditError
from vfmaudit.runtime import tensorrt_io
from vfmaudit.runtime.onnx_backend import engine_cache_dir, provider_chain

ROOT = Path(__file__).parent.parent
GPU_PROVIDERS = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """timm's tiny test_resnet: two seeds (same graph, other weights), and seed 0 with baked preprocessing."""
    from vfmaudit import export_onnx

    d = tmp_path_factory.mktemp("gpu")
    (d / "a").mkdir()
    (d / "b").mkdir()
    return {"seed0": export_onnx("timm:test_resnet", d / "a" / "model.onnx", seed=0, exporter="torchscript").path,
            "seed1": export_onnx("timm:test_resnet", d / "b" / "model.onnx", seed=1, exporter="torchscript").path,
            "baked": export_onnx("timm:test_resnet", d / "baked.onnx", seed=0, bake_preprocess=True,
                                   exporter="torchscript").path}


def test_a_baked_uint8_input_feeds_a_cast_to_float_and_nothing_else(exports):
    """TensorRT takes a UINT8 input only straight into a Cast (NVIDIA/TensorRT #3985): the transpose comes after."""
    model = onnx.load(str(exports["baked"]))
    inp = model.graph.input[0]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    consumers = [n for n in model.graph.node if inp.name in n.input]
    assert len(consumers) == 1 and consumers[0].op_type == "Cast", [(n.op_type, n.name) for n in consumers]
    to = next(a.i for a in consumers[0].attribute if a.name == "to")
    assert to == onnx.TensorProto.FLOAT


def test_the_engine_cache_folder_follows_the_weights_not_the_file_name(exports, tmp_path):
    a, b = exports["seed0"], exports["seed1"]
    assert a.name == b.name  # the same name, graph and versions: what onnxruntime keys its engines by
    root = str(tmp_path / "trt")
    assert engine_cache_dir(a, root) != engine_cache_dir(b, root)
    moved = tmp_path / "elsewhere.onnx"
    shutil.copy(a, moved)
    assert engine_cache_dir(moved, root) == engine_cache_dir(a, root)  # the same content, another name
    # external data: its bytes are part of the key
    ext = tmp_path / "ext" / "model.onnx"
    ext.parent.mkdir()
    m = onnx.load(str(a))
    onnx.save(m, str(ext), save_as_external_data=True, all_tensors_to_one_file=True, location="model.data",
              size_threshold=0)
    before = engine_cache_dir(ext, root)
    data = bytearray((ext.parent / "model.data").read_bytes())
    data[-1] ^= 1
    (ext.parent / "model.data").write_bytes(bytes(data))
    assert engine_cache_dir(ext, root) != before
    chain = provider_chain("cuda", GPU_PROVIDERS, engine_cache_dir(a, root))
    assert chain[0][1]["trt_engine_cache_path"] == engine_cache_dir(a, root)


def test_the_gpu_index_reaches_every_provider_option():
    chain = provider_chain("cuda:1", GPU_PROVIDERS, "/tmp/c")
    assert [c[0] if isinstance(c, tuple) else c for c in chain] == GPU_PROVIDERS
    assert chain[0][1]["device_id"] == 1 and chain[1][1]["device_id"] == 1
    assert provider_chain("cuda", GPU_PROVIDERS)[1][1]["device_id"] == 0
    only_cuda = provider_chain("cuda:2", GPU_PROVIDERS, provider="cuda")
    assert [c[0] if isinstance(c, tuple) else c for c in only_cuda] == GPU_PROVIDERS[1:]
    assert only_cuda[0][1]["device_id"] == 2
    with pytest.raises(VfmauditError, match="no TensorrtExecutionProvider"):
        provider_chain("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], provider="tensorrt")
    with pytest.raises(VfmauditError, match="provider cuda runs on a GPU"):
        provider_chain("cpu", GPU_PROVIDERS, provider="cuda")
    assert (tensorrt_io.cuda_index("cuda"), tensorrt_io.cuda_index("cuda:3")) == (0, 3)
    with pytest.raises(VfmauditError, match="pass device cuda or cuda:N, not 'cpu'"):
        tensorrt_io.cuda_index("cpu")


def test_the_side_car_records_the_build_gpu_and_another_gpu_model_is_refused():
    from vfmaudit.artefact import check_compatible

    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0)  # torch.cuda.get_device_properties(1)
    record = tensorrt_io.build_record(props, 1, tf32=False)
    assert record == {"gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "build_device": 1, "tf32": False}
    sidecar = {"tensorrt_version": "11.1.0", **record}
    check_compatible(sidecar, "11.1.0", "NVIDIA H100 80GB HBM3", "m.engine")  # same model of GPU: fine
    with pytest.raises(VfmauditError, match="was built for NVIDIA H100 80GB HBM3, but this GPU is NVIDIA L4"):
        check_compatible(sidecar, "11.1.0", "NVIDIA L4", "m.engine")


def test_every_tensorrt_dtype_maps_to_the_torch_dtype_of_its_width():
    widths = {"FLOAT": 4, "HALF": 2, "BF16": 2, "INT8": 1, "UINT8": 1, "INT32": 4, "INT64": 8, "BOOL": 1}
    for name, width in widths.items():
        dtype = getattr(torch, tensorrt_io.torch_dtype_name(SimpleNamespace(name=name), "t", "m.engine"))
        assert torch.empty(0, dtype=dtype).element_size() == width, name
    assert tensorrt_io.torch_dtype_name("DataType.BF16", "t", "e") == "bfloat16"  # str() of the enum
    assert tensorrt_io.torch_dtype_name(SimpleNamespace(name="HALF"), "t", "e") == "float16"
    with pytest.raises(VfmauditError, match="tensor 'out' is FP8, which vfmaudit cannot bind"):
        tensorrt_io.torch_dtype_name(SimpleNamespace(name="FP8"), "out", "m.engine")
    assert set(tensorrt_io.TENSORRT_DTYPES) >= set(widths)


class _Parser:
    """Stands in for trt.OnnxParser (absent here): its errors after a parse."""

    def __init__(self, errors):
        self.errors = errors
        self.num_errors = len(errors)

    def get_error(self, i):
        return self.errors[i]


def test_failed_tensorrt_calls_are_one_line_errors_naming_what_failed():
    tensorrt_io.check_parsed(True, _Parser([]), "m.onnx")
    with pytest.raises(VfmauditError, match="cannot parse m.onnx: In node 3 .Conv.: unsupported"):
        tensorrt_io.check_parsed(True, _Parser(["In node 3 (Conv): unsupported"]), "m.onnx")  # True, yet errors
    with pytest.raises(VfmauditError, match="the parser gave no reason"):
        tensorrt_io.check_parsed(False, _Parser([]), "m.onnx")
    for failed in (None, False):
        with pytest.raises(VfmauditError, match="^TensorRT refused the timing cache"):
            tensorrt_io.require(failed, "refused the timing cache")
    tensorrt_io.require(object(), "never raised")
    err = tensorrt_io.input_shape_refused("pixel_values", (64, 3, 224, 224), {"min": 1, "max": 32}, "m.engine")
    assert "refused input shape (64, 3, 224, 224)" in str(err) and "batch 1 to 32" in str(err)
    assert err.param == "batch_size" and "\n" not in str(err)


def test_fp32_builds_clear_tf32_and_record_it():
    """TensorRT enables TF32 by default on Ampere and newer: the build code clears it unless asked."""
    import ast

    source = (ROOT / "vfmaudit" / "export" / "tensorrt_build.py").read_text()
    tree = ast.parse(source)
    cleared = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "clear_flag"]
    assert len(cleared) == 1 and ast.unparse(cleared[0].args[0]) == "trt.BuilderFlag.TF32"
    guard = next(n for n in ast.walk(tree) if isinstance(n, ast.If) and cleared[0] in ast.walk(n))
    assert ast.unparse(guard.test) == "not tf32"
    assert tensorrt_io.build_record(SimpleNamespace(name="g", major=8, minor=0), 0, tf32=True)["tf32"] is True


class _Event:
    """Stands in for a torch.cuda.Event at a known time (no CUDA here)."""

    def __init__(self, t):
        self.t = t

    def elapsed_time(self, end):  # milliseconds, as CUDA events give them
        return (end.t - self.t) * 1e3


def test_gpu_latency_is_the_compute_alone_and_the_copies_are_reported_apart():
    from vfmaudit.runtime.timing import Timings, add_phases, phase_seconds

    phases = phase_seconds([_Event(0.0), _Event(0.002), _Event(0.010), _Event(0.011)])
    assert phases == pytest.approx({"h2d": 0.002, "compute": 0.008, "d2h": 0.001})
    assert add_phases(phases, phases) == pytest.approx({"h2d": 0.004, "compute": 0.016, "d2h": 0.002})
    calls = [{"h2d": 0.002, "compute": 0.008 + k * 1e-4, "d2h": 0.001} for k in range(5)]
    t = Timings(np.full(5, 0.05), 32, [5], {p: np.array([c[p] for c in calls]) for p in ("h2d", "compute", "d2h")})
    s = t.summary()
    assert s["gpu_latency_ms"]["median"] == pytest.approx(8.2) and s["h2d_latency_ms"]["median"] == pytest.approx(2.0)
    assert s["d2h_latency_ms"]["median"] == pytest.approx(1.0)
    assert s["latency_ms"]["median"] == pytest.approx(50.0)  # host time, copies and normalisation included
    assert "gpu_latency_ms" not in Timings(np.full(3, 0.01), 1, [3]).summary()  # on a CPU: host time only


def test_cpu_encoders_have_no_device_timer(exports):
    from vfmaudit import create_encoder

    assert create_encoder("onnx", model=str(exports["seed0"])).device_timer() is None
    assert create_encoder("torch", model="timm:test_resnet").device_timer() is None


def test_bench_labels_tensorrt_rows_with_the_gpu_they_run_on():
    from vfmaudit.bench.encoder import bench_encoders
    from vfmaudit.runtime import get_backend

    assert get_backend("tensorrt").device_for("cpu") == "cuda" and get_backend("onnx").device_for("cpu") == "cpu"
    rows = bench_encoders("timm:test_resnet", ["torch", "tensorrt"], [1], iterations=1, warmup_s=0).rows
    by = {r["backend"]: r for r in rows}
    assert by["torch"]["device"] == "cpu" and by["tensorrt"]["device"] == "cuda"
    assert by["tensorrt"]["status"] == "skipped"


def test_gpu_smoke_script_on_a_machine_without_a_gpu_says_what_it_skipped(tmp_path):
    out = tmp_path / "smoke.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_smoke.py"), "--models",
                          "timm:test_resnet,openclip:RN50", "--json", str(out)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert data["schema"] == "vfmaudit.gpu_smoke" and data["environment"]["cuda"] is False
    runtimes = {(r["model"], r["runtime"], r["precision"]) for r in rows}
    for model in ("timm:test_resnet", "openclip:RN50"):
        assert {(model, "torch", p) for p in ("fp32", "fp16", "bf16")} <= runtimes
        for runtime in ("onnx-cuda", "onnx-tensorrt", "tensorrt"):
            assert {(model, runtime, p) for p in ("fp32", "fp16", "bf16", "int8")} <= runtimes
    assert all(r["status"] == "skipped" and r["note"] == "torch sees no CUDA GPU" for r in rows)
    assert f"{len(rows)} of {len(rows)} rows skipped: torch sees no CUDA GPU" in res.stdout
    assert "| timm:test_resnet | tensorrt | int8 | skipped |" in res.stdout
