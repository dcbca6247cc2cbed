"""What the TensorRT paths decide without TensorRT: tensor dtypes, the GPU index, the checks of
TensorRT's return values and the build record. Pure Python, so it is tested where TensorRT is
absent (every machine this project has); tensorrt_backend.py and export/tensorrt_build.py call it.
"""

from __future__ import annotations

from vfmaudit.errors import VfmauditError
from vfmaudit.runtime.base import device_index

# TensorRT DataType member name -> torch dtype name (Polygraphy's runner maps every I/O tensor from
# engine.get_tensor_dtype the same way); None: a type an image encoder's I/O never has here
TENSORRT_DTYPES: dict[str, str | None] = {
    "FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "UINT8": "uint8",
    "INT32": "int32", "INT64": "int64", "BOOL": "bool", "FP8": None, "INT4": None, "FP4": None, "E8M0": None,
}


def dtype_name(trt_dtype: object) -> str:
    """The member name of a TensorRT DataType ("HALF"), from the enum or its str ("DataType.HALF")."""
    return str(getattr(trt_dtype, "name", trt_dtype)).rsplit(".", 1)[-1]


def torch_dtype_name(trt_dtype: object, tensor: str, engine: str) -> str:
    """The torch dtype a buffer of this TensorRT tensor has, or one line saying it cannot be bound."""
    name = dtype_name(trt_dtype)
    mapped = TENSORRT_DTYPES.get(name)
    if mapped is None:
        raise VfmauditError(f"{engine}: tensor '{tensor}' is {name}, which vfmaudit cannot bind as an encoder's "
                            f"input or output; export the encoder with float32, float16, bfloat16 or uint8 I/O")
    return mapped


def cuda_index(device: str) -> int:
    """cuda -> 0, cuda:N -> N; anything else is one line (TensorRT runs on an NVIDIA GPU only)."""
    if device.partition(":")[0] != "cuda":
        raise VfmauditError(f"TensorRT runs on an NVIDIA GPU: pass device cuda or cuda:N, not '{device}'",
                            param="device")
    return device_index(device)


def check_parsed(parsed: bool, parser: object, onnx_path: str) -> None:
    """TensorRT's ONNX parser can return True and still record errors (Polygraphy fails on either)."""
    errors = [str(parser.get_error(i)) for i in range(int(parser.num_errors))]
    if not parsed or errors:
        detail = "; ".join(errors) if errors else "the parser gave no reason"
        raise VfmauditError(f"TensorRT cannot parse {onnx_path}: {detail[:300]}")


def require(ok: object, what: str) -> None:
    """One line for a TensorRT call whose result says it failed (False or None)."""
    if ok is None or ok is False:
        raise VfmauditError(f"TensorRT {what}")


def input_shape_refused(name: str, shape: tuple, profile: dict, engine: str) -> VfmauditError:
    lo, hi = profile.get("min", "?"), profile.get("max", "?")
    return VfmauditError(f"TensorRT refused input shape {tuple(shape)} for '{name}' of {engine}: its profile "
                         f"takes batch {lo} to {hi}; pass a batch size in that range, or rebuild it with a larger "
                         f"--max-batch (vfmaudit export tensorrt)", param="batch_size")


def build_record(props: object, index: int, tf32: bool) -> dict:
    """What the side-car records of the GPU an engine was built on (torch.cuda.get_device_properties)."""
    return {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}", "build_device": index,
            "tf32": bool(tf32)}
