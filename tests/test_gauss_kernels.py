"""The generated Numba Gaussian passes behind ImageNet-C's gaussian and glass blur (imagenet_c/_gauss.py)
against SciPy's float64 gaussian_filter (what skimage.filters.gaussian, the original's call, runs)."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from scipy import ndimage

from reference import imagenet_c as ref
from vfmaudit.perturb import _gauss
from vfmaudit.perturb.families.imagenet_c._common import blur_truncated


def scipy_truncated(img: np.ndarray, sigma: float) -> np.ndarray:
    """The original's skimage call (tests/reference), gray images as one channel."""
    return ref.gaussian_blur(img, sigma) if img.ndim == 3 else ref.gaussian_blur(img[..., None], sigma)[..., 0]


SHAPES = [(1, 1, 3), (2, 5, 3), (17, 31, 3), (224, 224, 3), (100, 60), (50, 70, 4), (1, 9, 1), (31, 2, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_equals_scipy_up_to_rounding(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    for sigma in (0.1, 0.7, 2.5, 3.0, 5.99):  # 5.99: radius 24, the largest generated class
        ours = blur_truncated(img, sigma)
        assert ours.shape == img.shape and ours.dtype == np.uint8
        diff = np.abs(ours.astype(int) - scipy_truncated(img, sigma))
        assert diff.max() <= 1, (sigma, diff.max())
        if img.size >= 10_000:  # a value differs only where the exact blur lies within 2^-12 of an integer
            assert (diff > 0).mean() < 1e-3, (sigma, (diff > 0).mean())


def test_a_photograph_equals_scipy_up_to_rounding():
    from skimage import data

    img = np.ascontiguousarray(data.astronaut()[::2, ::2])  # 256 x 256, flat and saturated regions too
    for sigma in (1, 2, 3, 4, 6):
        diff = np.abs(blur_truncated(img, sigma).astype(int) - scipy_truncated(img, sigma))
        assert diff.max() <= 1 and (diff > 0).mean() < 2e-3, (sigma, (diff > 0).mean())


@pytest.mark.parametrize("sigma", [1, 2, 2.5, 3, 4, 6])
def test_a_flat_region_keeps_its_value(sigma):
    # float32 sums of a flat region fall a few ulps below it: without the guard, truncation would darken
    # a third of all flat values by one level (float64 SciPy keeps all but 0-7 of the 256 at these sigmas)
    flats = np.repeat(np.arange(256, dtype=np.uint8), 9 * 3).reshape(256, 9, 3)
    for v in range(256):
        img = np.ascontiguousarray(np.broadcast_to(flats[v], (9, 9, 3)))
        assert np.array_equal(blur_truncated(img, sigma), img), v


def test_the_radius_class_changes_no_bit():
    # a radius runs in the kernel of its class (rounded up to a multiple of 4) with the outer taps 0:
    # any class that covers it gives the same bits, at any rows per step
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 255, (41, 57)).astype(np.float32)
    sigma, radius = 2.2, 9  # int(4 * 2.2 + 0.5) = 9: classes 12 and 16 both cover it
    full = np.concatenate([_gauss.half_taps(sigma, radius)[::-1], _gauss.half_taps(sigma, radius)[1:]])
    expect_v = ndimage.correlate1d(src.astype(np.float64), full.astype(np.float64), axis=0, mode="nearest")
    expect_h = ndimage.correlate1d(src[:, :57].reshape(41, 19, 3).astype(np.float64), full.astype(np.float64),
                                   axis=1, mode="nearest").reshape(41, 57)
    by_class = {}
    for klass in (12, 16):
        w = _gauss.half_taps(sigma, klass)
        assert np.count_nonzero(w) == radius + 1
        for rows in (1, 2, 3):
            out = np.empty_like(src)
            _gauss.vertical_kernel(klass, rows)(src, w, out)
            by_class[klass, rows] = out
            np.testing.assert_allclose(out, expect_v, rtol=0, atol=1e-3)
        out = np.empty_like(src)
        _gauss.horizontal_kernel(klass, 3)(src[None], 57, w, np.float32(0), out)
        by_class[klass, "h"] = out
        np.testing.assert_allclose(out, expect_h, rtol=0, atol=1e-3)
    for key in ((1,), (2,), (3,), ("h",)):
        assert np.array_equal(by_class[(12,) + key], by_class[(16,) + key]), key
    # the fused pass too: the outer zero taps add exact zeros
    img = rng.integers(0, 256, (41, 19, 3), dtype=np.uint8)
    fused = []
    for klass in (12, 16):
        fused.append(np.empty_like(img))
        _gauss._fused(img, klass, _gauss.half_taps(sigma, klass), _gauss.FLAT_GUARD, fused[-1])
    assert np.array_equal(fused[0], fused[1])
    assert np.abs(fused[0].astype(int) - scipy_truncated(img, sigma)).max() <= 1
    # 1 and 2 rows per step sum alike; at 3, LLVM shares the product of a row and a tap between the first
    # and third output row (one rounding more than a fused multiply-add): float32 ulps, fixed per radius
    assert np.array_equal(by_class[12, 1], by_class[12, 2])


def test_beyond_the_largest_class_opencv_blurs_as_scipy():
    img = np.random.default_rng(5).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    assert int(4 * 7.0 + 0.5) > _gauss.MAX_RADIUS
    diff = np.abs(blur_truncated(img, 7.0).astype(int) - scipy_truncated(img, 7.0))
    assert diff.max() <= 1


def test_generated_kernels_are_written_once_and_fall_back_where_the_folder_is_unwritable(tmp_path, monkeypatch):
    text, digest = _gauss._module_text(_gauss.vertical_source(4, 2))
    name = f"test_vertical_{digest}_{os.getpid()}"
    monkeypatch.setenv("VFMAUDIT_KERNEL_CACHE", str(tmp_path / "kernels"))
    kernel = _gauss.load_generated(name, text, "vertical")
    path = tmp_path / "kernels" / f"{name}.py"
    assert path.read_text() == text
    mtime = path.stat().st_mtime_ns
    assert _gauss._write_module(tmp_path / "kernels", name, text) == path and path.stat().st_mtime_ns == mtime

    src = np.random.default_rng(0).uniform(0, 255, (9, 12)).astype(np.float32)
    w = _gauss.half_taps(1.0, 4)
    got, want = np.empty_like(src), np.empty_like(src)
    kernel(src, w, got)
    _gauss.vertical_kernel(4, 2)(src, w, want)
    assert np.array_equal(got, want)

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("VFMAUDIT_KERNEL_CACHE", str(blocker / "kernels"))  # mkdir under a file fails
    fallback_name = name + "_fallback"
    kernel = _gauss.load_generated(fallback_name, text, "vertical")
    kernel(src, w, got)
    assert np.array_equal(got, want)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    written = os.path.join(tempfile.gettempdir(), f"vfmaudit-kernels-{uid}", f"{fallback_name}.py")
    assert os.path.isfile(written)
    os.remove(written)


def test_the_kernel_folder_follows_the_environment(monkeypatch, tmp_path):
    from pathlib import Path

    monkeypatch.setenv("VFMAUDIT_KERNEL_CACHE", str(tmp_path / "k"))
    assert _gauss.kernel_dir() == tmp_path / "k"
    monkeypatch.delenv("VFMAUDIT_KERNEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _gauss.kernel_dir() == tmp_path / "xdg" / "vfmaudit" / "kernels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _gauss.kernel_dir() == tmp_path / "home" / ".cache" / "vfmaudit" / "kernels"

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert _gauss.kernel_dir() == _gauss._temp_kernel_dir()


def test_column_strips_change_no_bit_and_work_buffers_are_per_thread(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    wide = rng.integers(0, 256, (60, 1100, 3), dtype=np.uint8)  # at sigma 6: a 660 KB window of rows
    assert 4 * (2 + 2 * 24) * wide.shape[1] * 3 > _gauss.WINDOW_BYTES
    assert _gauss.column_strips(wide.reshape(60, -1), 24, 2).shape[0] > 1
    striped = _gauss.blur_truncated_numba(wide, 6.0)
    assert np.abs(striped.astype(int) - scipy_truncated(wide, 6.0)).max() <= 1
    monkeypatch.setattr(_gauss, "WINDOW_BYTES", 1 << 40)
    assert _gauss.column_strips(wide.reshape(60, -1), 24, 2).shape[0] == 1
    assert np.array_equal(_gauss.blur_truncated_numba(wide, 6.0), striped)
    monkeypatch.undo()

    # the work arrays are reused between calls and threads do not share them
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(64, 64, 3), (300, 200, 3), (17, 5)] * 4]
    alone = [_gauss.blur_truncated_numba(img, 6.0) for img in images]  # radius 24: the two passes' buffers
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda img: _gauss.blur_truncated_numba(img, 6.0), images))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together))
