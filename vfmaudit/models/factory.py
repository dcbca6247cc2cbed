"""Build torch image encoders from specs: OpenCLIP towers and timm backbones (DINOv2 included)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vfmaudit.errors import WeightsError
from vfmaudit.models.preprocess import PreprocessSpec
from vfmaudit.models.spec import ModelSpec, parse_spec
from vfmaudit.models.weights import WeightsSource, model_seed, read_state_dict, resolve_weights


class ImageEmbedder(torch.nn.Module):
    """Float images (N, 3, H, W) -> L2-normalised embeddings (N, D)."""

    def __init__(self, model: torch.nn.Module, source: str):
        super().__init__()
        self.model = model
        self.source = source

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.encode_image(x) if self.source == "openclip" else self.model(x)
        if isinstance(feats, (tuple, list)):
            feats = feats[0]
        return F.normalize(feats.float(), dim=-1)


@dataclass
class BuiltModel:
    spec: ModelSpec
    module: ImageEmbedder
    preprocess: PreprocessSpec
    weights: WeightsSource
    embed_dim: int

    def describe(self) -> dict:
        return {"spec": str(self.spec), "weights": self.weights.describe(),
                "embedding_dim": self.embed_dim, "preprocess": self.preprocess.to_dict()}


@contextlib.contextmanager
def _quiet_root_logger():
    # open_clip warns "Model initialized randomly" through the root logger; we say it ourselves
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _openclip_preprocess(model: torch.nn.Module) -> PreprocessSpec:
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg["size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    return PreprocessSpec(size=(int(size[0]), int(size[1])), resize=int(min(size)),
                          resize_mode=cfg.get("resize_mode", "shortest"),
                          interpolation=cfg.get("interpolation", "bicubic"),
                          mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), fill=int(cfg.get("fill_color", 0)))


def _timm_preprocess(model: torch.nn.Module) -> PreprocessSpec:
    import math

    import timm

    cfg = timm.data.resolve_data_config({}, model=model)
    _, h, w = cfg["input_size"]
    crop_pct = cfg.get("crop_pct", 1.0) or 1.0
    mode = cfg.get("crop_mode", "center")
    resize_mode = "squash" if mode == "squash" else "shortest"
    return PreprocessSpec(size=(h, w), resize=math.floor(min(h, w) / crop_pct), resize_mode=resize_mode,
                          interpolation=cfg.get("interpolation", "bicubic"),
                          mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))


def _load_file_into(model: torch.nn.Module, path: str, spec: ModelSpec) -> None:
    sd = read_state_dict(path)
    target = model
    if spec.source == "openclip" and not any(k.startswith("visual.") for k in sd):
        target = model.visual  # a visual-tower-only state dict
    own = target.state_dict()
    full = sd
    if spec.source == "openclip" and target is model:
        own = {k: v for k, v in own.items() if k.startswith("visual.")}
        sd = {k: v for k, v in sd.items() if k.startswith("visual.") or k in own}
    if spec.source == "timm":  # the classifier head is not part of the embedding
        sd = {k: v for k, v in sd.items() if k in own or not _is_head_key(k)}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shape_bad = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shape_bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shape_bad:
            parts.append(f"{len(shape_bad)} of the wrong shape (e.g. {shape_bad[0]})")
        raise WeightsError(f"weights file {path} does not fit {spec}: keys {'; '.join(parts)}; "
                           f"pass weights saved from this architecture")
    target.load_state_dict(sd, strict=False)
    if spec.source == "openclip" and target is model:
        # a whole-model file also brings its text tower (zero-shot uses it); the image tower was checked above
        whole = model.state_dict()
        text = {k: v for k, v in full.items() if not k.startswith("visual.") and k in whole
                and tuple(v.shape) == tuple(whole[k].shape)}
        model.load_state_dict(text, strict=False)


def _is_head_key(key: str) -> bool:
    return key.split(".")[0] in ("head", "fc", "classifier", "last_linear", "head_dist")


def _fetch_failed(spec: ModelSpec, tag: str, err: Exception) -> WeightsError:
    return WeightsError(
        f"could not fetch pretrained weights '{tag}' for {spec} ({type(err).__name__}; offline "
        f"with nothing cached?); download them where a network exists and pass the file with --pretrained PATH"
    )


def _build_openclip(spec: ModelSpec, weights: WeightsSource) -> torch.nn.Module:
    import open_clip

    if weights.kind == "tag":
        tags = open_clip.list_pretrained_tags_by_model(spec.name)
        if weights.tag not in tags:
            raise WeightsError(f"unknown pretrained tag '{weights.tag}' for {spec}; known tags: "
                               f"{', '.join(tags) or 'none'}; or pass a weights file")
        try:
            return open_clip.create_model(spec.name, pretrained=weights.tag)
        except Exception as e:  # noqa: BLE001 - download/caching failures of any kind
            raise _fetch_failed(spec, weights.tag, e) from None
    return open_clip.create_model(spec.name, pretrained=None)


def _build_timm(spec: ModelSpec, weights: WeightsSource) -> torch.nn.Module:
    import timm

    if weights.kind == "tag":
        name = f"{spec.name.split('.')[0]}.{weights.tag}"
        try:
            return timm.create_model(name, pretrained=True, num_classes=0)
        except Exception as e:  # noqa: BLE001
            raise _fetch_failed(spec, weights.tag, e) from None
    return timm.create_model(spec.name, pretrained=False, num_classes=0)


def build_model(spec: str | ModelSpec, pretrained: str | None = None, seed: int = 0) -> BuiltModel:
    """A torch encoder from a spec; without `pretrained` its weights are seeded random."""
    mspec = parse_spec(spec) if isinstance(spec, str) else spec
    weights = resolve_weights(pretrained, seed)
    # random init is a pure function of (spec, seed); forked so the caller's RNG is untouched
    with torch.random.fork_rng(devices=[]), _quiet_root_logger():
        torch.manual_seed(model_seed(str(mspec), seed))
        if mspec.source == "openclip":
            model = _build_openclip(mspec, weights)
            preprocess = _openclip_preprocess(model)
        else:
            model = _build_timm(mspec, weights)
            preprocess = _timm_preprocess(model)
    if weights.kind == "file":
        _load_file_into(model, weights.path, mspec)
    model.eval()
    module = ImageEmbedder(model, mspec.source).eval()
    with torch.inference_mode():
        dim = int(module(torch.zeros(1, 3, *preprocess.size)).shape[-1])
    return BuiltModel(mspec, module, preprocess, weights, dim)
