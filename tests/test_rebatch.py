"""The rebatcher gives the encoder full batches and puts every embedding back in its place."""

import numpy as np

from vfmaudit.audit.rebatch import Rebatcher


class CountingEncoder:
    embed_dim = 3

    def __init__(self):
        self.calls = []

    def encode(self, images):
        self.calls.append(len(images))
        return images[:, 0, 0, :3].astype(np.float32) * 2  # a per-image function of its pixels


def test_full_batches_and_correct_scatter():
    enc = CountingEncoder()
    rb = Rebatcher(enc, batch_size=4)
    rng = np.random.default_rng(0)
    pieces = [rng.integers(0, 100, (n, 2, 2, 3), dtype=np.uint8) for n in (3, 5, 1, 6)]
    dests = [np.full((len(p), 3), -1.0, np.float32) for p in pieces]
    for p, d in zip(pieces, dests):
        rb.add(p, d)
    rb.flush()
    assert enc.calls[:-1] == [4] * (len(enc.calls) - 1) and sum(enc.calls) == 15
    for p, d in zip(pieces, dests):
        assert np.array_equal(d, p[:, 0, 0, :3].astype(np.float32) * 2)
