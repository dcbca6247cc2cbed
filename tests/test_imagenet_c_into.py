"""Corruptions that write into the batch's image (out=) give the bytes they give on their own."""

from __future__ import annotations

import numpy as np
import pytest

from vfmaudit.perturb.families.imagenet_c import catalogue


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    rng = np.random.default_rng(3)
    smooth = rng.integers(0, 256, (3, 9, 11, 3), dtype=np.uint8).repeat(8, axis=1).repeat(8, axis=2)
    return np.ascontiguousarray(smooth[:, :70, :86])  # uneven sides, edges in the content


@pytest.mark.parametrize("spec", catalogue.SPECS, ids=lambda s: s.name)
@pytest.mark.parametrize("level", [0.5, 2.5, 5.0])  # severity 0 is the identity, handled before (perturb.apply)
def test_batch_rows_are_the_corruption_alone(spec, level, batch):
    seeds = np.array([11, 12, 13], np.uint64)
    params = spec.table.at(level, 1.0)
    got = catalogue.corrupt_batch(spec, batch, level, seeds)
    for i, img in enumerate(batch):
        assert np.array_equal(got[i], spec.fn(img, params, int(seeds[i]))), f"{spec.name} image {i}"


@pytest.mark.parametrize("spec", [s for s in catalogue.SPECS if s.writes_into], ids=lambda s: s.name)
def test_out_is_written_and_returned(spec, batch):
    params = spec.table.at(3.0, 1.0)
    expected = spec.fn(batch[0], params, 5)
    out = np.full_like(batch[0], 7)
    result = spec.fn(batch[0], params, 5, out=out)
    # the identity paths return a copy; every other path fills out itself
    assert np.array_equal(result, expected)
    if result is out:
        assert np.array_equal(out, expected)


def test_which_corruptions_write_into():
    into = {s.name for s in catalogue.SPECS if s.writes_into}
    assert {"gaussian_noise", "impulse_noise", "frost", "pixelate", "contrast", "glass_blur", "spatter"} <= into
    assert "jpeg_compression" not in into  # libjpeg returns its own array
