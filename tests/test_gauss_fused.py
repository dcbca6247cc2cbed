"""The fused one-pass Gaussian of _gauss (the everyday gaussian_blur family) against SciPy's float64
separable correlation with the same taps, rounded to nearest."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vfmaudit import perturb
from vfmaudit.perturb import _gauss


def scipy_rounded(img: np.ndarray, sigma: float, truncate: float = 3.5) -> np.ndarray:
    """The exact blur (float64, edge pixels repeated) of the taps of radius int(truncate sigma + 0.5),
    rounded to nearest."""
    radius = _gauss.gaussian_radius(sigma, truncate)
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (k / sigma) ** 2)
    taps /= taps.sum()
    out = ndimage.correlate1d(img.astype(np.float64), taps, axis=0, mode="nearest")
    out = ndimage.correlate1d(out, taps, axis=1, mode="nearest")
    return np.floor(out + 0.5).astype(int)


SHAPES = [(1, 1, 3), (2, 5, 3), (3, 40, 3), (17, 31, 3), (224, 224, 3), (61, 7, 3), (9, 2, 1), (40, 33, 4)]
SIGMAS = [0.1, 0.3, 0.7, 1.0, 2.0, 2.5, 3.3, 4.0]  # radius 0 (a copy) to 14, 4 to 3 rows per step


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_the_fused_blur_equals_the_float64_blur_rounded(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    for sigma in SIGMAS if shape[-1] == 3 else (0.7, 2.5):  # each radius and channel count compiles once
        out = np.empty_like(img)
        _gauss.blur_rounded(img, sigma, out)
        diff = np.abs(out.astype(int) - scipy_rounded(img, sigma))
        assert diff.max() <= 1, (sigma, diff.max())
        if img.size >= 10_000:  # float32 sums differ from float64 only next to a tie at k + 1/2
            assert (diff > 0).mean() < 1e-3, (sigma, (diff > 0).mean())


def test_flat_images_keep_their_value_and_a_photograph_its_blur():
    from skimage import data

    flat = np.repeat(np.arange(256, dtype=np.uint8), 12 * 3).reshape(256, 12, 3)
    for sigma in (0.7, 2.0, 4.0):
        out = np.empty_like(flat)
        _gauss.blur_rounded(flat, sigma, out)  # each row one value: blurred along x it stays, along y it mixes
        assert np.array_equal(out, scipy_rounded(flat, sigma)), sigma
        photo = data.astronaut()
        diff = np.abs(perturb.apply(photo, "gaussian_blur", sigma).astype(int) - scipy_rounded(photo, sigma))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (sigma, (diff > 0).mean())


def test_rows_per_step_do_not_change_the_sum():
    # the last step of a pass moves up to end at the last row, and rows per step only share loads:
    # any number of rows gives the blur (1 and 2 the same bits; 3 and 4 may contract a product once more)
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (23, 19 * 3), dtype=np.uint8)
    radius = 5
    w = _gauss.half_taps(1.5, radius, 3.5)
    outs = {}
    for rows in (1, 2, 3, 4):
        text, digest = _gauss._module_text(_gauss.fused_source(radius, 3, rows))
        kernel = _gauss.load_generated(f"test_fused_r{radius}_b{rows}_{digest}", text, "fused")
        outs[rows] = np.empty_like(img)
        kernel(img, w, np.float32(0.5), outs[rows])
        assert np.abs(outs[rows].astype(int) - scipy_rounded(img.reshape(23, 19, 3), 1.5).reshape(23, -1)).max() <= 1
    assert np.array_equal(outs[1], outs[2])
    assert _gauss.rows_per_step(7) == 4 and _gauss.rows_per_step(14) == 3 and _gauss.rows_per_step(24) == 2


def test_the_batch_on_threads_equals_image_by_image():
    rng = np.random.default_rng(2)
    batch = rng.integers(0, 256, (7, 45, 38, 3), dtype=np.uint8)
    alone = np.stack([scipy_rounded(img, 1.7) for img in batch])
    before = perturb.get_num_threads()
    try:
        perturb.set_num_threads(2)
        together = perturb.apply(batch, "gaussian_blur", 1.7)
    finally:
        perturb.set_num_threads(before)
    assert np.abs(together.astype(int) - alone).max() <= 1
    assert np.array_equal(together, np.stack([perturb.apply(img, "gaussian_blur", 1.7) for img in batch]))
