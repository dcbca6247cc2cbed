"""An audit's inputs: the source opened before any work, streamed item by item, and which of its
shards are finished (read to their end, every image's rows on disk), so resume skips them unopened."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Iterable, Iterator

from vfmaudit.audit.store import ResultsStore
from vfmaudit.data.source import ImageSource, open_source
from vfmaudit.data.sources import ImageItem, sample_items


def open_inputs(config) -> ImageSource | None:
    """The configured source, listed and checked (None: the built-in sample photographs)."""
    return open_source(config.inputs, config.source_options()) if config.inputs else None


class ShardTracker:
    """Counts each shard's items between the producer thread (which reads them) and the thread that
    stores their rows; a shard is finished once it was read to its end and nothing of it is pending."""

    def __init__(self, store: ResultsStore):
        self.store = store
        self.lock = threading.Lock()
        self.pending: Counter = Counter()
        self.inputs: Counter = Counter()
        self.shard_of: dict[str, str] = {}
        self.ended: set[str] = set()
        self.finished: list[str] = []

    def watch(self, items: Iterable[ImageItem]) -> Iterator[ImageItem]:
        """The items still to audit (those on disk already are counted, not yielded)."""
        current = None
        for item in items:
            if item.shard != current:
                if current:
                    self._end(current)
                current = item.shard
            with self.lock:
                self.inputs[item.shard] += 1
            if item.id in self.store.done or item.id in self.store.skipped:
                continue
            if item.shard:
                with self.lock:
                    self.pending[item.shard] += 1
                    self.shard_of[item.id] = item.shard
            yield item
        if current:
            self._end(current)

    def _end(self, shard: str) -> None:
        with self.lock:
            self.ended.add(shard)
            self._check(shard)

    def _check(self, shard: str) -> None:
        if shard in self.ended and self.pending[shard] == 0:
            self.ended.discard(shard)
            self.finished.append(shard)

    def stored(self, ids: Iterable[str]) -> None:
        """These items' rows (or skip notes) are on disk; record the shards that are now finished."""
        with self.lock:
            for item_id in ids:
                shard = self.shard_of.pop(item_id, None)
                if shard:
                    self.pending[shard] -= 1
                    self._check(shard)
            finished, self.finished = self.finished, []
        for shard in finished:
            self.store.add_shard_done(shard, self.inputs.pop(shard, 0))


def stream(source: ImageSource | None, store: ResultsStore, max_images: int | None = None
           ) -> tuple[Iterator[ImageItem], ShardTracker]:
    """The items to audit, streamed (finished shards not opened), and the tracker to tell what is stored.
    max_images: the source's options cap it; it caps the built-in samples here."""
    tracker = ShardTracker(store)
    if source is None:
        items = itertools.islice(sample_items(), max_images)
    elif source.options.max_images is not None:  # every shard read: a finished one counts towards the cap
        items = source.items()
    else:
        items = source.items(skip=store.shards_done)
    return tracker.watch(items), tracker
