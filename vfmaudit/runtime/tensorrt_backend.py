"""The tensorrt backend: a serialized engine run through the TensorRT Python API.

Device buffers come from torch, execution is asynchronous on a CUDA stream
(execute_async_v3 with named tensor addresses, TensorRT 10). Not executable where TensorRT
is absent; creating this encoder there fails with one line saying so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.artefact import INPUT_UINT8_NHWC, ArtefactInfo, check_compatible, import_tensorrt, read_sidecar
from vfmaudit.runtime.base import encode_batches
from vfmaudit.runtime.registry import register_backend


def read_engine_info(engine_path: str) -> ArtefactInfo:
    """The vfmaudit metadata the engine's side-car carries (copied from its ONNX source)."""
    return ArtefactInfo.from_props(read_sidecar(engine_path).get("vfmaudit", {}), str(engine_path))


class TensorRTEncoder:
    backend = "tensorrt"

    def __init__(self, engine_path: str | Path, device: str = "cuda", batch_size: int = 32):
        self.path = Path(engine_path)
        sidecar = read_sidecar(self.path)
        self.info = ArtefactInfo.from_props(sidecar.get("vfmaudit", {}), str(self.path))
        trt = import_tensorrt()
        import torch

        if not torch.cuda.is_available():
            raise VfmauditError("the tensorrt backend needs an NVIDIA GPU, and torch sees none")
        self.torch = torch
        self.dev = torch.device(device if device.startswith("cuda") else "cuda")
        check_compatible(sidecar, trt.__version__, torch.cuda.get_device_name(self.dev), str(self.path))
        self.preprocess = self.info.preprocess
        self.embed_dim = self.info.embedding_dim
        profile = sidecar.get("profile", {})
        self.max_batch = int(profile.get("max", batch_size))
        self.batch_size = min(int(batch_size), self.max_batch)
        self.precision = sidecar.get("precision", "fp32")
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise VfmauditError(f"TensorRT could not deserialize {self.path}; rebuild it with `vfmaudit export tensorrt`")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise VfmauditError(f"{self.path} has {len(inputs)} inputs; an image encoder takes exactly one")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_torch_dtype = torch.uint8 if self.info.input_format == INPUT_UINT8_NHWC else (
            torch.float16 if self.engine.get_tensor_dtype(self.input_name) == trt.DataType.HALF else torch.float32)
        self.stream = torch.cuda.Stream(device=self.dev)

    def _run(self, feed: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.cuda.stream(self.stream):
            x = torch.from_numpy(feed).to(self.dev, non_blocking=True).to(self.input_torch_dtype).contiguous()
            self.context.set_input_shape(self.input_name, tuple(x.shape))
            out_shape = tuple(self.context.get_tensor_shape(self.output_name))
            y = torch.empty(out_shape, dtype=torch.float32, device=self.dev)
            self.context.set_tensor_address(self.input_name, x.data_ptr())
            self.context.set_tensor_address(self.output_name, y.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise VfmauditError(f"TensorRT failed to run {self.path}")
            result = y.float().cpu()  # synchronises with the stream
        return result.numpy()

    def encode(self, images: np.ndarray) -> np.ndarray:
        return encode_batches(images, self.preprocess, self.embed_dim, self.batch_size,
                              self.info.input_format, self._run)

    def describe(self) -> dict:
        return {"spec": self.info.spec, "weights": self.info.weights, "embedding_dim": self.embed_dim,
                "preprocess": self.preprocess.to_dict(), "backend": self.backend, "device": str(self.dev),
                "artefact": str(self.path), "precision": self.precision, "batch_size": self.batch_size}


@register_backend("tensorrt", suffixes=(".engine", ".plan", ".trt"), precisions=("fp32", "fp16", "bf16", "int8"),
                  packages=("tensorrt",), read_info=read_engine_info, description="a serialized TensorRT engine (NVIDIA GPU)")
def make_tensorrt_encoder(model: str = "", device: str = "cuda", batch_size: int = 32) -> TensorRTEncoder:
    if not model:
        raise VfmauditError("the tensorrt backend needs model=FILE.engine", param="model")
    return TensorRTEncoder(model, device=device, batch_size=batch_size)
