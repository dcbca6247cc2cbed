"""Table lookups (vfmaudit.perturb._lut) against numpy's fancy indexing, through both of StringZilla's entries."""

from __future__ import annotations

import numpy as np
import pytest

from vfmaudit.perturb import _lut

SIZES = [0, 1, 31, 63, 64, 65, 127, 1000, 224 * 224 * 3]  # around the SIMD widths and their tails


def test_stringzillas_c_lookup_is_found_in_this_build():
    # the nogil path is the one the families take; a build without the symbol would fall back to translate
    assert _lut._SZ_LOOKUP is not None


@pytest.mark.parametrize("path", ["c", "translate"])
def test_apply_lut_is_numpys_indexing(path, monkeypatch):
    if path == "translate":
        monkeypatch.setattr(_lut, "_SZ_LOOKUP", None)
    rng = np.random.default_rng(0)
    for size in SIZES:
        image = rng.integers(0, 256, size, dtype=np.uint8)
        lut = rng.integers(0, 256, 256, dtype=np.uint8)
        assert np.array_equal(_lut.apply_lut(image, lut), lut[image]), size
        out = np.zeros_like(image)
        assert _lut.apply_lut(image, lut, out=out) is out and np.array_equal(out, lut[image])
    image = rng.integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    in_place = image.copy()
    _lut.apply_lut(in_place, lut, out=in_place)  # source and target may be the same array
    assert np.array_equal(in_place, lut[image])


@pytest.mark.parametrize("path", ["c", "translate"])
def test_apply_luts_gives_each_image_its_table(path, monkeypatch):
    if path == "translate":
        monkeypatch.setattr(_lut, "_SZ_LOOKUP", None)
    rng = np.random.default_rng(1)
    for n in (1, 2, 5):
        images = rng.integers(0, 256, (n, 17, 9, 3), dtype=np.uint8)
        luts = rng.integers(0, 256, (n, 256), dtype=np.uint8)
        out = np.empty_like(images)
        _lut.apply_luts(images, luts, out)
        assert np.array_equal(out, np.stack([luts[i][images[i]] for i in range(n)]))


def test_bad_arguments_are_refused_not_read_out_of_bounds():
    image = np.zeros((4, 6), np.uint8)
    with pytest.raises(ValueError, match="256"):
        _lut.apply_lut(image, np.zeros(255, np.uint8))
    with pytest.raises(ValueError, match="contiguous"):
        _lut.apply_lut(image[:, ::2], np.zeros(256, np.uint8))
    with pytest.raises(ValueError, match="contiguous"):
        _lut.apply_lut(image, np.zeros(256, np.uint8), out=np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="one table per image"):
        _lut.apply_luts(np.zeros((3, 4, 4, 3), np.uint8), np.zeros((2, 256), np.uint8), np.zeros((3, 4, 4, 3), np.uint8))
