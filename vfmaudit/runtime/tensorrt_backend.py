"""The tensorrt backend: a serialized engine run through the TensorRT Python API.

Device buffers, the stream and the copies come from cuda_memory.py (cuda-python, or torch where
the process has it), execution is asynchronous on a CUDA stream of the chosen GPU
(execute_async_v3 with named tensor addresses, TensorRT 10 and 11), every I/O tensor in the dtype
the engine declares (converted on the host, so both allocators move the same bytes). Not
executable where TensorRT is absent; creating this encoder there fails with one line saying so.
What can be decided without TensorRT lives in tensorrt_io.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.artefact import INPUT_UINT8_NHWC, ArtefactInfo, check_compatible, import_tensorrt, read_sidecar
from vfmaudit.runtime.base import encode_batches
from vfmaudit.runtime.cuda_memory import buffer_nbytes, from_engine_dtype, open_cuda, to_engine_dtype
from vfmaudit.runtime.registry import register_backend
from vfmaudit.runtime.tensorrt_io import cuda_index, input_shape_refused, require, torch_dtype_name
from vfmaudit.runtime.timing import PHASES, add_phases, phase_seconds


def read_engine_info(engine_path: str) -> ArtefactInfo:
    """The vfmaudit metadata the engine's side-car carries (copied from its ONNX source)."""
    return ArtefactInfo.from_props(read_sidecar(engine_path).get("vfmaudit", {}), str(engine_path))


class TensorRTEncoder:
    backend = "tensorrt"

    def __init__(self, engine_path: str | Path, device: str = "cuda", batch_size: int = 32):
        self.path = Path(engine_path)
        sidecar = read_sidecar(self.path)
        self.info = ArtefactInfo.from_props(sidecar.get("vfmaudit", {}), str(self.path))
        index = cuda_index(device if device.startswith("cuda") else "cuda")
        trt = import_tensorrt()
        self.cuda = open_cuda(index, "the tensorrt backend")
        self.dev = f"cuda:{index}"
        self.preprocess = self.info.preprocess
        self.embed_dim = self.info.embedding_dim
        self.profile = sidecar.get("profile", {})
        self.max_batch = int(self.profile.get("max", batch_size))
        self.batch_size = min(int(batch_size), self.max_batch)
        self.precision = sidecar.get("precision", "fp32")
        self.record_phases = False  # bench sets it: CUDA events around the copies and the compute
        self.last_phases: dict[str, float] = {}
        self._events: list | None = None  # made once, reused by every timed call
        # the engine, its context and its stream belong to the GPU they are made on: make them on this one
        with self.cuda.current():
            check_compatible(sidecar, trt.__version__, self.cuda.name(), str(self.path))
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise VfmauditError(f"TensorRT could not deserialize {self.path}; rebuild it with "
                                    f"`vfmaudit export tensorrt`")
            self.context = self.engine.create_execution_context()
            require(self.context, f"could not create an execution context for {self.path} (out of GPU memory?)")
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
            if len(inputs) != 1 or not self.outputs:
                raise VfmauditError(f"{self.path} has {len(inputs)} inputs and {len(self.outputs)} outputs; an image "
                                    f"encoder takes exactly one input and gives its embedding as the first output")
            self.input_name, self.output_name = inputs[0], self.outputs[0]
            # every I/O tensor bound in its own dtype, as the engine declares it (then read as float32)
            self.dtypes = {n: torch_dtype_name(self.engine.get_tensor_dtype(n), n, str(self.path)) for n in names}
            want_uint8 = self.info.input_format == INPUT_UINT8_NHWC
            if (self.dtypes[self.input_name] == "uint8") != want_uint8:
                raise VfmauditError(f"{self.path}: input '{self.input_name}' is {self.dtypes[self.input_name]}, but "
                                    f"its metadata says {self.info.input_format}; rebuild it from its ONNX file")

    def _run(self, feed: np.ndarray) -> np.ndarray:
        cuda = self.cuda
        if self.record_phases and self._events is None:
            self._events = [cuda.event() for _ in range(len(PHASES) + 1)]
        events = self._events if self.record_phases else None
        with cuda.current():
            host_in = to_engine_dtype(feed, self.dtypes[self.input_name])
            if events:
                events[0].record()
            address = cuda.copy_in(self.input_name, host_in)
            if events:
                events[1].record()
            if not self.context.set_input_shape(self.input_name, tuple(feed.shape)):
                raise input_shape_refused(self.input_name, tuple(feed.shape), self.profile, str(self.path))
            require(self.context.set_tensor_address(self.input_name, address),
                    f"refused the address of input '{self.input_name}' of {self.path}")
            shapes, sizes = {}, {}
            for name in self.outputs:  # TensorRT needs an address for every output, used or not
                shapes[name] = tuple(self.context.get_tensor_shape(name))
                sizes[name] = buffer_nbytes(shapes[name], self.dtypes[name])
                out = cuda.buffer(name, sizes[name])
                require(self.context.set_tensor_address(name, out),
                        f"refused the address of output '{name}' of {self.path}")
            if not self.context.execute_async_v3(cuda.stream_handle()):
                raise VfmauditError(f"TensorRT failed to run {self.path}")
            if events:
                events[2].record()
            dtype, shape = self.dtypes[self.output_name], shapes[self.output_name]
            raw = np.empty(sizes[self.output_name], dtype=np.uint8)
            cuda.copy_out(self.output_name, raw)  # waits for the stream
            if events:
                events[3].record()
                events[3].synchronize()
                self.last_phases = add_phases(self.last_phases, phase_seconds(events))
        return from_engine_dtype(raw, dtype, shape)

    def encode(self, images: np.ndarray) -> np.ndarray:
        return encode_batches(images, self.preprocess, self.embed_dim, self.batch_size,
                              self.info.input_format, self._run)

    def device_timer(self):
        """The device phases of one encode() call (copy in, compute, copy out), from CUDA events."""
        from vfmaudit.runtime.timing import phase_timer

        return phase_timer(self)

    def describe(self) -> dict:
        return {"spec": self.info.spec, "weights": self.info.weights, "embedding_dim": self.embed_dim,
                "preprocess": self.preprocess.to_dict(), "backend": self.backend, "device": self.dev, "cuda": self.cuda.kind,
                "artefact": str(self.path), "precision": self.precision, "batch_size": self.batch_size}


@register_backend("tensorrt", suffixes=(".engine", ".plan", ".trt"), precisions=("fp32", "fp16", "bf16", "int8"),
                  packages=("tensorrt",), devices=("cuda",), read_info=read_engine_info,
                  description="a serialized TensorRT engine (NVIDIA GPU)")
def make_tensorrt_encoder(model: str = "", device: str = "cuda", batch_size: int = 32) -> TensorRTEncoder:
    if not model:
        raise VfmauditError("the tensorrt backend needs model=FILE.engine", param="model")
    return TensorRTEncoder(model, device=device, batch_size=batch_size)
