"""ImageNet-C's defocus blur without the 2-D convolution: the aliased-disk kernel is a disk of equal
weights, Gaussian-blurred (3x3 or 5x5) on its own grid with OpenCV's reflecting border, so the image's
convolution with it is (a) the disk's sum, one run per row from each row's integer prefix sum (exact),
blurred by the small separable Gaussian, plus (b) the few corrections where the kernel's grid cuts the
blur or reflects it: near the disk's top and bottom, horizontal runs weighted per row; near its left
and right, vertical runs (centred bands of rows summed down, kept as rows enter and leave) weighted
per column: the top's terms transposed. Corrections with equal or opposite weights share one multiply.
`disk_plan` derives the terms from the kernel's construction and checks that they add up to it;
`_disk_kernel` writes the code that evaluates them for the plan's shape.

Why: OpenCV's filter2D works through the whole 17x17 or 21x21 grid per channel, whatever the disk's
radius; here the cost is about two integer loads per disk row and correction run and ten float
operations per value.

The kernel as the original builds it (make_imagenet_c.py, `defocus_kernel` in blur.py): K = W (g (x) g)
* ext(D), D the disk's indicator over the grid -R..R normalised by its count N, ext the reflection by
h = ksize // 2 cells (BORDER_REFLECT_101), W the grid's window. Per row rho of D (a run of half-width
w_rho), K = sum_w C_w (x) q_w, C_w the grid's reflect-blur-truncate of the rows of class w and q_w the
same of the run: each is its untruncated Gaussian (main term) plus a correction, and
main (x) main summed over the classes is the disk's sum blurred. The product of two corrections (a row
that is both near the top and wide) needs a disk wider than 1.4 (R - h): never on the original's grids;
it is kept as single taps if a grid ever has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import cv2
import numpy as np

from vfmaudit.perturb.families.imagenet_c._common import output_for
from vfmaudit.perturb.families.imagenet_c._disk_kernel import PlanShape, kernel, plan_shape


@dataclass(frozen=True)
class DiskPlan:
    """The terms of one kernel; offsets in grid cells from the centre, weights in units of the
    disk's equal weight 1/N."""

    half: int  # R + h: the farthest offset any term reads
    gauss: np.ndarray  # (2h + 1,) float64: OpenCV's Gaussian taps
    # terms at mirrored offsets +-k with equal weights come in pairs (a, b, ..., paired): their integer
    # sums are added before the one multiply. Corrections whose
    # weights are equal or opposite form a group (sign +-1 against the group's weight, entries sorted by
    # group): one integer sum per group, one multiply
    rows: np.ndarray  # (k, 4) int64: (row a, row b, half-width, paired) of the non-empty disk rows
    top: np.ndarray  # (m, 6) int64: (row a, row b, half-width, paired, sign, group) of the horizontal ...
    top_w: np.ndarray  # ... correction runs; (groups,) float64: the groups' weights (sums then blurred across)
    side_rows: np.ndarray  # (r, 3) int64: (band, first row, last row): the bands of rows summed down ...
    side: np.ndarray  # ... (n, 6) int64: (band, column a, column b, paired, sign, group) of the vertical ...
    side_w: np.ndarray  # ... correction runs; (groups,) float64: the groups' weights (sums then blurred down)
    taps: np.ndarray  # (s, 2) int64: (row, column) offsets of single taps left over (none so far) ...
    taps_w: np.ndarray  # ... (s,) float64
    scale: float  # 1 / N, times the original kernel's float32 sum over the exact one (see disk_plan)


def _grid(radius: float) -> tuple[int, int]:
    """(R, h) of make_imagenet_c.py: grid -8..8 with a 3x3 blur up to radius 8, else -ceil(r)..ceil(r), 5x5."""
    return (8, 1) if radius <= 8 else (math.ceil(radius), 2)


def disk_reach(radius: float) -> int:
    """The farthest offset the terms of a kernel of this radius read (R + h)."""
    R, h = _grid(radius)
    return R + h


def _reflect(i: int, R: int) -> int:
    """BORDER_REFLECT_101 of an offset one blur radius past the grid -R..R."""
    return i if abs(i) <= R else int(math.copysign(2 * R - abs(i), i))


def _truncated_blur(member: np.ndarray, g: np.ndarray, R: int, h: int) -> np.ndarray:
    """What the grid does to a set of cells along one axis (member: (2R + 1,) 0/1): reflect by h,
    blur with g, keep -R..R. Returned over -R-h..R+h (zero outside the grid)."""
    out = np.zeros(2 * (R + h) + 1)
    for k in range(-R, R + 1):
        out[k + R + h] = sum(g[k - m + h] for m in range(k - h, k + h + 1) if member[_reflect(m, R) + R])
    return out


def _main_blur(member: np.ndarray, g: np.ndarray, R: int, h: int) -> np.ndarray:
    """The same cells blurred with g and nothing cut: over -R-h..R+h."""
    out = np.zeros(2 * (R + h) + 1)
    for i in np.flatnonzero(member):  # cell i - R, its blur over i - R - h..i - R + h
        out[i: i + 2 * h + 1] += g
    return out


