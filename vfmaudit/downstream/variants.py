"""The perturbed test variants of a downstream run: named cache entries, encoded here or on Ray.

Every variant (family, level) of the test images is encoded once into the run's embedding cache;
an identity level is the clean embedding and is never encoded. The engine table says who encodes
the missing ones: this process (here), or a pool of Ray actors writing into the same cache
(ray_variants.py).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vfmaudit import perturb
from vfmaudit.downstream.cache import ArrayCache
from vfmaudit.runtime import Encoder

Variant = tuple[str, float]


def variant_name(family: str, level: float) -> str:
    return f"emb_test_{family}@{level:.6g}"


def encode_images(encoder: Encoder, images: np.ndarray, batch: int, transform=None) -> np.ndarray:
    """Embeddings of model-size images in batches, each batch transformed first (a perturbation)."""
    out = []
    for start in range(0, len(images), batch):
        chunk = np.ascontiguousarray(images[start:start + batch])
        out.append(encoder.encode(transform(chunk) if transform else chunk))
    return np.concatenate(out).astype(np.float32) if out else np.empty((0, encoder.embed_dim), np.float32)


def encode_variant(encoder: Encoder, images: np.ndarray, batch: int, family: str, level: float,
                   seed: int) -> np.ndarray:
    return encode_images(encoder, images, batch, lambda x: perturb.apply(x, family, level, seed=seed))


def encode_ahead_locally(config, cache: ArrayCache, images_name: str, missing: list[Variant],  # noqa: ARG001
                         advance: Callable[[int], None]) -> set[Variant]:
    """This process encodes each variant as `load_variants` first reads it: nothing to do ahead."""
    return set()


def missing_variants(plans, cache: ArrayCache) -> list[Variant]:
    """Variants that need encoding: not an identity level, not in the cache already."""
    return [(p.name, lv) for p in plans for lv in p.levels
            if not perturb.get(p.name).is_identity(lv) and not cache.path(variant_name(p.name, lv)).exists()]


def load_variants(plans, cache: ArrayCache, clean: np.ndarray, encoder: Encoder, images: np.ndarray,
                  batch: int, seed: int, done_ahead: set[Variant],
                  advance: Callable[[int], None]) -> dict[Variant, np.ndarray]:
    """Every variant's embeddings: an identity level is the clean embeddings, the others come from the
    cache (computed here on first use)."""
    emb: dict[Variant, np.ndarray] = {}
    for p in plans:
        for lv in p.levels:
            if perturb.get(p.name).is_identity(lv):
                emb[(p.name, lv)] = clean  # an unchanged image has an unchanged embedding
            else:
                emb[(p.name, lv)] = cache.get(variant_name(p.name, lv), lambda name=p.name, lv=lv: encode_variant(
                    encoder, images, batch, name, lv, seed))
            if (p.name, lv) not in done_ahead:
                advance(1)
    return emb
