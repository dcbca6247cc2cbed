"""ONNX Runtime static quantization: QDQ format, per-channel weights, streamed calibration."""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vfmaudit.calibration.dataset import CalibrationSet
from vfmaudit.calibration.memory import PeakMemory
from vfmaudit.calibration.reader import StreamingDataReader
from vfmaudit.calibration.settings import METHODS
from vfmaudit.errors import VfmauditError
from vfmaudit.files import write_text_atomic
from vfmaudit.artefact import read_onnx_info, write_onnx_info

QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger",
                 "ConvInteger", "DynamicQuantizeLinear", "MatMulNBits"}


@dataclass
class QuantizeResult:
    path: Path
    method: str
    calibration_images: int
    peak_memory_mb: float
    memory_growth_mb: float
    quantized_ops: dict


def calibration_cache_file(kind: str, fp32_path: Path, calib: CalibrationSet, method: str,
                           cache_dir: str | Path | None) -> Path:
    """Where a result derived from (the fp32 file's bytes, the calibration set, the method) is cached:
    activation ranges, the sensitivity ranking."""
    import hashlib

    from vfmaudit.files import file_sha256

    key = hashlib.sha256(f"{file_sha256(fp32_path)}|{calib.path.name}|{method}".encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir else calib.path.parent
    return folder / f"{kind}-{key[:24]}.json"


def quantized_op_counts(path: str | Path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts: dict = {}
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _stride(n_batches: int, at_most: int) -> int:
    """Largest divisor of n_batches not above at_most (ORT's strided calibration needs one)."""
    return max(d for d in range(1, min(at_most, n_batches) + 1) if n_batches % d == 0)


def activation_matmuls(path: str | Path) -> list[str]:
    """MatMul nodes whose two inputs are both activations (attention's QK^T and attn*V).

    Their INT8 error compounds through softmax; weights-times-activations MatMuls carry the
    cost and the speed-up, these do not.
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    weights |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}

    def from_weight(name: str, depth: int = 0) -> bool:
        if name in weights:
            return True
        if depth > 3:
            return False
        for n in model.graph.node:  # through Transpose/Cast/Reshape of a weight
            if name in n.output and n.op_type in ("Transpose", "Cast", "Reshape", "Unsqueeze"):
                return from_weight(n.input[0], depth + 1)
        return False

    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and n.name and not any(from_weight(i) for i in n.input)]


def preprocess_for_quantization(fp32_path: Path, out: Path) -> Path:
    """onnxruntime's quantization pre-processing (shape inference, graph clean-up); the original if it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            quant_pre_process(str(fp32_path), str(out), skip_symbolic_shape=True)
            return out
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantize the original
            return Path(fp32_path)


def require_fp32(path: str | Path):
    """The model's metadata, or a one-line error when it is not an fp32 vfmaudit export."""
    info = read_onnx_info(path)  # rejects non-ONNX and foreign files with one line
    already = quantized_op_counts(path)
    if not already and info.precision in ("fp16", "bf16"):
        raise VfmauditError(f"{path} is {info.precision}; INT8 quantization starts from float32: calibrate its "
                            "fp32 export instead")
    if already or info.precision != "fp32":
        raise VfmauditError(f"{path} is already quantized ({info.precision}, "
                            f"{sum(already.values())} quantized ops); calibrate its fp32 parent instead")
    return info


def quantize_onnx(fp32_path: str | Path, out: str | Path, calib: CalibrationSet, method: str = "minmax",
                  per_channel: bool = True, batch_size: int = 8, batches_in_memory: int = 4,
                  cache_dir: str | Path | None = None, op_types: tuple[str, ...] | None = ("Conv", "MatMul", "Gemm"),
                  keep_attention_float: bool = True, keep_float: tuple[str, ...] = (),
                  only: tuple[str, ...] | None = None) -> QuantizeResult:
    """Calibrate and quantize to INT8 QDQ.

    Activations are collected a few batches at a time (ORT's strided calibration), and the
    statistics merged in between, so memory stays flat however large the calibration set. ORT's
    entropy/percentile calibrators otherwise hold every batch's activations until the end
    (the out-of-memory reports in onnxruntime issues 10503 and 11020). The tensor ranges are
    cached next to the calibration set, so a second build with the same inputs skips calibration.

    keep_float: further nodes left in float (a mixed-precision search's choice); only: quantize just
    these nodes (a sensitivity measurement). Both reuse the cached ranges.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    if method not in METHODS:
        raise VfmauditError(f"unknown calibration method '{method}'; choose from {', '.join(METHODS)}")
    fp32_path, out = Path(fp32_path), Path(out)
    info = require_fp32(fp32_path)
    session = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    del session
    calib_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                    "percentile": CalibrationMethod.Percentile}[method]
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="vfmaudit-quant-") as tmp:
        pre = preprocess_for_quantization(fp32_path, Path(tmp) / "pre.onnx")
        # onnxruntime reads and writes the ranges cache itself: it works on a private copy, and a
        # new cache is published under the shared name by an atomic rename
        shared_ranges = calibration_cache_file("ranges", fp32_path, calib, f"{method}|{op_types}|{keep_attention_float}", cache_dir)
        private_ranges = Path(tmp) / "ranges.json"
        if shared_ranges.is_file():
            shutil.copyfile(shared_ranges, private_ranges)
        reader = StreamingDataReader(calib, info, input_name, batch_size)
        extra = {"CalibStridedMinMax": _stride(len(reader), batches_in_memory), "ActivationSymmetric": False,
                 "WeightSymmetric": True}
        if method == "percentile":
            extra["CalibPercentile"] = 99.999
        with PeakMemory() as mem, contextlib.redirect_stdout(io.StringIO()):
            exclude = (activation_matmuls(pre) if keep_attention_float else []) + list(keep_float)
            try:
                quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                                op_types_to_quantize=list(op_types) if op_types else None, nodes_to_exclude=exclude,
                                nodes_to_quantize=list(only) if only is not None else None,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=calib_method, extra_options=extra,
                                calibration_providers=["CPUExecutionProvider"],
                                calibration_cache_path=str(private_ranges))
            except Exception as e:  # noqa: BLE001
                raise VfmauditError(f"onnxruntime could not quantize {fp32_path}: {str(e).splitlines()[0][:200]}") from None
        if private_ranges.is_file() and not shared_ranges.is_file():
            write_text_atomic(shared_ranges, private_ranges.read_text())
    info.precision = "int8"
    info.extra = {**info.extra, "calibration": {"method": method, "images": len(calib), "per_channel": per_channel,
                                                "format": "QDQ", "source_fp32": str(fp32_path),
                                                "op_types": list(op_types or []),
                                                "float_attention_matmuls": len(exclude) - len(keep_float),
                                                "kept_float": list(keep_float)}}
    write_onnx_info(out, info)
    return QuantizeResult(path=out, method=method, calibration_images=len(calib), peak_memory_mb=mem.peak_mb,
                          memory_growth_mb=mem.growth_mb, quantized_ops=quantized_op_counts(out))
