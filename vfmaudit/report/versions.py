"""Package versions recorded in every report."""

from __future__ import annotations

import platform
from importlib import metadata

_PACKAGES = ("vfmaudit", "numpy", "numba", "torch", "open_clip_torch", "timm", "opencv-python-headless",
             "pillow", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "scikit-image")


def package_versions() -> dict:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
