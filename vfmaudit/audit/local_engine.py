"""The audit in this process: one encoder, items streamed through it, rows on disk as they finish."""

from __future__ import annotations

from dataclasses import replace

from vfmaudit.audit.chunks import audit_chunks
from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.inputs import stream
from vfmaudit.audit.report_json import finish_report
from vfmaudit.audit.result import AuditResult, ProgressFn
from vfmaudit.audit.store import ResultsStore
from vfmaudit.data.source import ImageSource
from vfmaudit.runtime import Encoder


def prepare(config: AuditConfig, encoder: Encoder | None) -> Encoder:
    """Before the output folder is touched: a run that cannot start leaves nothing behind."""
    return encoder if encoder is not None else config.open_encoder()


def run(config: AuditConfig, plans, source: ImageSource | None, encoder: Encoder, progress: ProgressFn) -> AuditResult:
    store = ResultsStore(config.out, [p.name for p in plans]).open(
        config.fingerprint(), resume=config.resume, overwrite=config.overwrite)
    items, tracker = stream(source, store, config.max_images)
    if source is not None and not source.sharded and source.options.max_images is not None:
        # a capped list of files is streamed (its images are decoded as the cap counts them), counted by paths
        listed = ImageSource(source.specs, source.shards, replace(source.options, max_images=None)).items()
        progress("start", min(sum(1 for _ in listed), source.options.max_images))
    elif source is None or not source.sharded:  # a list of files: counted first (paths, not images)
        items = list(items)
        progress("start", len(items))
    else:  # shards are streamed: how many images they hold is known at their end
        progress("start", None)
    for done in audit_chunks(items, encoder, plans, config.batch_size, config.seed, config.protocol,
                             on_family=getattr(progress, "part", None)):
        for item_id, reason in done.skipped:
            store.add_skipped(item_id, reason)
        if done.ids:  # on disk before anything else
            store.add_results(done.image_rows, done.level_rows)
            store.add_small(done.small)
        tracker.stored([*done.ids, *(i for i, _ in done.skipped)])
        progress("advance", len(done.ids) + len(done.skipped))
    tracker.stored([])  # shards whose every image was on disk before this run
    return finish_report(config, plans, encoder.describe(), store, source)
