"""Export and verify: torch -> ONNX, ONNX -> TensorRT engine, parity against the torch model."""

from vfmaudit.export.metadata import ArtefactInfo, read_onnx_info
from vfmaudit.export.onnx_export import ExportResult, export_onnx
from vfmaudit.export.parity import DEFAULT_MIN_COSINE, ParityReport, check_parity

__all__ = ["export_onnx", "ExportResult", "check_parity", "ParityReport", "DEFAULT_MIN_COSINE",
           "ArtefactInfo", "read_onnx_info"]
