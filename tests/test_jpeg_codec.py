"""perturb._jpeg, libjpeg-turbo's round trip without the entropy coding, against PIL's save and load."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vfmaudit.perturb._jpeg import jpeg_roundtrip, reciprocal


def pil_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


SHAPES = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 5), (4, 4), (5, 3), (6, 2), (9, 17), (16, 16), (17, 33), (37, 53)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_noise_of_every_edge_case_equals_pil_byte_for_byte(shape):
    # widths up to 4 take libjpeg's pixel-replicating up-sampling, odd sizes its edge repetition
    img = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for quality in (1, 5, 10, 25, 50, 75, 90, 95, 99, 100):
        out = np.empty_like(img)
        jpeg_roundtrip(img, quality, out)
        assert np.array_equal(out, pil_roundtrip(img, quality)), quality


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_photographs_equal_pil_byte_for_byte(name):
    from skimage import data

    img = np.ascontiguousarray(getattr(data, name)())
    for quality in (10, 50, 85, 100):
        out = np.empty_like(img)
        jpeg_roundtrip(img, quality, out)
        assert np.array_equal(out, pil_roundtrip(img, quality)), quality


def test_the_reciprocal_quantiser_is_the_rounded_division():
    # libjpeg-turbo's ((|t| + c) * f) >> r equals (|t| + d / 2) // d for every DCT output and divisor
    t = np.arange(0, 1 << 15, dtype=np.int64)
    for q in (1, 2, 3, 7, 16, 99, 128, 255):
        d = q << 3
        f, c, r = reciprocal(d)
        assert np.array_equal(((t + c) * f) >> r, (t + d // 2) // d), q
