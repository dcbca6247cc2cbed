"""Encoders behind one protocol, chosen by backend name."""

from vfmaudit.runtime import onnx_backend, torch_backend  # noqa: F401  (register "onnx", "torch")
from vfmaudit.runtime.base import Encoder
from vfmaudit.runtime.registry import backends, create_encoder, register_backend

__all__ = ["Encoder", "create_encoder", "backends", "register_backend"]
