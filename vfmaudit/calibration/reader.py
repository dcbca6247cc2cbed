"""Streams a calibration set to ONNX Runtime's calibrators, one batch at a time."""

from __future__ import annotations

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from vfmaudit.calibration.dataset import CalibrationSet
from vfmaudit.artefact import ArtefactInfo, make_feed


class StreamingDataReader(CalibrationDataReader):
    """Reads batches from the memory-mapped set: nothing but the current batch is in memory."""

    def __init__(self, calib: CalibrationSet, info: ArtefactInfo, input_name: str, batch_size: int = 8):
        self.calib, self.info, self.input_name, self.batch_size = calib, info, input_name, batch_size
        self._pos = 0
        self._end = len(calib)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Limit reading to batches [start_index, end_index): ORT's strided calibration calls this."""
        self._pos = start_index * self.batch_size
        self._end = min(len(self.calib), end_index * self.batch_size)

    def get_next(self) -> dict | None:
        if self._pos >= self._end:
            return None
        batch = np.asarray(self.calib.images[self._pos:self._pos + self.batch_size])
        self._pos += self.batch_size
        return {self.input_name: make_feed(batch, self.info.input_format, self.info.preprocess)}

    def rewind(self) -> None:
        self._pos, self._end = 0, len(self.calib)

    def __len__(self) -> int:
        return -(-len(self.calib) // self.batch_size)
