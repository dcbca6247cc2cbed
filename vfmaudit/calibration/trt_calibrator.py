"""TensorRT INT8 calibrators (entropy 2 and min-max) fed from a vfmaudit calibration set.

The calibration cache they write is TensorRT's own format, which `trtexec --calib=FILE` reads.
TensorRT cannot be installed where this was written: the classes follow the TensorRT 10
Python API (IInt8EntropyCalibrator2 / IInt8MinMaxCalibrator; get_batch returns device
pointers) and are built lazily, so importing this module never needs TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vfmaudit.calibration.dataset import CalibrationSet
from vfmaudit.errors import VfmauditError
from vfmaudit.artefact import ArtefactInfo, import_tensorrt, make_feed, pad_batch

TRT_METHODS = ("entropy", "minmax")


def make_trt_calibrator(calib: CalibrationSet, info: ArtefactInfo, cache_file: str | Path,
                        method: str = "entropy", batch_size: int = 8):
    if method not in TRT_METHODS:
        raise VfmauditError(f"TensorRT calibrates with {' or '.join(TRT_METHODS)}, not '{method}'")
    trt = import_tensorrt()
    import torch

    base = trt.IInt8EntropyCalibrator2 if method == "entropy" else trt.IInt8MinMaxCalibrator
    cache_path = Path(cache_file)

    class Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.pos = 0
            self.device_batch = None  # kept alive while TensorRT reads it

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names):  # noqa: ARG002 - one input
            if self.pos >= len(calib):
                return None
            chunk = np.asarray(calib.images[self.pos:self.pos + batch_size])
            self.pos += batch_size
            host = make_feed(pad_batch(chunk, batch_size), info.input_format, info.preprocess)  # full batches
            self.device_batch = torch.from_numpy(np.ascontiguousarray(host)).cuda()
            return [int(self.device_batch.data_ptr())]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_bytes(bytes(cache))

    return Calibrator()


def calibrator_for_onnx(onnx_path: str | Path, images: list[str] | None, method: str, cache_file: str | Path):
    """A TensorRT calibrator over a calibration set built from `images` (default: the samples)."""
    from vfmaudit.artefact import read_onnx_info
    from vfmaudit.calibration.dataset import build_calibration_set
    from vfmaudit.data.sources import collect_items, sample_items

    info = read_onnx_info(onnx_path)
    items = collect_items(images) if images else sample_items()
    return make_trt_calibrator(build_calibration_set(items, info.preprocess), info, cache_file, method)
