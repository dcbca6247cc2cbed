"""Encoders behind one protocol, chosen by backend name."""

from vfmaudit.runtime import onnx_backend, tensorrt_backend, torch_backend  # noqa: F401  (register backends)
from vfmaudit.runtime.base import Encoder
from vfmaudit.runtime.registry import backend_for_path, backends, create_encoder, register_backend

__all__ = ["Encoder", "create_encoder", "backends", "backend_for_path", "register_backend"]
