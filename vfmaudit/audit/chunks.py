"""Scoring chunks of images: decode and perturb ahead in a thread, encode in full batches, score
every (image, family) with each registered metric. Every engine runs this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from vfmaudit.audit.pipeline import CleanChunk, FamilyVariants, produce
from vfmaudit.audit.rebatch import Rebatcher
from vfmaudit.metrics import l2_normalize, metrics
from vfmaudit.runtime import Encoder


@dataclass
class ChunkResult:
    """One chunk of images, scored: what a results store (or a shard file) receives."""

    ids: list[str]
    skipped: list[tuple[str, str]]  # (id, reason)
    image_rows: list[dict]
    level_rows: list[dict]
    small: list[tuple[str, int, int]]  # (id, height, width) of inputs far below the model's size


def audit_chunks(items, encoder: Encoder, plans, batch_size: int, seed: int,
                 protocol: str | None = None, on_family: Callable[[float, str], None] | None = None
                 ) -> Iterator[ChunkResult]:
    """Score items chunk by chunk: decoding and perturbing run ahead in a thread, the encoder gets full
    batches across families, and every finished chunk is yielded."""
    return score_units(produce(items, batch_size, encoder.preprocess, plans, seed, protocol=protocol), encoder,
                       plans, batch_size, on_family)


def score_units(units: Iterable[CleanChunk | FamilyVariants], encoder: Encoder, plans, batch_size: int,
                on_family: Callable[[float, str], None] | None = None) -> Iterator[ChunkResult]:
    """Encode and score produced units (each chunk's CleanChunk, then its FamilyVariants, family by
    family): the encoder's side of an audit, whichever process made the units. on_family(share, name):
    one family of the chunk is in, standing for share of its images (a chunk's progress, family by family:
    a chunk of 15 corruptions takes minutes)."""
    rebatch = Rebatcher(encoder, batch_size)
    chunk: CleanChunk | None = None
    clean_emb = np.empty((0, encoder.embed_dim), np.float32)
    family_embs: list[tuple[FamilyVariants, np.ndarray]] = []
    for unit in units:
        if isinstance(unit, CleanChunk):
            chunk = unit
            if not unit.ids:
                yield ChunkResult([], unit.skipped, [], [], [])
                continue
            clean_emb = np.empty((len(unit.ids), encoder.embed_dim), np.float32)
            rebatch.add(unit.images, clean_emb)
            family_embs = []
            continue
        assert chunk is not None
        emb = np.empty((len(unit.images), encoder.embed_dim), np.float32)
        rebatch.add(unit.images, emb)
        family_embs.append((unit, emb))
        if on_family is not None:
            on_family(len(chunk.ids) / len(plans), unit.plan.name)
        if len(family_embs) == len(plans):  # the chunk is complete: score it
            rebatch.flush()
            image_rows: list[dict] = []
            level_rows: list[dict] = []
            for fam_unit, fam_emb in family_embs:
                _score_family(fam_unit, chunk, clean_emb, fam_emb, image_rows, level_rows)
            yield ChunkResult(chunk.ids, chunk.skipped, image_rows, level_rows, chunk.small)


def _score_family(unit: FamilyVariants, chunk: CleanChunk, clean: np.ndarray, variant_emb: np.ndarray,
                  image_rows: list[dict], level_rows: list[dict]) -> None:
    b = len(chunk.ids)
    n_levels = len(unit.plan.levels)
    # identity levels reuse the clean embedding: the image is unchanged, so is its embedding
    pert = np.repeat(clean[None], n_levels, axis=0)  # (L, B, D)
    if unit.encode_levels:
        pert[unit.encode_levels] = variant_emb.reshape(len(unit.encode_levels), b, -1)
    cn = l2_normalize(clean)
    pn = l2_normalize(pert.transpose(1, 0, 2))  # (B, L, D)
    per_image, per_level = {}, {}
    for name, metric in metrics().items():
        per_image[name], levels = metric.compute(cn, pn)
        if levels is not None:
            per_level[name] = levels
    fam = unit.plan.name
    for i, image_id in enumerate(chunk.ids):
        image_rows.append({"image": image_id, "family": fam, **{m: f"{v[i]:.8g}" for m, v in per_image.items()}})
        for j, lv in enumerate(unit.plan.levels):
            level_rows.append({"image": image_id, "family": fam, "level": f"{lv:.8g}",
                               **{m: f"{v[i, j]:.8g}" for m, v in per_level.items()}})
