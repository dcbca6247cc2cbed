"""ImageNet-C's defocus blur as disk run sums plus corrections (_disk.py) against the original's own
arithmetic: OpenCV's filter2D of img / 255 with the original's float32 kernel (tests/reference), on
photographs, flat images, gray and odd-sized images, at the original's radii and at the pixel-scaled
and fractional ones that only vfmaudit's continuous severities produce."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from reference import imagenet_c as ref
from vfmaudit.perturb.families.imagenet_c import _disk_kernel
from vfmaudit.perturb.families.imagenet_c._disk import apply_plan, defocus_disk, disk_plan, disk_reach, reference_kernel
from vfmaudit.perturb.families.imagenet_c.blur import defocus_blur, defocus_kernel

ORIGINAL = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)]
BEYOND = [(5.5, 0.5), (9.3, 0.5), (12, 1.0), (20, 1.0), (7, 0.0), (14, 0.0), (2.2, 0.3)]


def original(img: np.ndarray, radius: float, alias_blur: float) -> np.ndarray:
    """uint8(clip(filter2D(img / 255, kernel), 0, 1) * 255) with the original's float32 kernel, per channel."""
    kernel = defocus_kernel(radius, alias_blur)
    x = img / 255.0
    planes = [cv2.filter2D(np.ascontiguousarray(x[..., d]), -1, kernel) for d in range(x.shape[2])] \
        if x.ndim == 3 else [cv2.filter2D(x, -1, kernel)]
    out = np.stack(planes, axis=-1) if x.ndim == 3 else planes[0]
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def ours(img: np.ndarray, radius: float, alias_blur: float) -> np.ndarray:
    return defocus_disk(img, radius, alias_blur, float(defocus_kernel(radius, alias_blur).sum(dtype=np.float64)))


def _photo(size: tuple[int, int]) -> np.ndarray:
    from skimage import data

    return cv2.resize(data.chelsea(), size[::-1], interpolation=cv2.INTER_AREA)


def _assert_nearly_identical(a: np.ndarray, b: np.ndarray) -> None:
    # the sums are exact integers until the blur; float64 from there, as the original: a byte may differ
    # only where the exact value lies within 1e-12 of an integer (none did in these images)
    d = np.abs(a.astype(int) - b.astype(int))
    assert d.max() <= 1 and np.mean(d > 0) < 1e-4, (d.max(), np.mean(d > 0))


