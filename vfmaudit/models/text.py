"""The text tower of an OpenCLIP model, for zero-shot classification: prompts -> unit embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.models.factory import build_model
from vfmaudit.models.spec import parse_spec


@dataclass
class TextEncoder:
    spec: str
    encode: Callable[[list[str]], np.ndarray]  # prompts -> float32 (N, D), L2-normalised


def require_text_tower(spec: str) -> None:
    """One line, before any work, where the model has no text tower to build zero-shot classifiers from."""
    source = parse_spec(spec).source
    if source != "openclip":
        raise VfmauditError(f"zero-shot needs an OpenCLIP model with a text tower; {spec} is a {source} "
                            f"backbone (drop zero-shot from tasks)", param="tasks")


def build_text_encoder(spec: str, pretrained: str | None = None, seed: int = 0) -> TextEncoder:
    """The same OpenCLIP model build_model makes (same seeded init or weights), its text side used."""
    import open_clip
    import torch

    require_text_tower(spec)
    built = build_model(spec, pretrained=pretrained, seed=seed)
    model = built.module.model.eval()
    tokenizer = open_clip.get_tokenizer(built.spec.name)

    def encode(prompts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            emb = model.encode_text(tokenizer(prompts)).float()
        emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb.numpy().astype(np.float32)

    return TextEncoder(str(built.spec), encode)
