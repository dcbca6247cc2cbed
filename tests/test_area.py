"""OpenCV's INTER_AREA at non-integer factors (vfmaudit.perturb._area) against cv2 itself, byte for byte."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from vfmaudit import perturb
from vfmaudit.perturb._area import area_is_general, horizontal_plan, resize_area

SHAPES = [(224, 224), (512, 512), (17, 31), (100, 75), (3, 5), (300, 200), (224, 300), (2, 9), (1, 40)]
LEVELS = (0.1, 0.25, 0.33, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 0.95)


def _images(h: int, w: int, channels: int) -> list[np.ndarray]:
    rng = np.random.default_rng(h * 1000 + w + channels)
    photo = cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA)
    photo = np.concatenate([photo, photo[..., :1]], axis=-1)[..., :channels]
    images = [rng.integers(0, 256, (h, w, channels), dtype=np.uint8), np.ascontiguousarray(photo),
              np.full((h, w, channels), 255, np.uint8), (np.indices((h, w)).sum(0) % 2 * 255).astype(np.uint8)[..., None]
              .repeat(channels, -1)]
    return [im[..., 0] if channels == 1 else im for im in images]


def _small(h: int, w: int, level: float) -> tuple[int, int]:
    return max(1, round(w * level)), max(1, round(h * level))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_resize_area_is_opencvs_general_area_filter(shape, channels):
    checked = 0
    for img in _images(*shape, channels):
        for level in LEVELS:
            small = _small(*shape, level)
            if not area_is_general(img.shape, small):
                continue
            expected = cv2.resize(img, small, interpolation=cv2.INTER_AREA)
            assert np.array_equal(resize_area(img, small), expected), (shape, channels, level, small)
            checked += 1
    assert checked > 0


def test_integer_factors_are_left_to_opencvs_fast_path():
    # OpenCV's fast path decides on 1 / (dst / src) within DBL_EPSILON of an integer, on both axes
    assert not area_is_general((224, 224, 3), (112, 112))
    assert not area_is_general((300, 200, 3), (20, 30))  # 10 exactly on both
    assert not area_is_general((7, 5, 3), (1, 1))
    assert area_is_general((224, 224, 3), (90, 90))
    assert not area_is_general((224, 300, 3), (150, 112))  # 2 on both axes of a non-square image
    assert area_is_general((224, 224, 3), (112, 90))  # integer on one axis only: the general path
    assert not area_is_general((10, 10, 3), (20, 5))  # an enlargement on one axis is not an area shrink


def test_padding_terms_weigh_nothing_and_read_inside_the_row():
    index, weight = horizontal_plan(224, 90, 3)
    assert index.min() >= 0 and index.max() < 224 * 3
    assert np.all(weight >= 0)
    # each destination's weights sum to 1 up to float32 rounding: the cell is covered once
    assert np.allclose(weight.sum(axis=1), 1.0, atol=1e-5)


def test_non_contiguous_input_and_out_argument():
    img = _images(64, 48, 3)[1]
    view = img[:, ::-1][:, ::-1]  # same pixels, negative strides twice: a view, not a copy
    flipped = np.ascontiguousarray(img[::-1])[::-1]
    out = np.zeros((26, 19, 3), np.uint8)
    expected = cv2.resize(img, (19, 26), interpolation=cv2.INTER_AREA)
    assert resize_area(view, (19, 26), out=out) is out and np.array_equal(out, expected)
    assert np.array_equal(resize_area(flipped, (19, 26)), expected)


@pytest.mark.parametrize("shape", [(224, 224), (150, 200), (33, 47)])
@pytest.mark.parametrize("level", [0.13, 0.25, 0.4, 0.5, 0.55, 0.6, 0.8, 0.97])  # 0.25, 0.5: integer factors too
def test_the_resize_family_is_opencvs_area_then_linear(shape, level):
    h, w = shape
    batch = np.stack(_images(h, w, 3)[:2])
    small = _small(h, w, level)
    expected = np.stack([cv2.resize(cv2.resize(im, small, interpolation=cv2.INTER_AREA), (w, h),
                                    interpolation=cv2.INTER_LINEAR) for im in batch])
    assert np.array_equal(perturb.apply(batch, "resize", level), expected)
