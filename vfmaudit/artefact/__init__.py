"""What describes a deployed file: its metadata, engine side-car, input feed, hashes, provenance.

Layer 2 of docs/architecture.md: above data/perturb/metrics/models, below runtime and export.
"""

from vfmaudit.artefact.engine_sidecar import check_compatible, read_sidecar, sidecar_path, write_sidecar
from vfmaudit.artefact.feeds import INPUT_FLOAT_NCHW, INPUT_FORMATS, INPUT_UINT8_NHWC, make_feed, pad_batch
from vfmaudit.files import file_sha256
from vfmaudit.artefact.metadata import ArtefactInfo, read_onnx_info, write_onnx_info
from vfmaudit.artefact.provenance import fingerprint, package_versions, report_header
from vfmaudit.artefact.tensorrt import import_tensorrt

__all__ = ["ArtefactInfo", "read_onnx_info", "write_onnx_info", "read_sidecar", "write_sidecar", "sidecar_path",
           "check_compatible", "INPUT_FLOAT_NCHW", "INPUT_UINT8_NHWC", "INPUT_FORMATS", "make_feed", "pad_batch",
           "file_sha256", "fingerprint", "package_versions", "report_header", "import_tensorrt"]
