"""The one place that imports TensorRT, so its absence is one clear line everywhere."""

from __future__ import annotations

from vfmaudit.errors import VfmauditError


def import_tensorrt():
    try:
        import tensorrt as trt  # noqa: PLC0415
    except ImportError:
        raise VfmauditError("TensorRT is not installed: install the gpu extra (pip install 'vfmaudit[gpu]') "
                            "on a machine with an NVIDIA GPU; on a Jetson, JetPack's python3-libnvinfer in a venv "
                            "made with --system-site-packages (docs/on-device.md)") from None
    return trt
