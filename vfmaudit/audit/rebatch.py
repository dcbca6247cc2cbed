"""Feeds the encoder full batches: pieces of work from any family are queued and cut to batch size.

Without it every family's tail (and every chunk's clean images) would go through the encoder
as a small batch, which costs throughput on every backend.
"""

from __future__ import annotations

import numpy as np

from vfmaudit.runtime.base import Encoder


class Rebatcher:
    def __init__(self, encoder: Encoder, batch_size: int):
        self.encoder = encoder
        self.batch_size = batch_size
        self._pieces: list[tuple[np.ndarray, np.ndarray, int]] = []  # (images, destination, row offset)
        self._count = 0

    def add(self, images: np.ndarray, destination: np.ndarray) -> None:
        """Queue images whose embeddings go to destination[0:len(images)] (filled by flush time)."""
        if len(images):
            self._pieces.append((images, destination, 0))
            self._count += len(images)
            while self._count >= self.batch_size:
                self._encode(self.batch_size)

    def flush(self) -> None:
        if self._count:
            self._encode(self._count)

    def _encode(self, n: int) -> None:
        take, parts = n, []
        while take:
            images, dest, offset = self._pieces[0]
            k = min(take, len(images))
            parts.append((images[:k], dest, offset))
            if k == len(images):
                self._pieces.pop(0)
            else:
                self._pieces[0] = (images[k:], dest, offset + k)
            take -= k
        emb = self.encoder.encode(np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0])
        row = 0
        for images, dest, offset in parts:
            dest[offset:offset + len(images)] = emb[row:row + len(images)]
            row += len(images)
        self._count -= n
