"""Where weights come from: seeded random init, a local file, or a pretrained tag."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from vfmaudit.errors import WeightsError
from vfmaudit.files import file_sha256

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".pth.tar")


@dataclass(frozen=True)
class WeightsSource:
    kind: str  # "random" | "file" | "tag"
    seed: int = 0
    path: str | None = None
    tag: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "random":
            return f"random(seed={self.seed})"
        if self.kind == "file":
            return f"file:{self.path}"
        return f"tag:{self.tag}"

    def describe(self) -> dict:
        d: dict = {"kind": self.kind, "label": self.label}
        if self.kind == "random":
            d["seed"] = self.seed
            d["note"] = "random weights: embeddings are not those of any trained model"
        elif self.kind == "file":
            d["path"] = self.path
            d["sha256"] = file_sha256(Path(self.path))
        else:
            d["tag"] = self.tag
        return d


def resolve_weights(pretrained: str | None, seed: int) -> WeightsSource:
    """None -> seeded random; an existing path (or anything path-like) -> file; else a tag."""
    if pretrained is None or pretrained == "":
        return WeightsSource("random", seed=seed)
    p = Path(pretrained).expanduser()
    looks_like_path = ("/" in pretrained or "\\" in pretrained
                       or pretrained.lower().endswith(_WEIGHT_SUFFIXES))
    if p.is_file():
        return WeightsSource("file", seed=seed, path=str(p))
    if p.exists():
        raise WeightsError(f"pretrained {pretrained} is a folder; pass the weights file inside it",
                           param="pretrained")
    if looks_like_path:
        raise WeightsError(f"weights file not found: {pretrained}; check the path passed as pretrained",
                           param="pretrained")
    return WeightsSource("tag", seed=seed, tag=pretrained)


def model_seed(spec: str, seed: int) -> int:
    """Random weights are a pure function of (spec, seed)."""
    return zlib.crc32(f"{spec}|{seed}".encode()) ^ (seed & 0xFFFFFFFF)


def read_state_dict(path: str) -> dict:
    """A torch state dict from .pt/.pth/.bin (weights_only) or .safetensors; wrappers unwrapped."""
    import torch

    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            obj = load_file(path, device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is the same user error
        raise WeightsError(
            f"could not read weights from {path} ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
            f"pass a torch state dict (.pt/.pth/.bin) or a .safetensors file"
        ) from None
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{path} holds no state dict; pass a file saved from model.state_dict()")
    return {k.removeprefix("module."): v for k, v in obj.items()}
