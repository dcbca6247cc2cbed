"""The resize family's one-pass halving and doubling against OpenCV's two cv2.resize calls, byte for byte."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from vfmaudit import perturb
from vfmaudit.perturb._halve import halve_and_double, halves_exactly


def opencv_down_up(img: np.ndarray, scale: float = 0.5) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(img.shape)


def kernel(images: np.ndarray) -> np.ndarray:
    out = np.empty_like(images)
    halve_and_double(np.ascontiguousarray(images), out)
    return out


# widths and heights from the smallest (one small pixel) through ones that leave a SIMD tail in OpenCV's rows
SHAPES = [(2, 2), (2, 6), (6, 2), (4, 10), (10, 14), (16, 16), (30, 40), (34, 66), (64, 96), (100, 36),
          (224, 224), (256, 130), (512, 512)]


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("shape", SHAPES)
def test_noise_is_opencvs_bytes(shape, channels):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1] + channels)
    images = rng.integers(0, 256, (3, *shape, channels), dtype=np.uint8)
    expected = np.stack([opencv_down_up(img) for img in images])
    assert np.array_equal(kernel(images), expected)


@pytest.mark.parametrize("fill", ["black", "white", "checker", "stripes", "ramp"])
def test_extremes_are_opencvs_bytes(fill):
    # the values where floor(H / 4) and floor(3 H / 4) lose the most, and saturation at 255
    h, w = 48, 80
    yy, xx = np.mgrid[:h, :w]
    img = {"black": np.zeros((h, w)), "white": np.full((h, w), 255), "checker": 255 * ((yy + xx) % 2),
           "stripes": 255 * ((xx // 3) % 2), "ramp": (yy * w + xx) % 256}[fill]
    img = np.repeat(img[:, :, None], 3, axis=2).astype(np.uint8)
    img[::7, ::5, 1] = 1  # unequal channels
    assert np.array_equal(kernel(img[None])[0], opencv_down_up(img))


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_photographs_through_the_family(name):
    img = getattr(data, name)()
    img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
    assert halves_exactly(img.shape, (img.shape[1] // 2, img.shape[0] // 2))
    assert np.array_equal(perturb.apply(img, "resize", 0.5), opencv_down_up(img))


@pytest.mark.parametrize("shape", [(225, 224), (224, 225), (101, 99), (3, 3)])
def test_odd_sides_keep_the_opencv_path(shape):
    # an odd side has no exact half (round(112.5) is 112): OpenCV's general area filter, the same bytes
    img = np.random.default_rng(7).integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert not halves_exactly(img.shape, (round(shape[1] * 0.5), round(shape[0] * 0.5)))
    assert np.array_equal(perturb.apply(img, "resize", 0.5), opencv_down_up(img))


def test_other_scales_are_untouched():
    img = np.random.default_rng(8).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for scale in (0.25, 0.3, 0.7):
        assert np.array_equal(perturb.apply(img, "resize", scale), opencv_down_up(img, scale))


def test_two_threads_give_the_same_batch():
    batch = np.random.default_rng(9).integers(0, 256, (7, 40, 60, 3), dtype=np.uint8)
    before = perturb.get_num_threads()
    try:
        perturb.set_num_threads(1)
        one = perturb.apply(batch, "resize", 0.5)
        perturb.set_num_threads(2)
        two = perturb.apply(batch, "resize", 0.5)
    finally:
        perturb.set_num_threads(before)
    assert np.array_equal(one, two)
    assert np.array_equal(one, np.stack([opencv_down_up(img) for img in batch]))
