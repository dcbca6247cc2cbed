"""ONNX -> TensorRT engine, through the TensorRT Python API (TensorRT 10).

TensorRT cannot be installed on the machines this was written on: this module is written
against the documented API and kept apart from everything else; it imports tensorrt lazily
and fails with one line where it is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vfmaudit.errors import VfmauditError
from vfmaudit.export.builders import ArtefactBuilder, register_builder
from vfmaudit.artefact import file_sha256, import_tensorrt, read_onnx_info, write_sidecar


@dataclass
class EngineBuild:
    engine: Path
    sidecar: Path
    precision: str

    def to_json(self) -> dict:
        return {"engine": str(self.engine), "sidecar": str(self.sidecar), "precision": self.precision}


def build_engine(onnx_path: str | Path, out: str | Path, fp16: bool = False, int8: bool = False,
                 calibrator=None, min_batch: int = 1, opt_batch: int = 8, max_batch: int = 32,
                 workspace_gb: float = 4.0, timing_cache: str | Path | None = None) -> EngineBuild:
    """Parse the ONNX file, build a serialized engine with one dynamic-batch profile, write side-car."""
    onnx_path, out = Path(onnx_path), Path(out)
    if not onnx_path.is_file():
        raise VfmauditError(f"ONNX file not found: {onnx_path}")
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise VfmauditError(f"batch sizes must satisfy 1 <= min ({min_batch}) <= opt ({opt_batch}) <= max ({max_batch})")
    if int8 and calibrator is None:
        raise VfmauditError("int8 needs calibration data: pass calib_images (see `vfmaudit calibrate`)",
                             param=("int8", "calib_images"))
    info = read_onnx_info(onnx_path)  # also rejects non-ONNX files with one line
    trt = import_tensorrt()
    import torch

    if not torch.cuda.is_available():
        raise VfmauditError("building a TensorRT engine needs an NVIDIA GPU, and torch sees none")

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # by path: external data next to it is found
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise VfmauditError(f"TensorRT cannot parse {onnx_path}: {errs[:300]}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    precision = "fp32"
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        precision = "fp16"
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
        precision = "int8"

    inp = network.get_input(0)
    shape = list(inp.shape)  # (-1, ...) for the dynamic batch
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, tuple([min_batch] + shape[1:]), tuple([opt_batch] + shape[1:]),
                      tuple([max_batch] + shape[1:]))
    config.add_optimization_profile(profile)
    if int8:
        config.set_calibration_profile(profile)

    cache_path = Path(timing_cache) if timing_cache else out.with_suffix(".timing.cache")
    cache_bytes = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise VfmauditError(f"TensorRT failed to build an engine from {onnx_path} (see the messages above)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(serialized))
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))

    props = torch.cuda.get_device_properties(0)
    sidecar = write_sidecar(out, {
        "tensorrt_version": trt.__version__, "gpu": props.name,
        "compute_capability": f"{props.major}.{props.minor}", "source_onnx": str(onnx_path),
        "source_onnx_sha256": file_sha256(onnx_path), "precision": precision, "input": inp.name,
        "profile": {"min": min_batch, "opt": opt_batch, "max": max_batch},
        "vfmaudit": {k: v for k, v in info.to_props().items()},
    })
    return EngineBuild(engine=out, sidecar=sidecar, precision=precision)


def _build_for_backend(onnx_path: Path, out_dir: Path, precision: str, batch_size: int) -> Path:
    out = Path(out_dir) / f"model_{precision}_b{batch_size}.engine"
    return build_engine(onnx_path, out, fp16=precision == "fp16", min_batch=1, opt_batch=batch_size,
                        max_batch=max(batch_size, 32)).engine


register_builder(ArtefactBuilder(
    backend="tensorrt", source="onnx", precisions=("fp32", "fp16"), build=_build_for_backend,
    other_precisions_hint="an int8 engine needs calibration data: build it with `vfmaudit export tensorrt "
                          "--int8` and pass it as model"))
