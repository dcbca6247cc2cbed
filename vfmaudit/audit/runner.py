"""Run an audit: inputs -> perturbations -> encoder -> metrics -> CSV tables and report.json on disk.

Rendering for people (report.html, console tables) is the report layer's: `vfmaudit.run_audit`
(vfmaudit/api.py) runs this and then writes the HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.pipeline import CleanChunk, FamilyVariants, produce
from vfmaudit.audit.rebatch import Rebatcher
from vfmaudit.audit.report_json import build_report
from vfmaudit.audit.store import ResultsStore
from vfmaudit.audit.summary import family_summaries
from vfmaudit.audit.tables import PER_IMAGE, PER_LEVEL, iter_rows
from vfmaudit.data.sources import collect_items, sample_items
from vfmaudit.errors import VfmauditError
from vfmaudit.files import FolderResult, lock_folder, write_json
from vfmaudit.metrics import l2_normalize, metrics
from vfmaudit.runtime import Encoder, create_encoder, resolve_backend

# progress(event, n): event "start" with the number of images to do, then "advance" per image
ProgressFn = Callable[[str, int], None]
REPORT_JSON = "report.json"


class AuditResult(FolderResult):
    report_name = REPORT_JSON

    def values(self) -> dict[str, dict[str, np.ndarray]]:
        """Per-image metric values by family and metric, streamed from per_image.csv (for plots)."""
        return family_summaries(iter_rows(self.out_dir / PER_IMAGE), [], list(self.report["families"]))[1]


def open_encoder(config: AuditConfig) -> Encoder:
    """The encoder an audit config names; the seed reaches only backends that build weights."""
    backend = resolve_backend(config.backend, config.model)
    return create_encoder(backend.name, model=config.model, pretrained=config.pretrained,
                          seed=config.seed if backend.takes("seed") else None, device=config.device,
                          batch_size=config.batch_size)


def measure_audit(config: AuditConfig, progress: ProgressFn | None = None, encoder: Encoder | None = None,
                  on_complete: Callable[[AuditResult], object] | None = None) -> AuditResult:
    """Audit the configured model on the configured images; tables and report.json land in config.out.

    Pass `encoder` to audit an Encoder you built yourself (config.model is then only a label).
    The run holds an exclusive lock on config.out from start to end (`on_complete`, which writes
    further outputs, runs inside it): a second process on the same folder stops with one line.
    """
    plans = config.plan()
    items = collect_items(config.inputs, config.max_pixels) if config.inputs else sample_items()
    if config.engine == "ray":
        from vfmaudit.audit.ray_engine import import_ray

        import_ray()  # a one-line error before anything when Ray is not installed
    elif encoder is None:  # before touching out: a run that cannot start leaves nothing behind
        encoder = open_encoder(config)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise VfmauditError(f"out {out} is a file; pass a folder", param="out")
    with lock_folder(out):
        if config.engine == "ray":
            from vfmaudit.audit.ray_engine import run_ray_locked

            result = run_ray_locked(config, plans, items, progress or (lambda event, n: None))
        else:
            result = _run_locked(config, plans, items, encoder, progress or (lambda event, n: None))
        if on_complete:
            on_complete(result)
    return result


@dataclass
class ChunkResult:
    """One chunk of images, scored: what a results store (or a shard file) receives."""

    ids: list[str]
    skipped: list[tuple[str, str]]  # (id, reason)
    image_rows: list[dict]
    level_rows: list[dict]


def audit_chunks(items, encoder: Encoder, plans, batch_size: int, seed: int) -> Iterator[ChunkResult]:
    """Score items chunk by chunk: decoding and perturbing run ahead in a thread, the encoder gets full
    batches across families, and every finished chunk is yielded. Both engines run this."""
    rebatch = Rebatcher(encoder, batch_size)
    chunk: CleanChunk | None = None
    clean_emb = np.empty((0, encoder.embed_dim), np.float32)
    family_embs: list[tuple[FamilyVariants, np.ndarray]] = []
    for unit in produce(items, batch_size, encoder.preprocess, plans, seed):
        if isinstance(unit, CleanChunk):
            chunk = unit
            if not unit.ids:
                yield ChunkResult([], unit.skipped, [], [])
                continue
            clean_emb = np.empty((len(unit.ids), encoder.embed_dim), np.float32)
            rebatch.add(unit.images, clean_emb)
            family_embs = []
            continue
        assert chunk is not None
        emb = np.empty((len(unit.images), encoder.embed_dim), np.float32)
        rebatch.add(unit.images, emb)
        family_embs.append((unit, emb))
        if len(family_embs) == len(plans):  # the chunk is complete: score it
            rebatch.flush()
            image_rows: list[dict] = []
            level_rows: list[dict] = []
            for fam_unit, fam_emb in family_embs:
                _score_family(fam_unit, chunk, clean_emb, fam_emb, image_rows, level_rows)
            yield ChunkResult(chunk.ids, chunk.skipped, image_rows, level_rows)


def _run_locked(config: AuditConfig, plans, items, encoder: Encoder, progress: ProgressFn) -> AuditResult:
    store = ResultsStore(config.out, [p.name for p in plans]).open(
        config.fingerprint(), resume=config.resume, overwrite=config.overwrite)
    todo = [it for it in items if it.id not in store.done and it.id not in store.skipped]
    progress("start", len(todo))
    for done in audit_chunks(todo, encoder, plans, config.batch_size, config.seed):
        for item_id, reason in done.skipped:
            store.add_skipped(item_id, reason)
        if done.ids:  # on disk before anything else
            store.add_results(done.image_rows, done.level_rows)
        progress("advance", len(done.ids) + len(done.skipped))
    return finish_report(config, plans, encoder.describe(), store)


def finish_report(config: AuditConfig, plans, encoder_desc: dict, store: ResultsStore) -> AuditResult:
    """Summaries from the tables on disk, and report.json."""
    families, _ = family_summaries(iter_rows(store.dir / PER_IMAGE), iter_rows(store.dir / PER_LEVEL),
                                   [p.name for p in plans])
    n_done = max((f["n_images"] for f in families.values()), default=0)
    warnings = [f"{n} duplicated row(s) in {name} were ignored: the folder had been written twice (two runs "
                f"at once, before vfmaudit locked its output folders)" for name, n in store.duplicates.items()]
    report = build_report(config, encoder_desc, plans, families, store.skipped, n_done, warnings)
    write_json(report, store.dir / REPORT_JSON)
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
