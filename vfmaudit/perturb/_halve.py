"""The resize family at scale 0.5 on even sizes, OpenCV's INTER_AREA halving and INTER_LINEAR doubling in one
Numba pass, the same bytes as the two cv2.resize calls without the half-size image between them.

What OpenCV computes there (checked against cv2 by tests/test_halve.py, every shape and channel count):
- INTER_AREA at an integer factor of 2 is its fast area path: D = (a + b + c + d + 2) >> 2 of each 2x2 block.
- INTER_LINEAR doubling, 8 bit: source x = (X + 0.5) / 2 - 0.5, so each output pixel weighs its two nearest
  small pixels 3/4 and 1/4, as 11-bit fixed point (1536, 512), replicating the edge pixel at the border.
  Horizontally the sum is exact, 512 * H with H = 3 D[j] + D[j -/+ 1] = U[X-1] + 2 U[X] + U[X+1], where U is
  the small row widened by copying each pixel twice (so one [1, 2, 1] pass over a row of the output's layout,
  no interleaving of even and odd pixels). Vertically OpenCV's SIMD path (VResizeLinearVec_32s8u) keeps
  ((row >> 4) * beta) >> 16 of each of the two rows, which is floor(H / 4) and floor(3 H / 4) here, and
  returns (sum + 2) >> 2; its first and last rows replicate (y = -1 is row 0), with the same weights.
Every value is a small integer, so float32 holds them exactly and floor() is the shift: the pass vectorises
in 16 float lanes where Numba would widen integer arithmetic to int64.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def halves_exactly(shape: tuple[int, ...], small: tuple[int, int]) -> bool:
    """Whether resizing (H, W, ...) to small = (w, h) and back is this module's case: even sides halved."""
    h, w = shape[:2]
    return h % 2 == 0 and w % 2 == 0 and small == (w // 2, h // 2)


# The loops below index views, never x[e + offset]: Numba's wrap-around of a possibly negative index
# would keep LLVM from vectorising them.
@njit(cache=True, nogil=True, fastmath={"contract"})
def _widened_row(r0, r1, ch, odd, pairs, wide) -> None:
    # wide[ch:-ch] = U of the output row, each pixel its 2x2 block's mean, with one edge pixel either side
    n = r0.size
    here, left, right = pairs[ch:ch + n], pairs[:n], pairs[2 * ch:2 * ch + n]  # the pads stay 0
    for e in range(n):
        here[e] = np.float32(r0[e]) + np.float32(r1[e])
    u = wide[ch:ch + n]
    for e in range(n):  # the block's other column: the next pixel's at even x, the previous one's at odd x
        s = here[e] + right[e] + np.float32(odd[e]) * (left[e] - right[e])
        u[e] = np.floor((s + np.float32(2.0)) * np.float32(0.25))
    for e in range(ch):
        wide[e] = wide[ch + e]
        wide[n + ch + e] = wide[n + e]


@njit(cache=True, nogil=True, inline="always", fastmath={"contract"})
def _blend(h_above, h_below):
    # OpenCV's vertical step: floor(3/4 of the row above) + floor(1/4 of the row below), then (sum + 2) >> 2
    s = np.floor(h_above * np.float32(0.75)) + np.floor(h_below * np.float32(0.25))
    return np.uint8((s + np.float32(2.0)) * np.float32(0.25))  # truncation is floor here


@njit(cache=True, nogil=True, fastmath={"contract"})
def _doubled_rows(wide, ch, h_above, upper, lower) -> None:
    # this row's H = U[X-1] + 2 U[X] + U[X+1]; with the row above's (replaced by this one's), the output row
    # between them (upper: 3/4 above, 1/4 here) and the first of this one (lower: 1/4 above, 3/4 here)
    n = h_above.size
    left, mid, right = wide[:n], wide[ch:ch + n], wide[2 * ch:2 * ch + n]
    for e in range(n):
        hs = left[e] + np.float32(2.0) * mid[e] + right[e]
        ha = h_above[e]
        upper[e] = _blend(ha, hs)
        lower[e] = _blend(hs, ha)
        h_above[e] = hs


@njit(cache=True, nogil=True, fastmath={"contract"})
def halve_and_double(images, out) -> None:
    """out[k] = cv2.resize(cv2.resize(images[k], (w/2, h/2), INTER_AREA), (w, h), INTER_LINEAR), uint8
    (N, H, W, C), H and W even."""
    count, h, w, ch = images.shape
    n = w * ch
    # about 3.3 n floats of rows, in L1 at 512 px (four more of them were not)
    pairs = np.zeros(n + 2 * ch, np.float32)
    wide = np.empty(n + 2 * ch, np.float32)
    h_above = np.empty(n, np.float32)
    odd = np.empty(n, np.uint8)
    for e in range(n):
        odd[e] = (e // ch) & 1
    for k in range(count):
        src = images[k].reshape(h, n)
        dst = out[k].reshape(h, n)
        for i in range(h // 2):
            _widened_row(src[2 * i], src[2 * i + 1], ch, odd, pairs, wide)
            if i == 0:  # row -1 is row 0: the first call only loads row 0's H into h_above, the second
                _doubled_rows(wide, ch, h_above, dst[0], dst[0])  # writes output row 0, row 0 blended with itself
                _doubled_rows(wide, ch, h_above, dst[0], dst[0])
            else:
                _doubled_rows(wide, ch, h_above, dst[2 * i - 1], dst[2 * i])
        row = dst[h - 1]  # and row H/2 is the last
        for e in range(n):
            row[e] = _blend(h_above[e], h_above[e])
