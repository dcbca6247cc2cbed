"""Backends by name: each registers a factory, callers never branch on the backend."""

from __future__ import annotations

from typing import Callable

from vfmaudit.errors import VfmauditError
from vfmaudit.runtime.base import Encoder

EncoderFactory = Callable[..., Encoder]
_BACKENDS: dict[str, EncoderFactory] = {}


def register_backend(name: str) -> Callable[[EncoderFactory], EncoderFactory]:
    def deco(factory: EncoderFactory) -> EncoderFactory:
        _BACKENDS[name] = factory
        return factory

    return deco


# artefact files name their backend by suffix; anything else is a model spec for torch
SUFFIX_BACKENDS = {".onnx": "onnx", ".engine": "tensorrt", ".plan": "tensorrt", ".trt": "tensorrt"}


def backend_for_path(model: str) -> str:
    for suffix, name in SUFFIX_BACKENDS.items():
        if model.lower().endswith(suffix):
            return name
    return "torch"


def backends() -> list[str]:
    return sorted(_BACKENDS)


def create_encoder(backend: str = "torch", **kwargs) -> Encoder:
    """Build an Encoder: create_encoder("torch", model="openclip:ViT-S-32", seed=0, device="cpu").

    backend "auto" picks by the model: .onnx -> onnx, .engine/.plan -> tensorrt, else torch.
    """
    if backend == "auto":
        backend = backend_for_path(str(kwargs.get("model", "")))
    try:
        factory = _BACKENDS[backend]
    except KeyError:
        raise VfmauditError(f"unknown backend '{backend}'; choose from: {', '.join(backends())}") from None
    return factory(**kwargs)
