"""The TensorRT code cannot run here; its names are checked against the TensorRT 11 Python API.

TENSORRT_11 records, from NVIDIA's TensorRT 11 Python API reference (docs.nvidia.com/deeplearning/
tensorrt/latest/_static/python-api: Foundational Types, Core, Network, Onnx Parser), the module-level
names and members vfmaudit may use. BuilderFlag itself stays: only its precision members went, and
IBuilderConfig.set_flag / clear_flag and OnnxParser.set_flag exist in 11 (the IBuilderConfig member
list of TensorRT 11.4.1, docs.nvidia.com/deeplearning/tensorrt/11.4.1/_static/c-api/
classnvinfer1_1_1_i_builder_config-members.html, has clearFlag, setFlag, getFlag); TF32 is the flag
vfmaudit clears for float32 builds.

REMOVED_IN_11 and REMOVED_ATTRIBUTES are the "Removed Python APIs and Replacements" page of the
10.x -> 11.x migration guide (docs.nvidia.com/deeplearning/tensorrt/11.4.0/api/migration/
tensorrt-10x-to-11x-python-api-reference.html): BuilderFlag.FP16/INT8/FP8/BF16/INT4/FP4,
OBEY_/PREFER_PRECISION_CONSTRAINTS, DIRECT_IO ("Removed (unneeded)": listed as removed there, not
deprecated), IBuilderConfig.int8_calibrator, set_/get_calibration_profile, set_/get_/clear_
quantization_flag, quantization_flags, ICudaEngine.device_memory_size, and the IInt8 calibrators.
`set_int8_calibrator` is not in the list: the Python API never had it (the calibrator was the
int8_calibrator attribute).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "vfmaudit"
TENSORRT_MODULES = [PACKAGE / "export" / "tensorrt_build.py", PACKAGE / "runtime" / "tensorrt_backend.py",
                    PACKAGE / "runtime" / "tensorrt_io.py"]

TENSORRT_11 = {
    "__version__", "Logger", "Logger.WARNING", "Logger.ERROR", "Logger.INFO", "Builder", "Runtime", "OnnxParser",
    "NetworkDefinitionCreationFlag", "NetworkDefinitionCreationFlag.STRONGLY_TYPED", "BuilderFlag",
    "BuilderFlag.TF32", "MemoryPoolType",
    "MemoryPoolType.WORKSPACE", "TensorIOMode", "TensorIOMode.INPUT", "TensorIOMode.OUTPUT", "DataType",
    "DataType.FLOAT", "DataType.HALF", "DataType.BF16", "DataType.INT8", "DataType.UINT8", "DataType.INT32",
    "ITimingCache", "IBuilderConfig", "ICudaEngine", "IExecutionContext", "INetworkDefinition",
}
# methods called on TensorRT objects (builder, network, parser, config, profile, engine, context)
TENSORRT_11_METHODS = {
    "create_network", "create_builder_config", "parse_from_file", "get_error", "num_errors", "set_memory_pool_limit",
    "get_input", "create_optimization_profile", "set_shape", "add_optimization_profile", "create_timing_cache",
    "set_timing_cache", "build_serialized_network", "get_timing_cache", "serialize", "deserialize_cuda_engine",
    "create_execution_context", "get_tensor_name", "num_io_tensors", "get_tensor_mode", "get_tensor_dtype",
    "set_input_shape", "get_tensor_shape", "set_tensor_address", "execute_async_v3", "clear_flag", "set_flag",
}
REMOVED_IN_11 = {
    "BuilderFlag.FP16", "BuilderFlag.INT8", "BuilderFlag.BF16", "BuilderFlag.FP8", "BuilderFlag.INT4",
    "BuilderFlag.FP4", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS", "BuilderFlag.PREFER_PRECISION_CONSTRAINTS",
    "BuilderFlag.DIRECT_IO", "IInt8Calibrator", "IInt8EntropyCalibrator", "IInt8EntropyCalibrator2",
    "IInt8MinMaxCalibrator", "IInt8LegacyCalibrator", "IAlgorithmSelector", "CalibrationAlgoType",
}
REMOVED_ATTRIBUTES = {"int8_calibrator", "set_calibration_profile", "get_calibration_profile", "set_quantization_flag",
                      "get_quantization_flag", "clear_quantization_flag", "quantization_flags",
                      "device_memory_size", "platform_has_fast_fp16", "platform_has_fast_int8"}


def trt_names(path: Path) -> set[str]:
    """Every `trt.A` / `trt.A.B` chain in a module."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            chain, cur = [], node
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id == "trt":
                names.add(".".join(reversed(chain)))
    return names


def attribute_names(path: Path) -> set[str]:
    return {n.attr for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute)}


def test_every_tensorrt_name_we_use_exists_in_tensorrt_11():
    for module in TENSORRT_MODULES:
        used = trt_names(module)
        assert used or module.name == "tensorrt_io.py", f"{module.name} uses no trt.* name: the parser is wrong"
        assert used <= TENSORRT_11, f"{module.name} uses names not in the TensorRT 11 API: {sorted(used - TENSORRT_11)}"
        assert not used & REMOVED_IN_11


def test_no_weak_typing_or_implicit_int8_api_is_used():
    for module in TENSORRT_MODULES:
        attrs = attribute_names(module)
        assert not attrs & REMOVED_ATTRIBUTES, sorted(attrs & REMOVED_ATTRIBUTES)
    build = attribute_names(PACKAGE / "export" / "tensorrt_build.py")
    assert {"create_network", "build_serialized_network", "parse_from_file"} <= build
    assert not (PACKAGE / "calibration" / "trt_calibrator.py").exists()  # the implicit calibrators are gone


def test_the_methods_we_call_are_tensorrt_11_methods():
    known_python = {"read_bytes", "write_bytes", "is_file", "parent", "mkdir", "with_suffix", "name", "shape",
                    "data_ptr", "cuda", "float", "cpu", "numpy", "to", "contiguous", "from_numpy", "device",
                    "Stream", "stream", "cuda_stream", "empty", "float32", "float16", "uint8", "is_available",
                    "get_device_properties", "get_device_name", "major", "minor", "precision", "info", "items",
                    "to_props", "engine", "context", "path", "dev", "torch", "input_name", "output_name",
                    "input_torch_dtype", "max_batch", "batch_size", "preprocess", "embed_dim", "backend",
                    "embedding_dim", "spec", "weights", "input_format", "to_dict", "get", "split", "__version__",
                    "_run", "from_props", "extend", "append", "join", "_version", "exists", "unlink", "sidecar", "ndarray", "startswith",
                    "device_count", "Event", "record", "synchronize", "outputs", "dtypes", "profile", "record_phases",
                    "last_phases", "partition", "isdigit", "rsplit", "bool", "int8", "num_errors", "get_error",
                    # runtime/cuda_memory.py's CudaDevice (torch or cuda-python), tested in test_cuda_memory.py
                    "current", "properties", "copy_in", "copy_out", "buffer", "stream_handle", "event", "kind", "_events"}
    for module in TENSORRT_MODULES:
        unknown = attribute_names(module) - TENSORRT_11_METHODS - known_python - {n.split(".")[-1] for n in TENSORRT_11}
        assert not unknown, f"{module.name}: calls not checked against the TensorRT 11 API: {sorted(unknown)}"
