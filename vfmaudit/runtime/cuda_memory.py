"""The CUDA side of the TensorRT paths: the GPU, its buffers, a stream, copies and timing events,
from torch or from NVIDIA's cuda-python (`cuda.bindings`), so a device without torch runs engines.

Which one (`choose_cuda`): torch when this process has already loaded it (one CUDA context and
torch's caching allocator shared with the torch models of the same run), else cuda-python where it
is installed, else torch where it is installed; `VFMAUDIT_CUDA=torch|cuda-python` forces one. Both
move the same bytes: the host converts a batch to the dtype the engine declares (float16 by numpy,
bfloat16 by round-to-nearest-even bits) and widens the output to float32, so the two give equal
embeddings. Buffers are kept per tensor name and grown when a larger batch comes.

What is decided without a GPU (the choice, buffer sizes per dtype and shape, the host conversions)
is pure Python and tested on every machine; the CUDA calls run only on an NVIDIA GPU.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
from types import SimpleNamespace
from typing import Callable, Iterable

import numpy as np

from vfmaudit.artefact.bf16 import bf16_bits_to_float32, float32_to_bf16_bits
from vfmaudit.errors import VfmauditError

CUDA_CHOICES = ("torch", "cuda-python")
ENV_CHOICE = "VFMAUDIT_CUDA"
INSTALL_HINT = "pip install cuda-python (or 'vfmaudit[gpu]'), or torch with CUDA"

# how the host holds the bytes of each buffer dtype (the names tensorrt_io.TENSORRT_DTYPES maps to;
# bfloat16 as its uint16 bit patterns: numpy has no bf16), and so the bytes per element
HOST_DTYPE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16, "int8": np.int8,
              "uint8": np.uint8, "int32": np.int32, "int64": np.int64, "bool": np.bool_}
ITEMSIZE = {name: np.dtype(host).itemsize for name, host in HOST_DTYPE.items()}


def _module_found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def choose_cuda(preference: str | None = None, loaded: Iterable[str] | None = None,
                found: Callable[[str], bool] = _module_found) -> str:
    """'torch' or 'cuda-python': who allocates the TensorRT paths' device memory (see the module docs).

    preference: a forced choice (default: $VFMAUDIT_CUDA, else automatic); loaded: the names of
    the modules this process has imported (sys.modules); found: whether a module is installed.
    """
    preference = preference if preference is not None else os.environ.get(ENV_CHOICE, "")
    loaded = set(sys.modules if loaded is None else loaded)
    cuda_python = found("cuda.bindings") or found("cuda.cudart")  # cuda-python >= 12.6, and older
    if preference:
        if preference not in CUDA_CHOICES:
            raise VfmauditError(f"{ENV_CHOICE}={preference!r} is not one of {', '.join(CUDA_CHOICES)}")
        if preference == "torch" and not found("torch"):
            raise VfmauditError(f"{ENV_CHOICE}=torch, but torch is not installed: pip install 'vfmaudit[torch]'")
        if preference == "cuda-python" and not cuda_python:
            raise VfmauditError(f"{ENV_CHOICE}=cuda-python, but cuda-python is not installed: pip install cuda-python")
        return preference
    if "torch" in loaded:
        return "torch"
    if cuda_python:
        return "cuda-python"
    if found("torch"):
        return "torch"
    raise VfmauditError(f"TensorRT needs CUDA device memory from cuda-python or torch, and neither is installed: "
                        f"{INSTALL_HINT}")


def buffer_nbytes(shape: Iterable[int], dtype: str) -> int:
    """Bytes of a tensor of this shape and buffer dtype; a dimension TensorRT left unresolved (-1) is refused."""
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise VfmauditError(f"TensorRT left the shape {dims} unresolved (a -1 dimension): set the input shape first")
    if dtype not in ITEMSIZE:
        raise VfmauditError(f"no buffer size for dtype '{dtype}'; known: {', '.join(ITEMSIZE)}")
    return math.prod(dims) * ITEMSIZE[dtype]


def to_engine_dtype(batch: np.ndarray, dtype: str) -> np.ndarray:
    """A C-contiguous host array holding `batch` in the bytes of the engine's input dtype."""
    if dtype == "bfloat16":
        return float32_to_bf16_bits(batch)
    if dtype == "uint8" and batch.dtype != np.uint8:
        raise VfmauditError(f"an engine input of uint8 takes uint8 images, got {batch.dtype}")
    with np.errstate(over="ignore"):  # beyond float16's range is inf, as a cast on the GPU gives
        return np.ascontiguousarray(batch, dtype=HOST_DTYPE[dtype])


