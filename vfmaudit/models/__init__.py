"""Torch image encoders (OpenCLIP, timm), their weights and their preprocessing.

The model factory (torch, open_clip, timm) is imported on first use, so the CLI's help and the
catalogue commands start without loading torch.
"""

import importlib

from vfmaudit.models.preprocess import PreprocessSpec, prepare_batch
from vfmaudit.models.spec import DEFAULT_MODEL, ModelSpec, parse_spec
from vfmaudit.models.weights import WeightsSource, resolve_weights

_FACTORY_NAMES = ("build_model", "BuiltModel", "ImageEmbedder")

__all__ = [*_FACTORY_NAMES, "PreprocessSpec", "prepare_batch", "ModelSpec", "parse_spec", "DEFAULT_MODEL", "WeightsSource",
           "resolve_weights"]


def __getattr__(name: str):
    if name in _FACTORY_NAMES:
        return getattr(importlib.import_module("vfmaudit.models.factory"), name)
    raise AttributeError(f"module 'vfmaudit.models' has no attribute '{name}'")
