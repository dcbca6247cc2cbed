"""Export and verify: torch -> ONNX, ONNX -> TensorRT engine, parity against the torch model.

Importing this package registers the artefact builders (onnx_export.py, tensorrt_build.py).
"""

from vfmaudit.export import onnx_export, tensorrt_build  # noqa: F401  (register artefact builders)
from vfmaudit.export.builders import ArtefactBuilder, builders, get_builder, register_builder, unregister_builder
from vfmaudit.export.onnx_export import ExportResult, export_onnx
from vfmaudit.export.parity import DEFAULT_MIN_COSINE, PARITY_IMAGES, ParityReport, check_parity
from vfmaudit.export.tensorrt_build import EngineBuild, build_engine

__all__ = ["export_onnx", "ExportResult", "check_parity", "ParityReport", "DEFAULT_MIN_COSINE", "PARITY_IMAGES", "build_engine",
           "EngineBuild", "ArtefactBuilder", "builders", "get_builder", "register_builder", "unregister_builder"]
