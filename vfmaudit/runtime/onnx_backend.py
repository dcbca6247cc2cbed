"""The onnx backend: ONNX Runtime with TensorRT EP -> CUDA EP -> CPU, whichever this install has.

bf16 files run on the CPU through a float32 emulation of their rounding (artefact/bf16.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from vfmaudit.errors import VfmauditError, one_line
from vfmaudit.artefact import INPUT_UINT8_NHWC, ArtefactInfo
from vfmaudit.artefact.metadata import load_onnx_graph, read_onnx_info
from vfmaudit.artefact.bf16 import EMULATED_NOTE, emulate_bf16, reduced_float_types
from vfmaudit.runtime.base import device_index, encode_batches
from vfmaudit.runtime.registry import register_backend
from vfmaudit.runtime.timing import add_phases

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(float16)": np.float16}


TRT_CACHE_ROOT = os.path.join(os.path.expanduser("~"), ".cache", "vfmaudit", "trt")


def engine_cache_dir(model_path: str | Path, root: str | None = None, graph=None) -> str:
    """The TensorRT provider's engine cache folder for this file: one per content (the ONNX file and
    its external data), because onnxruntime keys a cached engine by the graph's file name, names and
    versions, not by its weights: two model.onnx of one architecture would share an engine.
    graph: the file's ModelProto when already parsed (it lists the external data files)."""
    from vfmaudit.artefact.metadata import onnx_content_sha256

    return os.path.join(root or TRT_CACHE_ROOT, onnx_content_sha256(model_path, graph)[:16])


PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider"}


def provider_chain(device: str, available: list[str], cache_dir: str | None = None, provider: str = "auto") -> list:
    """Providers in order of preference for `device`, with their options, among those installed.
    cache_dir: the TensorRT provider's engine cache (engine_cache_dir of the file to run).
    provider: auto (TensorRT, then CUDA, then CPU), or tensorrt / cuda alone (then CPU)."""
    if provider not in ("auto", *PROVIDERS):
        raise VfmauditError(f"provider must be auto, {', '.join(PROVIDERS)}; got '{provider}'", param="provider")
    if provider != "auto":
        if not device.startswith("cuda"):
            raise VfmauditError(f"provider {provider} runs on a GPU: pass device cuda", param=("provider", "device"))
        if PROVIDERS[provider] not in available:
            raise VfmauditError(f"this onnxruntime has no {PROVIDERS[provider]}; install onnxruntime-gpu "
                                f"(pip install 'vfmaudit[gpu]') or use provider auto", param="provider")
        available = [p for p in available if p in (PROVIDERS[provider], "CPUExecutionProvider")]
    chain: list = []
    if device.startswith("cuda"):
        dev_id = device_index(device)
        if "TensorrtExecutionProvider" in available:
            opts = {"device_id": dev_id, "trt_fp16_enable": False, "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": cache_dir or TRT_CACHE_ROOT, "trt_timing_cache_enable": True}
            chain.append(("TensorrtExecutionProvider", opts))
        if "CUDAExecutionProvider" in available:
            chain.append(("CUDAExecutionProvider", {"device_id": dev_id, "cudnn_conv_algo_search": "EXHAUSTIVE"}))
        if not chain:
            raise VfmauditError("device cuda was asked for but this onnxruntime has no CUDA or TensorRT "
                                "provider; install the gpu extra (pip install 'vfmaudit[gpu]') or use device cpu",
                                param="device")
    chain.append("CPUExecutionProvider")
    return chain


