"""ImageNet-C's defocus blur without the 2-D convolution: the aliased-disk kernel is a disk of equal
weights, Gaussian-blurred (3x3 or 5x5) on its own grid with OpenCV's reflecting border, so the image's
convolution with it is (a) the disk's sum, one run per row from each row's integer prefix sum (exact),
blurred by the small separable Gaussian, plus (b) the few corrections where the kernel's grid cuts the
blur or reflects it: near the disk's top and bottom, horizontal runs weighted per row; near its left
and right, vertical runs (a column prefix sum) weighted per column, the same terms transposed.
`disk_plan` derives the terms from the kernel's construction and checks that they add up to it.

Why: OpenCV's filter2D works through the whole 17x17 or 21x21 grid per channel, whatever the disk's
radius; here the cost is about two integer operations per disk row and ten float ones per value.

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

import cv2
import numpy as np
from numba import njit

from vfmaudit.perturb.families.imagenet_c._kernels import prefix_row


@dataclass(frozen=True)
class DiskPlan:
    """The terms of one kernel; offsets in grid cells from the centre, weights in units of the
    disk's equal weight 1/N."""

    half: int  # R + h: the farthest offset any term reads
    gauss: np.ndarray  # (2h + 1,) float64: OpenCV's Gaussian taps
    # terms at mirrored offsets +-k with equal weights come in pairs (a, b, ..., paired): their integer
    # sums are added before the one multiply, and each accumulator pass serves both
    rows: np.ndarray  # (k, 4) int64: (row a, row b, half-width, paired) of the non-empty disk rows
    top: np.ndarray  # (m, 4) int64: (row a, row b, half-width, paired) of the horizontal correction runs ...
    top_w: np.ndarray  # ... (m,) float64: their weights (the runs' sums then blurred horizontally)
    side_rows: np.ndarray  # (r, 3) int64: (class, first row, last row): the rows of each class of width ...
    side: np.ndarray  # ... (n, 4) int64: (class, column a, column b, paired) of the vertical correction runs ...
    side_w: np.ndarray  # ... (n,) float64: their weights (the runs' sums then blurred vertically)
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


