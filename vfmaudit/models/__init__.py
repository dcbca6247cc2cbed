"""Torch image encoders (OpenCLIP, timm), their weights and their preprocessing."""

from vfmaudit.models.factory import BuiltModel, ImageEmbedder, build_model
from vfmaudit.models.preprocess import PreprocessSpec, prepare_batch
from vfmaudit.models.spec import ModelSpec, parse_spec
from vfmaudit.models.weights import WeightsSource, resolve_weights

__all__ = ["build_model", "BuiltModel", "ImageEmbedder", "PreprocessSpec", "prepare_batch",
           "ModelSpec", "parse_spec", "WeightsSource", "resolve_weights"]