def from_engine_dtype(raw: np.ndarray, dtype: str, shape: Iterable[int]) -> np.ndarray:
    """float32 values of an output buffer's bytes (uint8, as copied back) of this dtype and shape."""
    shape = tuple(int(d) for d in shape)
    values = np.frombuffer(np.ascontiguousarray(raw).data, dtype=HOST_DTYPE[dtype],
                           count=buffer_nbytes(shape, dtype) // ITEMSIZE[dtype]).reshape(shape)
    return bf16_bits_to_float32(values) if dtype == "bfloat16" else values.astype(np.float32)


class CudaDevice:
    """One GPU: its name, compute capability, a stream, buffers per tensor name, copies and events."""

    kind = ""

    def __init__(self, index: int):
        self.index = index
        self._buffers: dict[str, tuple[object, int, int]] = {}  # name -> (owner, address, capacity)

    def buffer(self, name: str, nbytes: int) -> int:
        """The device address of tensor `name`'s buffer, at least nbytes long (kept between calls)."""
        _, address, capacity = self._buffers.get(name, (None, 0, -1))
        if capacity < nbytes:
            self._buffers.pop(name, None)  # the old one is freed before the larger one is allocated
            owner, address = self._allocate(max(nbytes, 1))
            self._buffers[name] = (owner, address, nbytes)
        return address

    def copy_in(self, name: str, host: np.ndarray) -> int:
        """Queue the copy of `host` into tensor `name`'s buffer on the stream; its device address."""
        host = np.ascontiguousarray(host)
        address = self.buffer(name, host.nbytes)
        self._copy_in(name, address, host)
        return address

    def properties(self) -> SimpleNamespace:
        """name, major, minor: what tensorrt_io.build_record reads (as torch.cuda.get_device_properties)."""
        major, minor = self.compute_capability()
        return SimpleNamespace(name=self.name(), major=major, minor=minor)

    # what each kind provides
    def name(self) -> str:
        raise NotImplementedError

    def compute_capability(self) -> tuple[int, int]:
        raise NotImplementedError

    def current(self):
        """A context manager inside which this GPU is the current one (the builder times kernels there)."""
        raise NotImplementedError

    def stream_handle(self) -> int:
        raise NotImplementedError

    def _allocate(self, nbytes: int) -> tuple[object, int]:  # (what owns the memory, its address)
        raise NotImplementedError

    def _copy_in(self, name: str, address: int, host: np.ndarray) -> None:
        raise NotImplementedError

    def copy_out(self, name: str, host: np.ndarray) -> None:
        """Copy tensor `name`'s buffer into `host` (its nbytes) after the queued work; returns when done."""
        raise NotImplementedError

    def event(self) -> "Event":
        raise NotImplementedError


class TorchCuda(CudaDevice):
    kind = "torch"

    def __init__(self, index: int):
        super().__init__(index)
        import torch

        self.torch = torch
        self.dev = torch.device("cuda", index)
        self._stream = torch.cuda.Stream(device=self.dev)

    def name(self) -> str:
        return self.torch.cuda.get_device_name(self.dev)

    def compute_capability(self) -> tuple[int, int]:
        major, minor = self.torch.cuda.get_device_capability(self.dev)
        return int(major), int(minor)

    def current(self):
        return self.torch.cuda.device(self.dev)

    def stream_handle(self) -> int:
        return int(self._stream.cuda_stream)

    def _allocate(self, nbytes: int) -> tuple[object, int]:
        t = self.torch.empty(nbytes, dtype=self.torch.uint8, device=self.dev)
        return t, t.data_ptr()

    def _copy_in(self, name: str, address: int, host: np.ndarray) -> None:
        src = self.torch.from_numpy(host.reshape(-1).view(np.uint8))
        self._pending = src  # the source must outlive the asynchronous copy
        with self.torch.cuda.stream(self._stream):
            self._buffers[name][0][:src.numel()].copy_(src, non_blocking=True)

    def copy_out(self, name: str, host: np.ndarray) -> None:
        dst = self.torch.from_numpy(host.reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(self._stream):
            dst.copy_(self._buffers[name][0][:dst.numel()])  # a blocking copy into pageable memory
        self._stream.synchronize()

    def event(self) -> "Event":
        ev = self.torch.cuda.Event(enable_timing=True)
        return Event(lambda: ev.record(self._stream), ev.synchronize, lambda later: ev.elapsed_time(later.raw), ev)


class CudaPython(CudaDevice):
    kind = "cuda-python"

    def __init__(self, index: int):
        super().__init__(index)
        self.rt = import_cudart()
        self._call(self.rt.cudaSetDevice(index), f"select GPU cuda:{index}")
        self._stream = self._call(self.rt.cudaStreamCreate(), "create a stream")

    def _call(self, result, what: str):
        """cuda-python returns (error, values...): the values, or one line naming the CUDA error."""
        return cuda_result(self.rt, result, what)

    def _props(self):
        return self._call(self.rt.cudaGetDeviceProperties(self.index), "read the GPU's properties")

    def name(self) -> str:
        raw = self._props().name
        return (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).split("\x00")[0]

    def compute_capability(self) -> tuple[int, int]:
        props = self._props()
        return int(props.major), int(props.minor)

    def current(self):
        import contextlib

        self._call(self.rt.cudaSetDevice(self.index), f"select GPU cuda:{self.index}")
        return contextlib.nullcontext()

    def stream_handle(self) -> int:
        return int(self._stream)

    def _allocate(self, nbytes: int) -> tuple[object, int]:
        address = int(self._call(self.rt.cudaMalloc(nbytes), f"allocate {nbytes} bytes on cuda:{self.index}"))
        return _Allocation(self.rt, address), address

    def _copy_in(self, name: str, address: int, host: np.ndarray) -> None:
        self._pending = host  # the source must outlive the asynchronous copy
        self._call(self.rt.cudaMemcpyAsync(address, host.ctypes.data, host.nbytes,
                                           self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream),
                   "copy a batch to the GPU")

    def copy_out(self, name: str, host: np.ndarray) -> None:
        self._call(self.rt.cudaMemcpyAsync(host.ctypes.data, self._buffers[name][1], host.nbytes,
                                           self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream),
                   "copy the output back")
        self._call(self.rt.cudaStreamSynchronize(self._stream), "finish the stream")

    def event(self) -> "Event":
        ev = self._call(self.rt.cudaEventCreate(), "create an event")
        return Event(lambda: self._call(self.rt.cudaEventRecord(ev, self._stream), "record an event"),
                     lambda: self._call(self.rt.cudaEventSynchronize(ev), "wait for an event"),
                     lambda later: float(self._call(self.rt.cudaEventElapsedTime(ev, later.raw), "time events")), ev)


class _Allocation:
    """Frees its device memory when its buffer is dropped (cudaFree)."""

    def __init__(self, rt, address: int):
        self.rt, self.address = rt, address

    def __del__(self):
        try:
            self.rt.cudaFree(self.address)
        except Exception:  # noqa: BLE001 - at interpreter shutdown the driver frees it anyway
            pass


class Event:
    """A CUDA timing event on the device's stream, with torch.cuda.Event's elapsed_time (ms)."""

    def __init__(self, record: Callable[[], object], synchronize: Callable[[], object],
                 elapsed_ms: Callable[["Event"], float], raw: object):
        self.record, self.synchronize, self._elapsed, self.raw = record, synchronize, elapsed_ms, raw

    def elapsed_time(self, later: "Event") -> float:
        return self._elapsed(later)


def cuda_result(rt, result, what: str):
    """The values of a cuda-python call's (error, values...) tuple, or one line naming the CUDA error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        _, text = rt.cudaGetErrorString(err)
        raise VfmauditError(f"CUDA could not {what}: {text.decode() if isinstance(text, bytes) else text}")
    return values[0] if len(values) == 1 else tuple(values)


def import_cudart():
    """cuda-python's runtime module (cuda.bindings.runtime; cuda.cudart before 12.6), or one line."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise VfmauditError(f"cuda-python is not installed: {INSTALL_HINT}")


def device_count(kind: str) -> int:
    if kind == "torch":
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    err, n = import_cudart().cudaGetDeviceCount()
    return int(n) if int(err) == 0 else 0  # no driver or no GPU: cudaErrorNoDevice, cudaErrorInsufficientDriver


def open_cuda(index: int, what: str = "TensorRT", kind: str | None = None) -> CudaDevice:
    """GPU cuda:index through torch or cuda-python (choose_cuda), or one line saying why not."""
    kind = kind or choose_cuda()
    n = device_count(kind)
    if n == 0:
        raise VfmauditError(f"{what} needs an NVIDIA GPU, and {kind} sees none")
    if index >= n:
        raise VfmauditError(f"device cuda:{index} asked for, but {kind} sees {n} GPU(s)", param="device")
    return (TorchCuda if kind == "torch" else CudaPython)(index)
