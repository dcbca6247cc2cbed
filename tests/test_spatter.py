"""spatter's fused kernels against the same steps in numpy (the arithmetic vfmaudit ran before, written
from the original's): the liquid layer's law, the drops, the water tint and the mud blend, byte for
byte on the same layer; gray images take skimage's rgb2gray of the colour, as the original."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import stats

from vfmaudit.perturb.families.imagenet_c import _kernels, weather
from vfmaudit.perturb.families.imagenet_c.catalogue import BY_NAME
from vfmaudit.perturb.families.imagenet_c.noise import normal_quantiles


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return cv2.resize(data.coffee(), (200, 150), interpolation=cv2.INTER_AREA)


def _numpy_to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def test_the_liquid_layer_is_normal_with_the_tables_loc_and_scale():
    layer = _kernels.liquid_layer(np.uint64(3), (300, 400), 0.65, 0.3, normal_quantiles())
    assert layer.dtype == np.float32 and layer.shape == (300, 400)
    assert stats.kstest((layer.ravel().astype(np.float64) - 0.65) / 0.3, "norm").pvalue > 1e-3
    assert not np.array_equal(layer, _kernels.liquid_layer(np.uint64(4), (300, 400), 0.65, 0.3, normal_quantiles()))


@pytest.mark.parametrize("severity", [1, 2, 3])
def test_water_equals_numpys_steps_on_the_same_layer(photo, severity):
    p = BY_NAME["spatter"].table.at(float(severity))
    liquid = weather._gaussian(_kernels.liquid_layer(np.uint64(9), photo.shape[:2], p["loc"], p["scale"],
                                                     normal_quantiles()), p["sigma"])
    drops = np.empty(photo.shape[:2], np.uint8)
    _kernels.spatter_drops(liquid, p["threshold"], drops)
    zeroed = liquid.copy()
    zeroed[zeroed < p["threshold"]] = 0
    assert np.array_equal(drops, (zeroed * 255).astype(np.uint8)) and drops.any()
    dist = np.random.default_rng(0).integers(0, 256, photo.shape[:2]).astype(np.float32)
    out = np.empty_like(photo)
    _kernels.spatter_water(photo, drops, dist, p["intensity"], weather._WATER, out)
    m = drops.astype(np.float32) * dist
    m = m / m.max() * np.float32(p["intensity"])
    x = photo.astype(np.float32) * np.float32(1.0 / 255.0)
    assert np.array_equal(out, _numpy_to_uint8(x + m[..., None] * weather._WATER))


@pytest.mark.parametrize("severity", [4, 5])
def test_mud_equals_numpys_steps_on_the_same_layer(photo, severity):
    amount = float(BY_NAME["spatter"].table.at(float(severity))["amount"]) * 0.7  # a fading-in layer
    rng = np.random.default_rng(1)
    mask = rng.uniform(0, 1, photo.shape[:2]).astype(np.float32)
    out = np.empty_like(photo)
    _kernels.spatter_mud(photo, mask, amount, weather._MUD, out)
    m = mask.copy()
    m[m < 0.8] = 0
    m = m[..., None] * np.float32(amount)
    x = photo.astype(np.float32) * np.float32(1.0 / 255.0)
    assert np.array_equal(out, _numpy_to_uint8(x * (1 - m) + weather._MUD * m))


@pytest.mark.parametrize("severity", [2, 5])
def test_gray_images_take_the_luminance_of_the_colour(photo, severity):
    p = BY_NAME["spatter"].table.at(float(severity))
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    out = weather.spatter(gray, p, 5)
    assert out.shape == gray.shape and out.dtype == np.uint8 and not np.array_equal(out, gray)
    rgb = weather.spatter(np.repeat(gray[..., None], 3, axis=2), p, 5).astype(np.float64)
    luma = rgb @ np.array([0.2125, 0.7154, 0.0721])  # the blend is linear in the colour before clipping ...
    unclipped = ((rgb > 0) & (rgb < 255)).all(axis=2)  # ... so compare where no channel clipped
    assert unclipped.mean() > 0.5 and np.abs(out - luma)[unclipped].max() <= 1.5
    with pytest.raises(ValueError, match="gray or RGB"):
        weather.spatter(np.zeros((8, 8, 4), np.uint8), p, 0)