@pytest.mark.parametrize("radius,alias_blur", ORIGINAL + BEYOND)
def test_the_terms_add_up_to_the_originals_kernel(radius, alias_blur):
    """The plan's own check passed (it raises otherwise); the kernel it reproduces is the original's
    float32 kernel to float32 rounding, and the impulse response of the whole pipeline is that kernel."""
    kernel = defocus_kernel(radius, alias_blur)
    assert np.abs(reference_kernel(radius, alias_blur) - kernel).max() < 1e-7 * kernel.max() * 10
    plan = disk_plan(float(radius), float(alias_blur), float(kernel.sum(dtype=np.float64)))
    assert plan.half <= disk_reach(radius)
    size = 2 * plan.half + 9
    impulse = np.zeros((size, size), np.uint8)
    impulse[size // 2, size // 2] = 255
    response = ours(impulse, radius, alias_blur)
    assert np.array_equal(response, original(impulse, radius, alias_blur))
    if kernel.max() * 255 >= 1:  # else every weight truncates to 0
        k = kernel.shape[0] // 2
        inner = response[size // 2 - k: size // 2 + k + 1, size // 2 - k: size // 2 + k + 1]
        assert np.abs(inner.astype(int) - (kernel[::-1, ::-1] * 255).astype(np.uint8)).max() <= 1
        assert inner.sum() == response.sum() > 0  # nothing beyond the kernel's grid
    noise = np.random.default_rng(0).integers(0, 256, (size + 7, size + 3, 3), dtype=np.uint8)
    _assert_nearly_identical(ours(noise, radius, alias_blur), original(noise, radius, alias_blur))


@pytest.mark.parametrize("radius,alias_blur", ORIGINAL + BEYOND)
def test_photographs_equal_the_originals_filter2d(radius, alias_blur):
    for shape in [(224, 224), (131, 200), (512, 384)]:
        img = _photo(shape)
        _assert_nearly_identical(ours(img, radius, alias_blur), original(img, radius, alias_blur))


@pytest.mark.parametrize("radius,alias_blur", ORIGINAL)
def test_against_the_reference_module_and_on_gray_and_flat_images(radius, alias_blur):
    img = _photo((224, 224))
    _assert_nearly_identical(ours(img, radius, alias_blur), ref.defocus_blur(img, (radius, alias_blur)))
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    _assert_nearly_identical(ours(gray, radius, alias_blur), original(gray, radius, alias_blur))
    # a flat image lands where the original's does: its kernel's float32 sum is not 1 (the grid's
    # reflection adds mass at radius 8 and 10), and the original truncates
    for level in (0, 1, 117, 200, 255):
        flat = np.full((64, 80, 3), level, np.uint8)
        assert np.array_equal(ours(flat, radius, alias_blur), original(flat, radius, alias_blur)), level


def test_small_images_go_to_opencv_and_the_family_uses_the_disk_above():
    p = {"radius": 10.0, "alias_blur": 0.5}
    tiny = _photo((12, 40))  # 12 rows: the border would reflect more than once
    assert min(tiny.shape[:2]) <= disk_reach(10.0)
    assert np.array_equal(defocus_blur(tiny, p, 0), original(tiny, 10.0, 0.5))
    img = _photo((100, 90))
    assert np.array_equal(defocus_blur(img, p, 0), ours(img, 10.0, 0.5))
    _assert_nearly_identical(defocus_blur(img, p, 0), original(img, 10.0, 0.5))


def _top_group_as_taps(plan, group: int):
    """The plan with one weight group of its top and bottom runs written as single taps instead: each run
    of half-width w at row k, blurred across by the plan's Gaussian, is 2 (w + h) + 1 taps of that row."""
    h = (plan.gauss.size - 1) // 2
    taps = {(int(r), int(c)): float(w) for (r, c), w in zip(plan.taps, plan.taps_w)}
    keep = plan.top[:, 5] != group
    for a, b, w, paired, sign, grp in plan.top[~keep]:
        for row in (a, b) if paired else (a,):
            for col in range(-w - h, w + h + 1):
                weight = sum(plan.gauss[col - x + h] for x in range(-w, w + 1) if abs(col - x) <= h)
                taps[(int(row), col)] = taps.get((int(row), col), 0.0) + sign * plan.top_w[grp] * weight
    top = plan.top[keep].copy()
    top[:, 5] = np.unique(top[:, 5], return_inverse=True)[1].reshape(-1)
    return dataclasses.replace(plan, top=top, top_w=plan.top_w[np.unique(plan.top[keep, 5])],
                               taps=np.array(list(taps), np.int64).reshape(-1, 2),
                               taps_w=np.array(list(taps.values()), np.float64))


@pytest.mark.parametrize("group", [0, 1])
def test_single_taps_give_the_same_blur_as_the_runs_they_replace(group):
    """No grid of the original leaves single taps, so the generated code's tap path is checked by
    moving a group of top runs into taps: the same kernel, another path through the code (with top
    runs left beside the taps, and, for group 1 of radius 10's two, both paths at once)."""
    radius, blur = 10.0, 0.5
    plan = disk_plan(radius, blur, float(defocus_kernel(radius, blur).sum(dtype=np.float64)))
    assert plan.top_w.size == 2 and plan.taps.shape[0] == 0
    moved = _top_group_as_taps(plan, group)
    assert moved.taps.shape[0] > 0 and _disk_kernel.plan_shape(moved).taps
    img = _photo((131, 200))
    _assert_nearly_identical(apply_plan(img, moved), apply_plan(img, plan))
    _assert_nearly_identical(apply_plan(img, moved), original(img, radius, blur))
    all_taps = _top_group_as_taps(_top_group_as_taps(plan, group), 0)
    assert all_taps.top.shape[0] == 0  # taps and no top runs: the third path
    _assert_nearly_identical(apply_plan(img, all_taps), original(img, radius, blur))


def test_the_generated_kernel_depends_on_the_plans_shape_only():
    """The original's five severities compile a few kernels; a shape's source is deterministic, and
    plans of one shape (offsets and weights apart) share it."""
    shapes = {_disk_kernel.plan_shape(disk_plan(float(r), float(b), 1.0)) for r, b in ORIGINAL}
    assert len(shapes) <= len(ORIGINAL)
    for shape in shapes:
        assert _disk_kernel.kernel_source(shape) == _disk_kernel.kernel_source(shape)
        compile(_disk_kernel.kernel_source(shape), "<defocus>", "exec")
    a, b = disk_plan(4.0, 0.5, 1.0), disk_plan(4.2, 0.3, 1.0)  # other widths and taps, one shape
    assert not np.array_equal(a.rows, b.rows) and not np.array_equal(a.gauss, b.gauss)
    assert _disk_kernel.kernel(_disk_kernel.plan_shape(a)) is _disk_kernel.kernel(_disk_kernel.plan_shape(b))
    img = _photo((64, 72))
    _assert_nearly_identical(ours(img, 4.2, 0.3), original(img, 4.2, 0.3))


@pytest.mark.parametrize("radius,alias_blur", [(10, 0.5), (3, 0.1), (12, 1.0)])
def test_the_16_bit_sums_equal_the_int32_path(radius, alias_blur):
    """Prefix sums and bands are kept modulo 2^16 and summed in 16-bit parts where every part is below
    2^16 (grids up to radius 128); larger grids take int32. Both paths give the same bytes."""
    plan = disk_plan(float(radius), float(alias_blur), float(defocus_kernel(radius, alias_blur).sum(dtype=np.float64)))
    shape = _disk_kernel.plan_shape(plan)
    assert shape.runs_per_uint16 > 1
    wide = dataclasses.replace(shape, runs_per_uint16=0)
    assert "uint16" in _disk_kernel.kernel_source(shape) and "int16" not in _disk_kernel.kernel_source(wide)
    for img in (_photo((131, 200)), np.full((60, 70, 3), 255, np.uint8)):  # white: the largest sums
        assert np.array_equal(apply_plan(img, plan, wide), apply_plan(img, plan))
