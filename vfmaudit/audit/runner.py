"""Run an audit end to end: inputs -> perturbations -> encoder -> metrics -> results on disk -> reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.pipeline import CleanChunk, FamilyVariants, produce
from vfmaudit.audit.rebatch import Rebatcher
from vfmaudit.audit.store import ResultsStore
from vfmaudit.data.sources import collect_items, sample_items
from vfmaudit.metrics import divergence_radius, l2_normalize
from vfmaudit.runtime import Encoder, create_encoder

# progress(event, n): event "start" with the number of images to do, then "advance" per image
ProgressFn = Callable[[str, int], None]


@dataclass
class AuditResult:
    report: dict
    out_dir: Path

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.json"


def run_audit(config: AuditConfig, progress: ProgressFn | None = None,
              encoder: Encoder | None = None) -> AuditResult:
    """Audit the configured model on the configured images; results land in config.out.

    Pass `encoder` to audit an Encoder you built yourself (config.model is then only a label).
    """
    from vfmaudit.report import write_reports

    plans = config.plan()
    items = collect_items(config.inputs, config.max_pixels) if config.inputs else sample_items()
    if encoder is None:  # before touching --out: a run that cannot start leaves nothing behind
        encoder = create_encoder(config.backend, model=config.model, pretrained=config.pretrained,
                                 seed=config.seed, device=config.device, batch_size=config.batch_size)
    store = ResultsStore(config.out, [p.name for p in plans]).open(
        config.fingerprint(), resume=config.resume, overwrite=config.overwrite)
    todo = [it for it in items if it.id not in store.done and it.id not in store.skipped]
    progress = progress or (lambda event, n: None)
    progress("start", len(todo))

    rebatch = Rebatcher(encoder, config.batch_size)
    chunk: CleanChunk | None = None
    clean_emb = np.empty((0, encoder.embed_dim), np.float32)
    family_embs: list[tuple[FamilyVariants, np.ndarray]] = []
    for unit in produce(todo, config.batch_size, encoder.preprocess, plans, config.seed):
        if isinstance(unit, CleanChunk):
            chunk = unit
            for item_id, reason in unit.skipped:
                store.add_skipped(item_id, reason)
            if not unit.ids:
                progress("advance", len(unit.skipped))
                continue
            clean_emb = np.empty((len(unit.ids), encoder.embed_dim), np.float32)
            rebatch.add(unit.images, clean_emb)
            family_embs = []
            continue
        assert chunk is not None
        emb = np.empty((len(unit.images), encoder.embed_dim), np.float32)
        rebatch.add(unit.images, emb)
        family_embs.append((unit, emb))
        if len(family_embs) == len(plans):  # the chunk is complete: score it, on disk before anything else
            rebatch.flush()
            image_rows: list[dict] = []
            level_rows: list[dict] = []
            for fam_unit, fam_emb in family_embs:
                _score_family(fam_unit, chunk, clean_emb, fam_emb, image_rows, level_rows)
            store.add_results(image_rows, level_rows)
            progress("advance", len(chunk.ids) + len(chunk.skipped))

    report = write_reports(store.dir, store.skipped, config, encoder.describe(), plans)
    return AuditResult(report=report, out_dir=Path(config.out))


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
    # per-level values first; the per-image metrics of DESIGN.md are their means and the ball
    cos_lv = np.einsum("bd,bld->bl", cn, pn)
    euc_lv = np.linalg.norm(pn - cn[:, None, :], axis=2)
    radius = divergence_radius(np.concatenate([cn[:, None, :], pn], axis=1))
    cos_mean, euc_mean = cos_lv.mean(axis=1), euc_lv.mean(axis=1)
    fam = unit.plan.name
    for i, image_id in enumerate(chunk.ids):
        image_rows.append({"image": image_id, "family": fam, "cosine": f"{cos_mean[i]:.8g}",
                           "euclidean": f"{euc_mean[i]:.8g}", "divergence_radius": f"{radius[i]:.8g}"})
        for j, lv in enumerate(unit.plan.levels):
            level_rows.append({"image": image_id, "family": fam, "level": f"{lv:.8g}",
                               "cosine": f"{cos_lv[i, j]:.8g}", "euclidean": f"{euc_lv[i, j]:.8g}"})
