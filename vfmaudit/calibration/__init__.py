"""INT8 calibration: calibration sets (clean + perturbed), ORT static quantization, TensorRT
calibrators, and the acceptance audit of the INT8 model against its fp32 parent."""

from vfmaudit.calibration.api import MIN_MEDIAN_COSINE, CalibrationResult, calibrate_int8
from vfmaudit.calibration.dataset import CalibrationSet, build_calibration_set, split_held_out
from vfmaudit.calibration.ort_quant import METHODS, quantize_onnx, quantized_op_counts

__all__ = ["calibrate_int8", "CalibrationResult", "build_calibration_set", "split_held_out", "CalibrationSet", "quantize_onnx",
           "quantized_op_counts", "METHODS", "MIN_MEDIAN_COSINE"]
