"""JPEG re-compression through libjpeg (OpenCV), 4:2:0 chroma subsampling as PIL's default."""

from __future__ import annotations

import cv2
import numpy as np

from vfmaudit.perturb._batch import map_images
from vfmaudit.perturb.registry import Family, register


_DECODE_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10


def jpeg_quality(level: float) -> int:
    return int(min(100, max(1, round(float(level)))))


def jpeg(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    params = [
        cv2.IMWRITE_JPEG_QUALITY, jpeg_quality(level),
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    ]

    def roundtrip(img: np.ndarray, i: int) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise RuntimeError("OpenCV failed to encode a JPEG")
        if _DECODE_RGB is not None:  # libjpeg writes RGB directly: one conversion less
            return cv2.imdecode(buf, _DECODE_RGB)
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    return map_images(roundtrip, batch)


register(Family(name="jpeg", lo=10.0, hi=100.0, identity=100.0, units="quality", apply_batch=jpeg,
                description="JPEG encode and decode at the quality (libjpeg, 4:2:0, as PIL's default)",
                exact_identity=False, resolution=1.0))
