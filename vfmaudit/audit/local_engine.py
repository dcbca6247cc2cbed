"""The audit in this process: one encoder, chunks streamed through it, rows on disk as they finish."""

from __future__ import annotations

from vfmaudit.audit.chunks import audit_chunks
from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.report_json import finish_report
from vfmaudit.audit.result import AuditResult, ProgressFn
from vfmaudit.audit.store import ResultsStore
from vfmaudit.runtime import Encoder


def prepare(config: AuditConfig, encoder: Encoder | None) -> Encoder:
    """Before the output folder is touched: a run that cannot start leaves nothing behind."""
    return encoder if encoder is not None else config.open_encoder()


def run(config: AuditConfig, plans, items, encoder: Encoder, progress: ProgressFn) -> AuditResult:
    store = ResultsStore(config.out, [p.name for p in plans]).open(
        config.fingerprint(), resume=config.resume, overwrite=config.overwrite)
    todo = [it for it in items if it.id not in store.done and it.id not in store.skipped]
    progress("start", len(todo))
    for done in audit_chunks(todo, encoder, plans, config.batch_size, config.seed, config.protocol):
        for item_id, reason in done.skipped:
            store.add_skipped(item_id, reason)
        if done.ids:  # on disk before anything else
            store.add_results(done.image_rows, done.level_rows)
            store.add_small(done.small)
        progress("advance", len(done.ids) + len(done.skipped))
    return finish_report(config, plans, encoder.describe(), store)