def _runs(member: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs (first, last offset) of a 0/1 vector over -R..R."""
    R = (member.size - 1) // 2
    idx = np.flatnonzero(member) - R
    runs, start = [], None
    for k, i in enumerate(idx):
        if start is None:
            start = i
        if k + 1 == idx.size or idx[k + 1] != i + 1:
            runs.append((int(start), int(i)))
            start = None
    return runs


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
    top, side, side_rows = [], [], []
    for w in sorted(set(width.values())):
        rows_of_w = np.isin(grid, [r for r, v in width.items() if v == w])
        run = np.abs(grid) <= w
        vertical = _truncated_blur(rows_of_w, g, R, h) - _main_blur(rows_of_w, g, R, h)
        horizontal = _truncated_blur(run, g, R, h) - _main_blur(run, g, R, h)
        for k in np.flatnonzero(np.abs(vertical) > 1e-15) - half:  # near the top and bottom
            top.append((int(k), w, float(vertical[k + half])))
            add_run(k, w, vertical[k + half], False)
        columns = np.flatnonzero(np.abs(horizontal) > 1e-15) - half  # near the left and right
        if columns.size:
            cls = len({c for c, _, _ in side_rows})
            side_rows += [(cls, first, last) for first, last in _runs(rows_of_w)]
            for k in columns:
                side.append((int(k), cls, float(horizontal[k + half])))
                for r in np.flatnonzero(rows_of_w) - R:
                    built[r - h + half: r + h + 1 + half, k + half] += horizontal[k + half] * g
    target = np.pad(reference_kernel(radius, alias_blur) * count, half - R)
    left = target - built  # products of two corrections, if any grid had them
    taps = np.argwhere(np.abs(left) > 1e-12 * target.max())
    built[tuple(taps.T)] += left[tuple(taps.T)]
    if np.abs(target - built).max() > 1e-12 * target.max():
        raise AssertionError(f"defocus terms do not add up to the kernel (radius {radius}, blur {alias_blur})")
    exact_sum = float(target.sum()) / count
    rows = _mirror_pairs([(r, w, 1.0) for r, w in width.items()])
    top, side = _mirror_pairs(top), _mirror_pairs(side)
    return DiskPlan(
        half=half, gauss=g, rows=np.array([t[:4] for t in rows], np.int64).reshape(-1, 4),
        top=np.array([t[:4] for t in top], np.int64).reshape(-1, 4), top_w=np.array([t[4] for t in top]),
        side_rows=np.array(side_rows, np.int64).reshape(-1, 3),
        side=np.array([(t[2], t[0], t[1], t[3]) for t in side], np.int64).reshape(-1, 4),
        side_w=np.array([t[4] for t in side]),
        taps=(taps - half).astype(np.int64).reshape(-1, 2), taps_w=left[tuple(taps.T)].astype(np.float64),
        scale=original_sum / exact_sum / count)


@njit(cache=True, nogil=True)
def _defocus(pad, ch, height, width, half, g, rows, top, top_w, side_rows, side, side_w, taps, taps_w, scale,
             out):
    # pad: the image reflected by `half` on each side, rows flattened (values interleaved by channel).
    # out(y) = sum_u g(u) Z(y + u) + E(y), Z = Hblur(S) + Q, E = Hblur(P) + single taps, where S is the
    # disk's sum, P the top/bottom runs, Q the left/right runs; Z rows live in a ring of 2h + 1
    h = (g.size - 1) // 2
    hp, wp = pad.shape[0], pad.shape[1] // ch
    n = width * ch
    wide = (width + 2 * h) * ch  # S and P carry h columns each side for the horizontal blur
    pre = np.zeros((hp, (wp + 1) * ch), np.int32)  # row prefix sums: pre[r, (i + 1) ch + c] = sum_{<= i}
    for r in range(hp):
        prefix_row(pad[r], ch, pre[r])
    col = np.zeros((hp + 1 if side.shape[0] else 1, wp * ch), np.int32)  # column prefix sums
    if side.shape[0]:
        for r in range(hp):
            src, prev, dst = pad[r], col[r], col[r + 1]
            for j in range(wp * ch):
                dst[j] = prev[j] + src[j]
    ring = np.zeros((2 * h + 1, n), np.float64)
    classes = side_rows[:, 0].max() + 1 if side_rows.shape[0] else 0
    vrs = np.empty(wp * ch, np.int32)  # a class's vertical run sums, all columns
    acc = np.empty(wide, np.int32)
    facc = np.empty(wide, np.float64)
    extra = np.zeros(n, np.float64)
    total = np.empty(n, np.float64)  # one output row before its conversion
    has_extra = top.shape[0] > 0 or taps.shape[0] > 0
    base = (half - h) * ch  # pre/col index of S's first column, before a run's offset
    for step in range(-2 * h, height):
        z_row = step + h  # the Z row this step adds; output row `step` once the ring holds its window
        zr = ring[(z_row + 2 * h + 1) % (2 * h + 1)]
        acc[:] = 0
        for k in range(0, rows.shape[0], 2):  # two entries (up to four rows) per pass over acc
            k2 = min(k + 1, rows.shape[0] - 1)
            _add_runs(pre[z_row + rows[k, 0] + half], pre[z_row + rows[k, 1] + half], rows[k, 3],
                      base + (rows[k, 2] + 1) * ch, base - rows[k, 2] * ch,
                      pre[z_row + rows[k2, 0] + half], pre[z_row + rows[k2, 1] + half],
                      rows[k2, 3] if k2 > k else -1, base + (rows[k2, 2] + 1) * ch, base - rows[k2, 2] * ch,
                      wide, acc)
        _hblur(acc, g, ch, n, zr)
        for cls in range(classes):
            vrs[:] = 0
            for k in range(side_rows.shape[0]):
                if side_rows[k, 0] == cls:
                    a = col[z_row + side_rows[k, 2] + half + 1]
                    b = col[z_row + side_rows[k, 1] + half]
                    for j in range(wp * ch):
                        vrs[j] += a[j] - b[j]
            for k in range(side.shape[0]):
                if side[k, 0] == cls:
                    c = side_w[k]
                    a = vrs[(half + side[k, 1]) * ch:]
                    b = vrs[(half + side[k, 2]) * ch:]
                    if side[k, 3]:
                        for j in range(n):
                            zr[j] += c * (a[j] + b[j])
                    else:
                        for j in range(n):
                            zr[j] += c * a[j]
        if step < 0:
            continue
        y = step
        if has_extra:
            if top.shape[0]:
                facc[:] = 0.0
                for k in range(top.shape[0]):
                    _add_weighted_runs(pre[y + top[k, 0] + half], pre[y + top[k, 1] + half], top[k, 3],
                                       base + (top[k, 2] + 1) * ch, base - top[k, 2] * ch, top_w[k], wide, facc)
                _hblur(facc, g, ch, n, extra)
            else:
                extra[:] = 0.0
            for k in range(taps.shape[0]):
                src = pad[y + taps[k, 0] + half, (half + taps[k, 1]) * ch:]
                c = taps_w[k]
                for j in range(n):
                    extra[j] += c * src[j]
        _finish(ring, y, g, extra, has_extra, scale / 255.0, total, out[y])


@njit(cache=True, nogil=True)
def _add_runs(a_row, b_row, ab_paired, ab_hi, ab_lo, c_row, d_row, cd_paired, cd_hi, cd_lo, n, acc) -> None:
    # acc[j] += the runs [lo, hi) of the rows' prefix sums, from j on: rows a (and b, a mirrored pair: paired
    # 1) and c (and d; cd_paired -1: no second entry). Slices, so the loop can prove its indices in bounds
    a1, a0, b1, b0 = a_row[ab_hi:], a_row[ab_lo:], b_row[ab_hi:], b_row[ab_lo:]
    c1, c0, d1, d0 = c_row[cd_hi:], c_row[cd_lo:], d_row[cd_hi:], d_row[cd_lo:]
    if ab_paired == 1 and cd_paired == 1:
        for j in range(n):
            acc[j] += ((a1[j] - a0[j]) + (b1[j] - b0[j])) + ((c1[j] - c0[j]) + (d1[j] - d0[j]))
    elif ab_paired == 1 and cd_paired == 0:
        for j in range(n):
            acc[j] += ((a1[j] - a0[j]) + (b1[j] - b0[j])) + (c1[j] - c0[j])
    elif ab_paired == 1:
        for j in range(n):
            acc[j] += (a1[j] - a0[j]) + (b1[j] - b0[j])
    elif cd_paired == 1:
        for j in range(n):
            acc[j] += (a1[j] - a0[j]) + ((c1[j] - c0[j]) + (d1[j] - d0[j]))
    elif cd_paired == 0:
        for j in range(n):
            acc[j] += (a1[j] - a0[j]) + (c1[j] - c0[j])
    else:
        for j in range(n):
            acc[j] += a1[j] - a0[j]


@njit(cache=True, nogil=True)
def _add_weighted_runs(a_row, b_row, paired, hi, lo, weight, n, acc) -> None:
    a1, a0, b1, b0 = a_row[hi:], a_row[lo:], b_row[hi:], b_row[lo:]
    if paired:
        for j in range(n):
            acc[j] += weight * ((a1[j] - a0[j]) + (b1[j] - b0[j]))
    else:
        for j in range(n):
            acc[j] += weight * (a1[j] - a0[j])


@njit(cache=True, nogil=True)
def _hblur(src, g, ch, n, dst) -> None:
    # dst[j] = sum_v g[v] src[j + v ch] in one pass, the taps written out for the 1, 3 or 5 that the
    # original's grids have (h 0, 1 or 2: _grid; symmetric: mirrored taps added before the multiply)
    s0, s1, s2 = src[0:], src[ch:], src[2 * ch:]
    if g.size == 1:
        for j in range(n):
            dst[j] = g[0] * s0[j]
    elif g.size == 3:
        g0, g1 = g[0], g[1]
        for j in range(n):
            dst[j] = g0 * (s0[j] + s2[j]) + g1 * s1[j]
    else:
        s3, s4 = src[3 * ch:], src[4 * ch:]
        g0, g1, g2 = g[0], g[1], g[2]
        for j in range(n):
            dst[j] = g0 * (s0[j] + s4[j]) + g1 * (s1[j] + s3[j]) + g2 * s2[j]


@njit(cache=True, nogil=True)
def _finish(ring, y, g, extra, has_extra, k255, total, dst) -> None:
    # the vertical blur of the ring's rows around y, plus extra, into total; then the original's
    # uint8(clip(v, 0, 1) 255). The ring holds 1, 3 or 5 rows, as g its taps
    size = ring.shape[0]
    n = total.size
    if size == 1:
        total[:] = g[0] * ring[0]
    elif size == 3:
        z0, z1, z2 = ring[(y - 1 + size) % size], ring[y % size], ring[(y + 1) % size]
        g0, g1 = g[0], g[1]
        for j in range(n):
            total[j] = g0 * (z0[j] + z2[j]) + g1 * z1[j]
    else:
        z0, z1, z2 = ring[(y - 2 + size) % size], ring[(y - 1 + size) % size], ring[y % size]
        z3, z4 = ring[(y + 1) % size], ring[(y + 2) % size]
        g0, g1, g2 = g[0], g[1], g[2]
        for j in range(n):
            total[j] = g0 * (z0[j] + z4[j]) + g1 * (z1[j] + z3[j]) + g2 * z2[j]
    if has_extra:
        for j in range(n):
            total[j] += extra[j]
    for j in range(n):
        v = total[j] * k255  # the original's float64 value: img / 255 convolved
        v = min(max(v, 0.0), 1.0)
        dst[j] = np.uint8(v * 255.0)


def defocus_disk(img: np.ndarray, radius: float, alias_blur: float, original_sum: float) -> np.ndarray:
    """uint8(clip(filter2D(img / 255, kernel), 0, 1) * 255) for the original's defocus kernel, with
    OpenCV's reflecting border; for images larger than the kernel's reach (the caller falls back to
    OpenCV below it)."""
    plan = disk_plan(float(radius), float(alias_blur), float(original_sum))
    x = img if img.ndim == 3 else img[:, :, None]
    hgt, wdt, ch = x.shape
    p = plan.half
    pad = cv2.copyMakeBorder(np.ascontiguousarray(x), p, p, p, p, cv2.BORDER_REFLECT_101)
    pad = pad.reshape(hgt + 2 * p, (wdt + 2 * p) * ch)
    out = np.empty((hgt, wdt * ch), np.uint8)
    _defocus(pad, ch, hgt, wdt, p, plan.gauss, plan.rows, plan.top, plan.top_w, plan.side_rows, plan.side, plan.side_w,
             plan.taps, plan.taps_w, plan.scale, out)
    return out.reshape(img.shape)
