"""INT8 calibration: calibration sets (clean + perturbed), ORT static quantization, TensorRT
calibrators, and the acceptance audit of the INT8 model against its fp32 parent.

Loaded on first use (onnxruntime's quantization tools take a second to import)."""

from vfmaudit.calibration.settings import METHODS, MIN_MEDIAN_COSINE
from vfmaudit.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "calibrate_int8": "vfmaudit.calibration.api", "CalibrationResult": "vfmaudit.calibration.api",
    "build_calibration_set": "vfmaudit.calibration.dataset", "split_held_out": "vfmaudit.calibration.dataset",
    "CalibrationSet": "vfmaudit.calibration.dataset", "quantize_onnx": "vfmaudit.calibration.ort_quant",
    "quantized_op_counts": "vfmaudit.calibration.ort_quant"})

__all__ = ["calibrate_int8", "CalibrationResult", "build_calibration_set", "split_held_out", "CalibrationSet",
           "quantize_onnx", "quantized_op_counts", "METHODS", "MIN_MEDIAN_COSINE"]
