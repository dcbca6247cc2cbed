"""Model spec strings: `openclip:ARCH`, `timm:NAME` (export artefacts are file paths)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from vfmaudit.errors import ModelSpecError

SOURCES = ("openclip", "timm")
DEFAULT_MODEL = "openclip:ViT-S-32"  # the built-in default every command starts from


@dataclass(frozen=True)
class ModelSpec:
    source: str  # "openclip" | "timm"
    name: str

    def __str__(self) -> str:
        return f"{self.source}:{self.name}"


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def parse_spec(spec: str) -> ModelSpec:
    source, sep, name = spec.partition(":")
    source = source.strip().lower().replace("open_clip", "openclip")
    if not sep or source not in SOURCES or not name.strip():
        raise ModelSpecError(
            f"model spec '{spec}' is not understood; use openclip:ARCH (e.g. openclip:ViT-B-32) "
            f"or timm:NAME (e.g. timm:vit_small_patch14_dinov2)"
        )
    name = name.strip()
    if source == "openclip":
        import open_clip

        known = open_clip.list_models()
        if name not in known:
            raise ModelSpecError(
                f"unknown OpenCLIP architecture '{name}'{_suggest(name, known)}; "
                f"see open_clip.list_models()"
            )
    else:
        import timm

        base = name.split(".")[0]
        if not timm.list_models(base):
            raise ModelSpecError(
                f"unknown timm model '{name}'{_suggest(base, timm.list_models())}; see timm.list_models()"
            )
    return ModelSpec(source, name)