def _mirror_pairs(terms: list[tuple[int, int, float]]) -> list[tuple[int, int, int, int, float]]:
    """(offset, key, weight) terms as (a, b, key, paired, weight): +k and -k of one key with equal
    weights (to 1e-15 of the weight; the kernel is symmetric) are one pair."""
    weight = {(k, key): wt for k, key, wt in terms}
    out = []
    for (k, key), wt in weight.items():
        other = weight.get((-k, key))
        if k > 0 and other is not None and abs(other - wt) <= 1e-15 * abs(wt):
            out.append((k, -k, key, 1, wt))
        elif k == 0 or other is None or abs(other - wt) > 1e-15 * abs(wt):
            out.append((k, k, key, 0, wt))
    return out


def _weight_groups(terms: list[tuple[int, int, int, int, float]]) -> tuple[list[tuple[int, ...]], np.ndarray, float]:
    """(a, b, key, paired, weight) terms as (a, b, key, paired, sign, group), sorted by group, the groups'
    weights, and the largest change of a weight this makes: terms whose weights are equal or opposite to
    1e-9 of the weight (sums of the same Gaussian taps in another order) share a group."""
    weights: list[float] = []
    out = []
    drift = 0.0
    for a, b, key, paired, wt in terms:
        grp = next((i for i, c in enumerate(weights) if abs(abs(wt) - abs(c)) <= 1e-9 * abs(c)), len(weights))
        if grp == len(weights):
            weights.append(wt)
        sign = 1 if wt * weights[grp] > 0 else -1
        drift = max(drift, abs(wt - sign * weights[grp]))
        out.append((a, b, key, paired, sign, grp))
    return sorted(out, key=lambda t: t[5]), np.array(weights, np.float64), drift


