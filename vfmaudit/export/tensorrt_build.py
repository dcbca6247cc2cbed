"""ONNX -> TensorRT engine, strongly typed: the precision is the ONNX graph's, never a builder flag.

TensorRT 11 builds only strongly typed networks: FP16/BF16 come from an ONNX file converted to
mixed precision beforehand (`vfmaudit export onnx --precision fp16|bf16`), INT8 from explicit Q/DQ
nodes (`vfmaudit calibrate`). The same code builds on TensorRT 10 (>= 10.0), where the
STRONGLY_TYPED creation flag opts in (TensorRT 11 accepts and ignores it). No precision flags,
no implicit calibrators: those were removed in TensorRT 11, and vfmaudit dropped its own.

TensorRT cannot be installed where this was written: the module uses only names of the TensorRT
Python API that tests/test_tensorrt_api.py checks against the TensorRT 11 reference, imports
tensorrt lazily, and fails with one line where it is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vfmaudit.artefact import file_sha256, import_tensorrt, read_onnx_info, write_sidecar
from vfmaudit.errors import VfmauditError
from vfmaudit.export.builders import ArtefactBuilder, register_builder
from vfmaudit.runtime.cuda_memory import open_cuda
from vfmaudit.runtime.tensorrt_io import build_record, check_parsed, cuda_index, require

MIN_TENSORRT = (10, 0)


@dataclass
class EngineBuild:
    engine: Path
    sidecar: Path
    precision: str  # the source ONNX's (fp32, fp16, bf16 or int8 from Q/DQ)

    def to_json(self) -> dict:
        return {"engine": str(self.engine), "sidecar": str(self.sidecar), "precision": self.precision}


def _version(trt) -> tuple[int, int]:
    parts = str(trt.__version__).split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


def build_engine(onnx_path: str | Path, out: str | Path, min_batch: int = 1, opt_batch: int = 8, max_batch: int = 32,
                 workspace_gb: float = 4.0, timing_cache: str | Path | None = None, device: str = "cuda",
                 tf32: bool = False) -> EngineBuild:
    """Parse the ONNX file into a strongly typed network, build one dynamic-batch profile on `device`
    (cuda or cuda:N), write the side-car.

    tf32: let float32 layers run TF32 tensor-core kernels (Ampere and newer; TensorRT's default,
    about 10 mantissa bits). Off by default, so an fp32 engine computes in float32; recorded either way.
    """
    onnx_path, out = Path(onnx_path), Path(out)
    if not onnx_path.is_file():
        raise VfmauditError(f"ONNX file not found: {onnx_path}", param="onnx_path")
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise VfmauditError(f"batch sizes must satisfy 1 <= min ({min_batch}) <= opt ({opt_batch}) <= max ({max_batch})",
                            param=("min_batch", "opt_batch", "max_batch"))
    info = read_onnx_info(onnx_path)  # also rejects non-ONNX files with one line
    index = cuda_index(device)
    trt = import_tensorrt()
    if _version(trt) < MIN_TENSORRT:
        raise VfmauditError(f"TensorRT {trt.__version__} is older than 10.0, which strongly typed builds need; "
                            f"install TensorRT 10 or 11 (pip install 'vfmaudit[gpu]')")
    cuda = open_cuda(index, "building a TensorRT engine")
    with cuda.current():  # the builder times its kernels on the GPU that is current
        serialized, cache_path, cache_blob, inp_name = _build(trt, onnx_path, out, min_batch, opt_batch, max_batch,
                                                              workspace_gb, timing_cache, tf32)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(serialized))
    cache_path.write_bytes(cache_blob)
    sidecar = write_sidecar(out, {
        "tensorrt_version": trt.__version__, "strongly_typed": True,
        **build_record(cuda.properties(), index, tf32), "source_onnx": str(onnx_path),
        "source_onnx_sha256": file_sha256(onnx_path), "precision": info.precision, "input": inp_name,
        "profile": {"min": min_batch, "opt": opt_batch, "max": max_batch},
        "vfmaudit": {k: v for k, v in info.to_props().items()},
    })
    return EngineBuild(engine=out, sidecar=sidecar, precision=info.precision)


def _build(trt, onnx_path: Path, out: Path, min_batch: int, opt_batch: int, max_batch: int, workspace_gb: float,
           timing_cache: str | Path | None, tf32: bool):
    """The TensorRT calls of a build, each result checked: (engine bytes, timing cache path and bytes, input name)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # required on TensorRT 10 to get a strongly typed network; accepted and ignored on 11
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    check_parsed(parser.parse_from_file(str(onnx_path)), parser, str(onnx_path))  # by path: finds external data

    config = builder.create_builder_config()
    if not tf32:  # TensorRT enables TF32 by default: an "fp32" engine would not compute in float32
        config.clear_flag(trt.BuilderFlag.TF32)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    inp = network.get_input(0)
    shape = list(inp.shape)  # (-1, ...) for the dynamic batch
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, tuple([min_batch] + shape[1:]), tuple([opt_batch] + shape[1:]),
                      tuple([max_batch] + shape[1:]))
    config.add_optimization_profile(profile)

    cache_path = Path(timing_cache) if timing_cache else out.with_suffix(".timing.cache")
    cache_bytes = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    require(cache, f"could not create a timing cache from {cache_path}; delete it and build again")
    require(config.set_timing_cache(cache, ignore_mismatch=False),
            f"refused the timing cache {cache_path} (made by another TensorRT or GPU?); delete it and build again")

    serialized = builder.build_serialized_network(network, config)
    require(serialized, f"failed to build an engine from {onnx_path} (see the messages above)")
    used = config.get_timing_cache()
    require(used, f"returned no timing cache after building {onnx_path}")
    return serialized, cache_path, bytes(used.serialize()), inp.name


def _build_for_backend(onnx_path: Path, out_dir: Path, precision: str, batch_size: int, device: str = "cuda") -> Path:
    out = Path(out_dir) / f"model_{precision}_b{batch_size}.engine"
    return build_engine(onnx_path, out, min_batch=1, opt_batch=batch_size, max_batch=max(batch_size, 32),
                        device=device).engine


register_builder(ArtefactBuilder(
    backend="tensorrt", source="onnx", precisions=("fp32", "fp16", "bf16"), build=_build_for_backend, per_batch=True,
    other_precisions_hint="the precision of an engine is its ONNX file's: build the engine from an INT8 "
                          "ONNX file (vfmaudit calibrate) and pass it as model"))
