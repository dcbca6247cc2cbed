"""The producer side of an audit: decode, prepare and perturb in a background thread.

Work is handed over in small units (the clean chunk, then one family's variants) through a
bounded queue, so memory stays bounded and the encoder never waits on decoding.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from vfmaudit import perturb
from vfmaudit.perturb.plan import FamilyPlan
from vfmaudit.data.sources import ImageItem
from vfmaudit.errors import ImageDecodeError
from vfmaudit.models.preprocess import PreprocessSpec
from vfmaudit.perturb.families.imagenet_c import PREFIX
from vfmaudit.perturb.families.imagenet_c.protocol import as_released, imagenet_c_crop
from vfmaudit.prefetch import prefetched


# an input whose shorter side is under 1/SMALL_INPUT_FACTOR of the model's is upscaled so much that its
# embedding measures the upscaling as much as the image: audited, but named in a warning
SMALL_INPUT_FACTOR = 4


@dataclass
class CleanChunk:
    ids: list[str]
    images: np.ndarray  # uint8 (B, H, W, 3) at the model's input size
    skipped: list[tuple[str, str]]  # (id, reason)
    small: list[tuple[str, int, int]]  # (id, height, width) of inputs far below the model's size


@dataclass
class FamilyVariants:
    plan: FamilyPlan
    images: np.ndarray  # uint8 (L*B, H, W, 3), level-major
    encode_levels: list[int]  # indices of levels that need encoding (others equal the clean image)


def _prepare_chunk(items: list[ImageItem], spec: PreprocessSpec, protocol: str | None = None) -> CleanChunk:
    ids, images, skipped, small = [], [], [], []
    side = min(spec.size)
    for item in items:
        try:
            image = item.load()
            images.append(spec.prepare(imagenet_c_crop(image) if protocol else image))
            ids.append(item.id)
            if SMALL_INPUT_FACTOR * min(image.shape[:2]) < side:
                small.append((item.id, int(image.shape[0]), int(image.shape[1])))
        except ImageDecodeError as e:
            skipped.append((item.id, str(e)))
        except (OSError, ValueError, MemoryError) as e:  # unreadable for a reason the decoder did not name
            skipped.append((item.id, f"unreadable: {type(e).__name__}: {e}"))
    h, w = spec.size
    arr = np.stack(images) if images else np.empty((0, h, w, 3), np.uint8)
    return CleanChunk(ids, arr, skipped, small)


def _variants(chunk: CleanChunk, plan: FamilyPlan, seed: int, protocol: str | None = None) -> FamilyVariants:
    fam = perturb.get(plan.name)
    encode_levels = [i for i, lv in enumerate(plan.levels) if not fam.is_identity(lv)]
    parts = [perturb.apply(chunk.images, plan.name, plan.levels[i], seed=seed) for i in encode_levels]
    if protocol and plan.name.startswith(PREFIX):  # the release stored each corrupted image as JPEG 85
        parts = [as_released(p) for p in parts]
    h, w = chunk.images.shape[1:3]
    images = np.concatenate(parts) if parts else np.empty((0, h, w, 3), np.uint8)
    return FamilyVariants(plan, images, encode_levels)


def produce(items: Iterable[ImageItem], chunk_size: int, spec: PreprocessSpec, plans: list[FamilyPlan],
            seed: int, prefetch: int = 2, protocol: str | None = None) -> Iterator[CleanChunk | FamilyVariants]:
    """Yield, per chunk of images, a CleanChunk then one FamilyVariants per family (made ahead in a thread).
    protocol="imagenet-c": inputs are Resize(256) + CenterCrop(224) first, ImageNet-C variants JPEG 85 after."""

    def units():
        stream = iter(items)  # read in this thread too: a shard's bytes arrive ahead of the encoder
        while batch := list(itertools.islice(stream, chunk_size)):
            yield from chunk_units(batch, spec, plans, seed, protocol)

    return prefetched(units, prefetch, "vfmaudit-producer")


def chunk_units(batch: list[ImageItem], spec: PreprocessSpec, plans: list[FamilyPlan], seed: int,
                protocol: str | None = None) -> Iterator[CleanChunk | FamilyVariants]:
    """One chunk's units: its CleanChunk (decoded, at the model's size), then each family's variants."""
    chunk = _prepare_chunk(batch, spec, protocol)
    yield chunk
    if chunk.ids:
        for plan in plans:
            yield _variants(chunk, plan, seed, protocol)