def reference_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The original's kernel in float64 arithmetic: ext(D) blurred, on the grid."""
    R, h = _grid(radius)
    grid = np.arange(-R, R + 1)
    disk = ((grid[None, :] ** 2 + grid[:, None] ** 2) <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    if alias_blur <= 0:
        return disk
    g = cv2.getGaussianKernel(2 * h + 1, alias_blur, cv2.CV_64F)[:, 0]
    ext = np.pad(disk, h, mode="reflect")  # numpy's 'reflect' is OpenCV's REFLECT_101
    out = np.zeros_like(disk)
    for u in range(2 * h + 1):
        for v in range(2 * h + 1):
            out += g[u] * g[v] * ext[u: u + disk.shape[0], v: v + disk.shape[1]]
    return out


@lru_cache(maxsize=64)
def disk_plan(radius: float, alias_blur: float, original_sum: float) -> DiskPlan:
    """The terms of the defocus kernel of (radius, alias_blur), checked to sum to reference_kernel
    (to 1e-12 of its largest weight). original_sum: the sum of the original's float32 kernel, which
    differs from 1 in its last bits; scaling by it makes a flat region land on the same side of an
    integer as the original's (which truncates), instead of either side by chance."""
    R, h = _grid(radius)
    if alias_blur <= 0:
        h = 0
    g = cv2.getGaussianKernel(2 * h + 1, alias_blur, cv2.CV_64F)[:, 0] if h else np.ones(1)
    grid = np.arange(-R, R + 1)
    disk = (grid[None, :] ** 2 + grid[:, None] ** 2) <= radius ** 2
    count = int(disk.sum())
    width = {int(r): int(disk[r + R].sum() // 2) for r in grid if disk[r + R].any()}  # rows: centred runs
    half = R + h
    span = 2 * half + 1
    built = np.zeros((span, span))  # the terms' kernel, over -half..half, in units of 1/N

    def add_run(row: int, w: int, weight: float, blur_rows: bool) -> None:
        line = weight * _main_blur(np.abs(grid) <= w, g, R, h)
        if blur_rows:
            for u in range(-h, h + 1):
                built[row + u + half] += g[u + h] * line
        else:
            built[row + half] += line

    for r, w in width.items():
        add_run(r, w, 1.0, True)
    top, by_band = [], {}
    for w in sorted(set(width.values())):
        rows_of_w = np.isin(grid, [r for r, v in width.items() if v == w])
        run = np.abs(grid) <= w
        vertical = _truncated_blur(rows_of_w, g, R, h) - _main_blur(rows_of_w, g, R, h)
        horizontal = _truncated_blur(run, g, R, h) - _main_blur(run, g, R, h)
        for k in np.flatnonzero(np.abs(vertical) > 1e-15) - half:  # near the top and bottom
            top.append((int(k), w, float(vertical[k + half])))
            add_run(k, w, vertical[k + half], False)
        # near the left and right: the rows of width w are the band |r| <= outer less the band of the wider
        # rows, |r| <= inner (a disk narrows away from its centre), so their vertical runs are two centred
        # ones, and the terms of all widths merge per (column, band): the top's terms transposed
        outer = max(abs(r) for r, v in width.items() if v == w)
        inner = max((abs(r) for r, v in width.items() if v > w), default=-1)
        if sorted(r for r, v in width.items() if v >= w) != list(range(-outer, outer + 1)):
            raise AssertionError(f"the rows of width >= {w} are not a centred band (radius {radius})")
        for k in np.flatnonzero(np.abs(horizontal) > 1e-15) - half:
            for band, sign in ((outer, 1.0), (inner, -1.0)) if inner >= 0 else ((outer, 1.0),):
                by_band[(int(k), band)] = by_band.get((int(k), band), 0.0) + sign * horizontal[k + half]
    largest = max((abs(v) for v in by_band.values()), default=0.0)
    side_terms = [(k, band, v) for (k, band), v in sorted(by_band.items()) if abs(v) > 1e-13 * largest]
    bands = sorted({band for _, band, _ in side_terms})
    for k, band, v in side_terms:
        for r in range(-band, band + 1):
            built[r - h + half: r + h + 1 + half, k + half] += v * g
    side_rows = [(i, -band, band) for i, band in enumerate(bands)]
    side = [(k, bands.index(band), v) for k, band, v in side_terms]
    target = np.pad(reference_kernel(radius, alias_blur) * count, half - R)
    left = target - built  # products of two corrections, if any grid had them
    taps = np.argwhere(np.abs(left) > 1e-12 * target.max())
    built[tuple(taps.T)] += left[tuple(taps.T)]
    if np.abs(target - built).max() > 1e-12 * target.max():
        raise AssertionError(f"defocus terms do not add up to the kernel (radius {radius}, blur {alias_blur})")
    exact_sum = float(target.sum()) / count
    rows = _mirror_pairs([(r, w, 1.0) for r, w in width.items()])
    top, top_w, top_drift = _weight_groups(_mirror_pairs(top))
    side, side_w, side_drift = _weight_groups(_mirror_pairs(side))
    # a grouped weight moves each term's cells by at most its drift
    if max(top_drift, side_drift) * (len(top) + len(side)) > 1e-13 * target.max():
        raise AssertionError(f"defocus weight groups move the kernel (radius {radius}, blur {alias_blur})")
    return DiskPlan(
        half=half, gauss=g, rows=np.array([t[:4] for t in rows], np.int64).reshape(-1, 4),
        top=np.array(top, np.int64).reshape(-1, 6), top_w=top_w,
        side_rows=np.array(side_rows, np.int64).reshape(-1, 3),
        side=np.array([(t[2], t[0], t[1], t[3], t[4], t[5]) for t in side], np.int64).reshape(-1, 6),
        side_w=side_w,
        taps=(taps - half).astype(np.int64).reshape(-1, 2), taps_w=left[tuple(taps.T)].astype(np.float64),
        scale=original_sum / exact_sum / count)


def defocus_disk(img: np.ndarray, radius: float, alias_blur: float, original_sum: float,
                 out: np.ndarray | None = None) -> np.ndarray:
    """uint8(clip(filter2D(img / 255, kernel), 0, 1) * 255) for the original's defocus kernel, with
    OpenCV's reflecting border; for images larger than the kernel's reach (the caller falls back to
    OpenCV below it). Into out (C-contiguous, img's shape) where given."""
    plan, compiled = _planned(float(radius), float(alias_blur), float(original_sum))
    return apply_plan(img, plan, compiled=compiled, out=out)


@lru_cache(maxsize=64)
def _planned(radius: float, alias_blur: float, original_sum: float) -> tuple[DiskPlan, Callable]:
    # the plan and its kernel, looked up once: the shape's tuples cost microseconds under the GIL per image
    plan = disk_plan(radius, alias_blur, original_sum)
    return plan, kernel(plan_shape(plan))


def apply_plan(img: np.ndarray, plan: DiskPlan, shape: PlanShape | None = None,
               compiled: Callable | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """The plan's terms over an (H, W) or (H, W, C) uint8 image larger than plan.half, reflected at the
    border, by the kernel of the plan's shape (or of `shape`, one the plan fits: tests run the int32 path)."""
    x = img if img.ndim == 3 else img[:, :, None]
    hgt, wdt, ch = x.shape
    p = plan.half
    pad = cv2.copyMakeBorder(np.ascontiguousarray(x), p, p, p, p, cv2.BORDER_REFLECT_101)
    pad = pad.reshape(hgt + 2 * p, (wdt + 2 * p) * ch)
    out = output_for(img, out)
    run = compiled or kernel(shape or plan_shape(plan))
    run(pad, ch, hgt, wdt, p, plan.gauss, plan.rows, plan.top, plan.top_w, plan.side_rows,
        plan.side, plan.side_w, plan.taps, plan.taps_w, plan.scale, out.reshape(hgt, wdt * ch))
    return out
