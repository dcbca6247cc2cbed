"""The CUDA side of the TensorRT paths without torch (issue 27), where no GPU is: who allocates
(torch or cuda-python), buffer sizes per dtype and shape, the host conversions to and from the
engine's dtypes (against torch's own conversions), the real cuda-python's answer on a machine
without a GPU, and the cuda-python names used against the installed cuda.bindings.

What cannot run here: the allocations, copies, streams and events themselves (no NVIDIA GPU).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vfmaudit.errors import VfmauditError
from vfmaudit.runtime import cuda_memory as cm
from vfmaudit.runtime.tensorrt_io import TENSORRT_DTYPES

PACKAGE = Path(__file__).parent.parent / "vfmaudit"


def _found(*installed):
    return lambda name: name in installed


@pytest.mark.parametrize("loaded, installed, expected", [
    ({"torch"}, ("torch", "cuda.bindings"), "torch"),  # torch already in the process: share its context
    (set(), ("torch", "cuda.bindings"), "cuda-python"),  # an engine audit imports no torch for its buffers
    (set(), ("cuda.cudart",), "cuda-python"),  # cuda-python before 12.6
    (set(), ("torch",), "torch"),
])
def test_the_allocator_is_torch_only_where_it_is_loaded_or_the_only_one(loaded, installed, expected, monkeypatch):
    monkeypatch.delenv(cm.ENV_CHOICE, raising=False)
    assert cm.choose_cuda(loaded=loaded, found=_found(*installed)) == expected


def test_the_allocator_choice_can_be_forced_and_says_what_to_install(monkeypatch):
    monkeypatch.delenv(cm.ENV_CHOICE, raising=False)
    with pytest.raises(VfmauditError, match="neither is installed: pip install cuda-python"):
        cm.choose_cuda(loaded=set(), found=_found())
    monkeypatch.setenv(cm.ENV_CHOICE, "torch")
    assert cm.choose_cuda(loaded=set(), found=_found("torch", "cuda.bindings")) == "torch"
    with pytest.raises(VfmauditError, match="VFMAUDIT_CUDA=torch, but torch is not installed"):
        cm.choose_cuda(loaded=set(), found=_found("cuda.bindings"))
    monkeypatch.setenv(cm.ENV_CHOICE, "cuda-python")
    assert cm.choose_cuda(loaded={"torch"}, found=_found("torch", "cuda.bindings")) == "cuda-python"
    monkeypatch.setenv(cm.ENV_CHOICE, "cupy")
    with pytest.raises(VfmauditError, match="'cupy' is not one of torch, cuda-python"):
        cm.choose_cuda(loaded=set(), found=_found("torch"))


def test_a_fresh_process_chooses_cuda_python_and_loads_no_torch():
    code = ("import sys; from vfmaudit.runtime.cuda_memory import choose_cuda; "
            "print(choose_cuda(), 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != cm.ENV_CHOICE})
    assert res.stdout.split() == ["cuda-python", "False"], res.stderr


@pytest.mark.parametrize("shape", [(1, 512), (32, 768), (8, 3, 224, 224), (0, 10), ()])
def test_buffer_sizes_are_torch_s_for_every_engine_dtype(shape):
    for trt_name, dtype in TENSORRT_DTYPES.items():
        if dtype is None:
            continue
        reference = torch.empty(shape, dtype=getattr(torch, dtype))
        assert cm.buffer_nbytes(shape, dtype) == reference.numel() * reference.element_size(), (trt_name, shape)
    with pytest.raises(VfmauditError, match=r"left the shape \(-1, 512\) unresolved"):
        cm.buffer_nbytes((-1, 512), "float32")


def test_host_conversions_to_the_engine_dtype_equal_torch_s():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 3, 997), [0.0, -0.0, 1e-40, 65504.0, 3.4e38, -np.inf, np.inf]]).astype(np.float32)
    half = cm.to_engine_dtype(x, "float16")
    assert half.dtype == np.float16 and np.array_equal(half.view(np.uint16),
                                                       torch.from_numpy(x).half().view(torch.int16).numpy().view(np.uint16))
    bf = cm.to_engine_dtype(x, "bfloat16")
    assert np.array_equal(bf, torch.from_numpy(x).bfloat16().view(torch.int16).numpy().view(np.uint16))
    # the bytes an output buffer holds, widened back: torch's bf16 -> float32, exactly
    back = cm.from_engine_dtype(bf.view(np.uint8), "bfloat16", x.shape)
    assert back.dtype == np.float32 and np.array_equal(back, torch.from_numpy(x).bfloat16().float().numpy())
    raw = half.reshape(1, -1).view(np.uint8)
    assert np.array_equal(cm.from_engine_dtype(raw, "float16", (1, x.size)), half.astype(np.float32).reshape(1, -1))
    images = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    assert cm.to_engine_dtype(images, "uint8") is not None and np.array_equal(cm.to_engine_dtype(images, "uint8"), images)
    with pytest.raises(VfmauditError, match="uint8 takes uint8 images, got float32"):
        cm.to_engine_dtype(images.astype(np.float32), "uint8")


def test_cuda_python_on_a_machine_without_a_gpu_says_so_in_one_line():
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python (the dev extra's cuda-bindings) is absent")
    from cuda.bindings import runtime

    err, count = runtime.cudaGetDeviceCount()
    if int(err) == 0 and count > 0:
        pytest.skip("this machine has a GPU: the no-GPU answer cannot be seen here")
    with pytest.raises(VfmauditError, match="^the tensorrt backend needs an NVIDIA GPU, and cuda-python sees none$"):
        cm.open_cuda(0, "the tensorrt backend", kind="cuda-python")
    with pytest.raises(VfmauditError) as e:  # the real CUDA error string, on one line
        cm.CudaPython(0)
    assert str(e.value).startswith("CUDA could not select GPU cuda:0: ") and "\n" not in str(e.value)


def _rt_names(path: Path) -> set[str]:
    """Every `rt.X` and `self.rt.X` in a module (the cuda-python runtime module's names we call)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and (
                (isinstance(node.value, ast.Name) and node.value.id == "rt")
                or (isinstance(node.value, ast.Attribute) and node.value.attr == "rt")):
            names.add(node.attr)
    return names


def test_every_cuda_python_name_we_call_exists_and_the_tensorrt_paths_import_no_torch():
    runtime = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is absent")
    used = _rt_names(PACKAGE / "runtime" / "cuda_memory.py")
    assert {"cudaMalloc", "cudaMemcpyAsync", "cudaStreamCreate", "cudaEventElapsedTime"} <= used  # the parser works
    assert not {n for n in used if not hasattr(runtime, n)}, sorted(n for n in used if not hasattr(runtime, n))
    assert hasattr(runtime.cudaMemcpyKind, "cudaMemcpyHostToDevice")
    assert hasattr(runtime.cudaMemcpyKind, "cudaMemcpyDeviceToHost")
    for module in (PACKAGE / "runtime" / "tensorrt_backend.py", PACKAGE / "export" / "tensorrt_build.py"):
        tree = ast.parse(module.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.split(".")[0] == "torch"}, module.name
