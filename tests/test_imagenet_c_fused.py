"""The ImageNet-C kernels that go from uint8 to uint8 in one pass (brightness, saturate, frost) against
the float arithmetic they fuse, written out in numpy: the bytes must be the same, on photographs and
on the extremes (black, white, grey pixels)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vfmaudit.perturb.families.imagenet_c import _kernels
from vfmaudit.perturb.families.imagenet_c.catalogue import BY_NAME


def _images() -> list[np.ndarray]:
    from skimage import data

    photos = [cv2.resize(f(), (160, 120), interpolation=cv2.INTER_AREA) for f in (data.astronaut, data.coffee)]
    rng = np.random.default_rng(0)
    edges = np.zeros((4, 8, 3), np.uint8)
    edges[1] = 255
    edges[2] = 128  # grey pixels: saturation 0
    edges[3] = rng.integers(0, 256, (8, 3))
    return photos + [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8), edges]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_brightness_is_the_value_shift_in_float32_inputs_and_float64_steps(severity):
    shift = float(BY_NAME["brightness"].table.at(float(severity))["c"])
    for img in _images():
        x = img.astype(np.float32) * np.float32(1.0 / 255.0)
        v = x.max(axis=2, keepdims=True).astype(np.float64)
        nv = np.clip(v + shift, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(v > 0, x * (nv / np.where(v > 0, v, 1.0)), nv).astype(np.float32)
        out = np.empty_like(img)
        _kernels.hsv_value_shift(img, shift, out)
        assert np.array_equal(out, _to_uint8(scaled))


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_saturate_is_the_saturation_affine_in_float64(severity):
    p = BY_NAME["saturate"].table.at(float(severity))
    for img in _images():
        x = img / 255.0
        v, m = x.max(axis=2, keepdims=True), x.min(axis=2, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(v > 0, (v - m) / np.where(v > 0, v, 1.0), 0.0)
            ns = np.clip(s * p["gain"] + p["offset"], 0.0, 1.0)
            k = ns / np.where(s > 0, s, 1.0)
        coloured = v - k * (v - x)
        grey = np.concatenate([v, v * (1.0 - ns), v * (1.0 - ns)], axis=2)  # skimage: hue 0 (red)
        expected = np.where(v <= 0, 0.0, np.where(v - m <= 0, grey, coloured))
        out = np.empty_like(img)
        _kernels.hsv_saturation_affine(img, float(p["gain"]), float(p["offset"]), out)
        assert np.array_equal(out, _to_uint8(expected))


def test_frost_blend_is_the_float32_sum_of_image_and_texture():
    rng = np.random.default_rng(1)
    texture = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    for img in _images()[2:]:
        h, w = img.shape[:2]
        for a, b in [(1.0, 0.4), (0.8, 0.6), (0.7, 0.7)]:
            out = np.empty_like(img)
            _kernels.frost_blend(img, texture, 5, 9, a, b, out)
            patch = texture[5:5 + h, 9:9 + w].astype(np.float32)
            expected = np.clip(np.float32(a) * img.astype(np.float32) + np.float32(b) * patch, 0, 255).astype(np.uint8)
            assert np.array_equal(out, expected)


def test_the_cheap_draws_are_uniform_and_independent():
    """draw_index (frost's texture and crop) against the uniform law: chi-square over 20,000 seeds, and
    draws 0 and 1 of a seed uncorrelated."""
    from scipy import stats

    from vfmaudit.perturb.families.imagenet_c._common import draw_index

    seeds = range(20_000)
    first = np.array([draw_index(s, 0, 5) for s in seeds])
    second = np.array([draw_index(s, 1, 7) for s in seeds])
    assert first.min() == 0 and first.max() == 4 and second.max() == 6
    assert stats.chisquare(np.bincount(first, minlength=5)).pvalue > 1e-3
    assert stats.chisquare(np.bincount(second, minlength=7)).pvalue > 1e-3
    joint = np.bincount(first * 7 + second, minlength=35).reshape(5, 7)
    assert stats.chi2_contingency(joint).pvalue > 1e-3
    assert draw_index(3, 0, 1000) == draw_index(3, 0, 1000) and draw_index(2 ** 64 - 1, 5, 10) in range(10)