def session_options(threads: int | None = None, optimized_path: str | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1")
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    so.log_severity_level = 3
    return so


class OnnxEncoder:
    backend = "onnx"

    def __init__(self, path: str | Path, device: str = "cpu", batch_size: int = 32, threads: int | None = None,
                 provider: str = "auto"):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise VfmauditError(f"ONNX file not found: {path}; check the path passed as model", param="model")
        if batch_size < 1:
            raise VfmauditError(f"batch_size must be >= 1, got {batch_size}", param="batch_size")
        self.path = path
        # the metadata straight from the file: no graph parsed and no onnx imported (a second of start-up)
        self.info: ArtefactInfo = read_onnx_info(path)
        self.preprocess = self.info.preprocess
        self.embed_dim = self.info.embedding_dim
        self.batch_size = int(batch_size)
        self.device = device
        self.device_id = device_index(device) if device.startswith("cuda") else 0
        self._ort = ort
        available = ort.get_available_providers()
        providers = provider_chain(device, available,
                                   engine_cache_dir(path) if "TensorrtExecutionProvider" in available else None,
                                   provider)
        # onnxruntime's CPU provider has no bf16 kernels: run the float32 emulation of the same graph
        on_cpu = not device.startswith("cuda")
        bf16 = self.info.precision == "bf16"
        self.emulation = EMULATED_NOTE if bf16 and on_cpu else None
        self.fallback: str | None = None
        try:
            self.session = _session(ort, _bf16_emulated(path) if self.emulation else str(path), threads, providers)
        except Exception as e:  # noqa: BLE001 - ORT raises its own types for every load failure
            without_trt = [p for p in providers if not (isinstance(p, tuple) and p[0] == "TensorrtExecutionProvider")]
            try:
                if on_cpu and not self.emulation and _holds_bf16(path):
                    # bf16 values under other metadata: onnxruntime found no kernel for them; emulate
                    bf16, self.emulation = True, EMULATED_NOTE
                    self.session = _session(ort, _bf16_emulated(path), threads, providers)
                elif without_trt == providers or provider != "auto":  # a provider asked for is never swapped
                    raise
                else:
                    # onnxruntime's own fallback would retry with the CUDA provider's options dropped (device 0)
                    self.session = _session(ort, str(path), threads, without_trt)
                    then = without_trt[0][0] if isinstance(without_trt[0], tuple) else without_trt[0]
                    self.fallback = f"the TensorRT provider failed ({one_line(e)[:160]}); running on {then}"
            except VfmauditError:
                raise
            except Exception as e2:  # noqa: BLE001
                hint = "" if not bf16 or self.emulation else (
                    "; onnxruntime lacks a bf16 kernel on this device: build a TensorRT engine from it "
                    "(vfmaudit export tensorrt) or run it on device cpu (emulated)")
                raise VfmauditError(f"onnxruntime cannot load {path}: {str(e2).splitlines()[0][:200]}{hint}") from None
        # the providers registered for the session, in order: each node runs on the first that takes it
        self.providers = self.session.get_providers()
        self.record_phases = False  # bench sets it: the copies and the run timed apart
        self.last_phases: dict[str, float] = {}
        self._check_io()
        self._binding = "CUDAExecutionProvider" in self.providers or "TensorrtExecutionProvider" in self.providers

    def _check_io(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise VfmauditError(f"{self.path} has {len(inputs)} inputs; an image encoder takes exactly one")
        inp = inputs[0]
        self.input_name, self.output_name = inp.name, outputs[0].name
        self.input_dtype = _ORT_TYPES.get(inp.type)
        uint8_nhwc = self.info.input_format == INPUT_UINT8_NHWC
        want_type = "tensor(uint8)" if uint8_nhwc else "tensor(float)"
        if inp.type not in (want_type, "tensor(float16)" if not uint8_nhwc else want_type):
            raise VfmauditError(f"{self.path} input '{inp.name}' is {inp.type}; expected {want_type} "
                                f"for {self.info.input_format} input")
        shape = list(inp.shape)
        h, w = self.preprocess.size
        want = [None, h, w, 3] if uint8_nhwc else [None, 3, h, w]
        if len(shape) != 4 or any(isinstance(s, int) and s != t for s, t in zip(shape[1:], want[1:])):
            raise VfmauditError(f"{self.path} input '{inp.name}' has shape {shape}; expected "
                                f"[batch, {', '.join(map(str, want[1:]))}] ({self.info.input_format})")
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None

    def _run(self, feed: np.ndarray) -> np.ndarray:
        if not self._binding:
            return self.session.run([self.output_name], {self.input_name: feed})[0]
        # on GPU: the input copied to this GPU, the output left there until fetched. Each step returns
        # when its work is done (onnxruntime synchronises the copies and the run), so host clocks
        # around them time the phases apart
        t0 = time.perf_counter()
        x = self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(feed), "cuda", self.device_id)
        t1 = time.perf_counter()
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, x)
        binding.bind_output(self.output_name, "cuda", self.device_id)
        self.session.run_with_iobinding(binding)
        t2 = time.perf_counter()
        out = binding.copy_outputs_to_cpu()[0]
        if self.record_phases:
            self.last_phases = add_phases(self.last_phases, {"h2d": t1 - t0, "compute": t2 - t1,
                                                             "d2h": time.perf_counter() - t2})
        return out

    def device_timer(self):
        """The phases of one encode() call on a GPU provider (copy in, run, copy out); None on the CPU."""
        if not self._binding:
            return None
        from vfmaudit.runtime.timing import phase_timer

        return phase_timer(self)

    def encode(self, images: np.ndarray) -> np.ndarray:
        # a static-batch file runs in its own batch size, the last chunk padded
        return encode_batches(images, self.preprocess, self.embed_dim, self.fixed_batch or self.batch_size,
                              self.info.input_format, self._run, pad_to=self.fixed_batch,
                              input_dtype=self.input_dtype or np.float32)

    def describe(self) -> dict:
        return {"spec": self.info.spec, "weights": self.info.weights, "embedding_dim": self.embed_dim,
                "preprocess": self.preprocess.to_dict(), "backend": self.backend, "device": self.device,
                "artefact": str(self.path), "input_format": self.info.input_format,
                "precision": self.info.precision, "providers": self.providers, "batch_size": self.batch_size,
                **({"emulation": self.emulation} if self.emulation else {}),
                **({"fallback": self.fallback} if self.fallback else {})}


def _session(ort, source, threads: int | None, providers: list):
    """A session without onnxruntime's silent fallback (which drops the provider options)."""
    return ort.InferenceSession(source, session_options(threads), providers=providers, enable_fallback=0)


def _holds_bf16(path: Path) -> bool:
    """Whether the graph holds bf16 values whatever its metadata says (onnx parses it: a rare path)."""
    return "bf16" in reduced_float_types(load_onnx_graph(path))


def _bf16_emulated(path: Path) -> bytes:
    model = emulate_bf16(load_onnx_graph(path, external_data=True))
    if model.ByteSize() > 2**31 - 1:  # float32 weights of a bf16 file twice its size
        raise VfmauditError(f"{path} is too large to emulate bf16 on the CPU (over 2 GiB as float32); "
                            "run it on device cuda")
    return model.SerializeToString()


@register_backend("onnx", suffixes=(".onnx",), precisions=("fp32", "fp16", "bf16", "int8"),
                  packages=("onnxruntime", "onnxruntime-gpu", "onnx"), read_info=read_onnx_info,
                  description="ONNX Runtime: TensorRT EP -> CUDA EP -> CPU, whichever this install has")
def make_onnx_encoder(model: str = "", device: str = "cpu", batch_size: int = 32,
                      threads: int | None = None, provider: str = "auto") -> OnnxEncoder:
    if not model:
        raise VfmauditError("the onnx backend needs model=FILE.onnx", param="model")
    return OnnxEncoder(model, device=device, batch_size=batch_size, threads=threads, provider=provider)
