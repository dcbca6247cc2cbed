"""Numba kernels behind the ImageNet-C corruptions: the loops numpy would spell as many passes."""

from __future__ import annotations

import math

import numpy as np
from numba import njit



@njit(cache=True, nogil=True)
def motion_blur(img: np.ndarray, weights: np.ndarray, dy: np.ndarray, dx: np.ndarray, out: np.ndarray) -> None:
    """out[y, x] = round(sum_i w_i img[clamp(y + dy_i), clamp(x + dx_i)]) per channel: ImageMagick's
    MotionBlurImage on uint8 (H, W, C) with edge virtual pixels. The rows are padded once with their
    edge pixels, so each tap is one contiguous vectorised multiply-add of a shifted source row into
    the output row's sums, which stay in L1 (the taps summed in order)."""
    h, w, c = img.shape
    pad = 0
    for i in range(dx.size):
        pad = max(pad, abs(dx[i]))
    wide = (w + 2 * pad) * c
    padded = np.empty((h, wide), np.uint8)
    src = img.reshape(h, w * c)
    for y in range(h):
        row, prow = src[y], padded[y]
        for x in range(pad):
            for ch in range(c):
                prow[x * c + ch] = row[ch]
                prow[(pad + w + x) * c + ch] = row[(w - 1) * c + ch]
        inner = prow[pad * c:(pad + w) * c]
        for k in range(w * c):
            inner[k] = row[k]
    dst_rows = out.reshape(h, w * c)
    acc = np.empty(w * c, np.float32)
    for y in range(h):
        acc[:] = 0.0
        for i in range(weights.size):
            wt = np.float32(weights[i])
            start = (pad + dx[i]) * c
            b = padded[min(max(y + dy[i], 0), h - 1), start:start + w * c]  # views indexed from 0: LLVM vectorises
            for k in range(acc.size):
                acc[k] += wt * np.float32(b[k])
        d = dst_rows[y]
        for k in range(acc.size):  # >= 0: truncation of + 0.5 rounds
            d[k] = np.uint8(min(max(acc[k] + np.float32(0.5), np.float32(0.0)), np.float32(255.0)))


@njit(cache=True, nogil=True)
def _axis_map(n: int, z: float, index: np.ndarray, frac: np.ndarray) -> None:
    # clipped_zoom along one axis: centre crop of ceil(n / z), scipy.ndimage.zoom(order=1) to
    # round(crop * z) samples (coordinates o * (crop - 1) / (out - 1)), centre trim back to n
    crop = int(math.ceil(n / z))
    top = (n - crop) // 2
    zoomed = int(np.round(crop * z))
    trim = (zoomed - n) // 2
    step = (crop - 1) / (zoomed - 1) if zoomed > 1 else 0.0
    for o in range(n):
        coord = (o + trim) * step
        i0 = int(math.floor(coord))
        if i0 >= crop - 1:
            i0, f = crop - 1, 0.0
        else:
            f = coord - i0
        index[o] = top + i0
        frac[o] = f


@njit(cache=True, nogil=True, inline="always")
def _column_map(w: int, c: int, z: float, xi: np.ndarray, xf: np.ndarray, left: np.ndarray, right: np.ndarray,
                wr: np.ndarray) -> None:
    # the two source values and the weight of every output value of a row, laid out as the row is
    # (x * c + ch), so the inner loops run over contiguous views with unsigned gathers
    _axis_map(w, z, xi, xf)
    for x in range(w):
        x1 = min(xi[x] + 1, w - 1)
        for ch in range(c):
            left[x * c + ch] = np.uint32(xi[x] * c + ch)
            right[x * c + ch] = np.uint32(x1 * c + ch)
            wr[x * c + ch] = xf[x]


@njit(cache=True, nogil=True)
def zoom_accumulate(img: np.ndarray, factors: np.ndarray, out: np.ndarray) -> None:
    """out += sum over factors of clipped_zoom(img, z), bilinear, for float (H, W, C) (snow's layer)."""
    h, w, c = img.shape
    yi = np.empty(h, np.int64)
    yf = np.empty(h, np.float64)
    xi = np.empty(w, np.int64)
    xf = np.empty(w, np.float64)
    left = np.empty(w * c, np.uint32)
    right = np.empty(w * c, np.uint32)
    wr = np.empty(w * c, img.dtype)
    for z in factors:
        _axis_map(h, z, yi, yf)
        _column_map(w, c, z, xi, xf, left, right, wr)
        # horizontal pass over the source rows the factor reads, then a vertical blend of two of them
        first, last = yi[0], min(yi[h - 1] + 1, h - 1)
        rows = np.empty((last - first + 1, w * c), img.dtype)
        for r in range(last - first + 1):
            src = img[first + r].ravel()
            dst = rows[r]
            for k in range(w * c):
                a = src[left[k]]
                dst[k] = a + (src[right[k]] - a) * wr[k]
        for y in range(h):
            a = rows[yi[y] - first]
            b = rows[min(yi[y] + 1, h - 1) - first]
            fy = img.dtype.type(yf[y])
            dst = out[y].ravel()
            for k in range(w * c):
                dst[k] += a[k] + (b[k] - a[k]) * fy


@njit(cache=True, nogil=True)
def zoom_blur(img: np.ndarray, factors: np.ndarray, out: np.ndarray) -> None:
    """ImageNet-C zoom blur of uint8 (H, W, C) into out: uint8(clip((x + sum_z clipped_zoom(x, z)) /
    (len(factors) + 1), 0, 1) 255), x = img / 255 in float32, the zooms bilinear and summed in
    factor order as zoom_accumulate does. Output row by output row: each zoom's two source rows
    are interpolated once (a two-row cache per factor, by row parity) and the sums stay in L1."""
    h, w, c = img.shape
    nf = factors.size
    wc = w * c
    inv = np.float32(1.0 / 255.0)  # as unit()
    yi = np.empty((nf, h), np.int64)
    yf = np.empty((nf, h), np.float64)
    xi = np.empty(w, np.int64)
    xf = np.empty(w, np.float64)
    left = np.empty((nf, wc), np.uint32)
    right = np.empty((nf, wc), np.uint32)
    wr = np.empty((nf, wc), np.float32)
    for f in range(nf):
        _axis_map(h, factors[f], yi[f], yf[f])
        _column_map(w, c, factors[f], xi, xf, left[f], right[f], wr[f])
    cache = np.empty((nf, 2, wc), np.float32)
    cached = np.full((nf, 2), -1, np.int64)
    src = img.reshape(h, wc)
    dst_rows = out.reshape(h, wc)
    acc = np.empty(wc, np.float32)
    zero, one, top = np.float32(0.0), np.float32(1.0), np.float32(255.0)
    for y in range(h):
        acc[:] = 0.0
        for f in range(nf):
            ra = yi[f, y]
            for r in (ra, min(ra + 1, h - 1)):
                slot = r & 1
                if cached[f, slot] != r:  # this zoom's horizontal pass over source row r
                    row, dst = src[r], cache[f, slot]
                    lf, rf, wf = left[f], right[f], wr[f]
                    for k in range(wc):
                        a = np.float32(row[lf[k]]) * inv
                        dst[k] = a + (np.float32(row[rf[k]]) * inv - a) * wf[k]
                    cached[f, slot] = r
            a_row = cache[f, ra & 1]
            b_row = cache[f, min(ra + 1, h - 1) & 1]
            fy = np.float32(yf[f, y])
            for k in range(wc):
                acc[k] += a_row[k] + (b_row[k] - a_row[k]) * fy
        row, d = src[y], dst_rows[y]
        for k in range(wc):
            v = (np.float32(row[k]) * inv + acc[k]) / np.float32(nf + 1)
            v = v if v > zero else zero
            d[k] = np.uint8((v if v < one else one) * top)


@njit(cache=True, nogil=True, inline="always")
def _reflect(i: int, n: int) -> int:
    # scipy's 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a
    if n == 1:
        return 0
    period = 2 * n
    i = i % period
    return i if i < n else period - 1 - i


@njit(cache=True, nogil=True, inline="always")
def _truncated(v: float) -> np.uint8:
    return np.uint8(min(max(np.float32(v), np.float32(0.0)), np.float32(1.0)) * np.float32(255.0))


@njit(cache=True, nogil=True, fastmath={"contract"})
def remap_reflect(img: np.ndarray, dy: np.ndarray, dx: np.ndarray, out: np.ndarray) -> None:
    """out[y, x] = uint8(clip(v, 0, 1) 255) of v = img bilinearly sampled at (y + dy, x + dx),
    reflected at the borders (scipy.ndimage.map_coordinates(order=1, mode='reflect')), float32 v as
    the original's float32 image: the sampling and its truncation in one pass. Three channels are
    written out (1.7x the channel loop: the four corners' offsets and weights serve all three)."""
    h, w, c = img.shape
    src, dst = img.ravel(), out.ravel()
    for y in range(h):
        for x in range(w):
            sy = y + np.float64(dy[y, x])
            sx = x + np.float64(dx[y, x])
            fy0, fx0 = math.floor(sy), math.floor(sx)
            y0, x0 = int(fy0), int(fx0)
            fy, fx = sy - fy0, sx - fx0
            gy, gx = 1.0 - fy, 1.0 - fx
            if 0 <= y0 and y0 + 1 < h and 0 <= x0 and x0 + 1 < w:  # inside: no reflection (most pixels)
                ya, yb, xa, xb = y0, y0 + 1, x0, x0 + 1
            else:  # the reflection's divisions only here
                ya, yb = _reflect(y0, h), _reflect(y0 + 1, h)
                xa, xb = _reflect(x0, w), _reflect(x0 + 1, w)
            # unsigned offsets: no negative-index wrap-around in the loads
            i00, i01 = np.uint64((ya * w + xa) * c), np.uint64((ya * w + xb) * c)
            i10, i11 = np.uint64((yb * w + xa) * c), np.uint64((yb * w + xb) * c)
            o = np.uint64((y * w + x) * c)
            if c == 3:
                one, two = np.uint64(1), np.uint64(2)
                dst[o] = _truncated((src[i00] * gx + src[i01] * fx) * gy + (src[i10] * gx + src[i11] * fx) * fy)
                dst[o + one] = _truncated((src[i00 + one] * gx + src[i01 + one] * fx) * gy
                                          + (src[i10 + one] * gx + src[i11 + one] * fx) * fy)
                dst[o + two] = _truncated((src[i00 + two] * gx + src[i01 + two] * fx) * gy
                                          + (src[i10 + two] * gx + src[i11 + two] * fx) * fy)
            else:
                for ch in range(c):
                    k = np.uint64(ch)
                    dst[o + k] = _truncated((src[i00 + k] * gx + src[i01 + k] * fx) * gy
                                            + (src[i10 + k] * gx + src[i11 + k] * fx) * fy)


@njit(cache=True, nogil=True, inline="always")
def _unit8(x: np.float32) -> np.uint8:
    # to_uint8 of a float32 value: clip to [0, 1], times 255 in float32, truncated
    return np.uint8(np.int32(min(max(x, np.float32(0.0)), np.float32(1.0)) * np.float32(255.0)))


@njit(cache=True, nogil=True, inline="always")
def _unit8_64(x: float) -> np.uint8:
    return np.uint8(np.int32(min(max(x, 0.0), 1.0) * 255.0))


@njit(cache=True, nogil=True)
def hsv_value_shift(img: np.ndarray, shift: float, out: np.ndarray) -> None:
    """skimage rgb2hsv, V = clip(V + shift, 0, 1), hsv2rgb of uint8 RGB as float32 on [0, 1] (unit),
    back to uint8 as to_uint8, in one pass. With hue and saturation fixed, HSV -> RGB is linear in V,
    so each pixel is scaled by V' / V (in float64, stored as float32: the arithmetic of the float
    arrays this replaced, without their three temporaries)."""
    src = img.reshape(-1, 3)
    dst = out.reshape(-1, 3)
    inv = np.float32(1.0 / 255.0)
    for j in range(src.shape[0]):
        r, g, b = np.float32(src[j, 0]) * inv, np.float32(src[j, 1]) * inv, np.float32(src[j, 2]) * inv
        v = max(r, g, b)
        nv = min(max(v + shift, 0.0), 1.0)
        if v > 0:
            k = nv / v
            dst[j, 0] = _unit8(np.float32(r * k))
            dst[j, 1] = _unit8(np.float32(g * k))
            dst[j, 2] = _unit8(np.float32(b * k))
        else:  # black: saturation 0 in skimage, so grey at the new value
            dst[j, 0] = dst[j, 1] = dst[j, 2] = _unit8(np.float32(nv))


@njit(cache=True, nogil=True)
def hsv_saturation_affine(img: np.ndarray, gain: float, offset: float, out: np.ndarray) -> None:
    """skimage rgb2hsv, S = clip(S * gain + offset, 0, 1), hsv2rgb of uint8 RGB as float64 img / 255,
    back to uint8 as to_uint8, in one pass. With hue and value fixed each channel is
    v - (S' / S) (v - channel); a grey pixel has hue 0 (red) in skimage."""
    src = img.reshape(-1, 3)
    dst = out.reshape(-1, 3)
    for j in range(src.shape[0]):
        r, g, b = src[j, 0] / 255.0, src[j, 1] / 255.0, src[j, 2] / 255.0
        v = max(r, g, b)
        m = min(r, g, b)
        if v <= 0:
            dst[j, 0] = dst[j, 1] = dst[j, 2] = 0
            continue
        s = (v - m) / v
        ns = min(max(s * gain + offset, 0.0), 1.0)
        if v - m <= 0:
            dst[j, 0], dst[j, 1], dst[j, 2] = _unit8_64(v), _unit8_64(v * (1.0 - ns)), _unit8_64(v * (1.0 - ns))
            continue
        k = ns / s
        dst[j, 0] = _unit8_64(v - k * (v - r))
        dst[j, 1] = _unit8_64(v - k * (v - g))
        dst[j, 2] = _unit8_64(v - k * (v - b))


@njit(cache=True, nogil=True)
def frost_blend(img: np.ndarray, texture: np.ndarray, top: int, left: int, a: float, b: float,
                out: np.ndarray) -> None:
    """uint8(clip(a img + b texture[top:, left:], 0, 255)) in float32, one pass (no float copies)."""
    h, w, ch = img.shape
    rows = texture.reshape(texture.shape[0], texture.shape[1] * ch)  # rows to slice: a 2-D slice's ravel copies
    fa, fb = np.float32(a), np.float32(b)
    zero, full = np.float32(0.0), np.float32(255.0)
    for y in range(h):
        src, tex, dst = img[y].ravel(), rows[top + y][left * ch:], out[y].ravel()
        for j in range(w * ch):
            v = fa * np.float32(src[j]) + fb * np.float32(tex[j])
            dst[j] = np.uint8(np.int32(min(max(v, zero), full)))


_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment (2^64 / golden ratio)


@njit(cache=True, nogil=True, inline="always")
def _mix64(z: np.uint64) -> np.uint64:
    # splitmix64's output function (Stafford's Mix13)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _splitmix_next(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    state = state + _GAMMA
    return state, _mix64(state)


@njit(cache=True, nogil=True)
def glass_shuffle(img: np.ndarray, seed: np.uint64, delta: int, iterations: int) -> None:
    """ImageNet-C's glass-blur loop, pixel for pixel: offsets drawn from [-delta, delta), and (as in
    the reference, whose tuple "swap" of numpy views copies one way) x[h, w] <- x[h', w']."""
    hgt, wid, _ = img.shape
    span = np.uint64(2 * delta)
    state = seed
    for _ in range(iterations):
        for hh in range(hgt - delta, delta, -1):
            for ww in range(wid - delta, delta, -1):
                state, r = _splitmix_next(state)
                dx = np.int64((r >> np.uint64(32)) % span) - delta
                dy = np.int64((r & np.uint64(0xFFFFFFFF)) % span) - delta
                hp = hh + dy
                wp = ww + dx
                if hp < 0 or hp >= hgt or wp < 0 or wp >= wid:
                    continue  # only reachable on images smaller than the offsets
                for c in range(3):
                    img[hh, ww, c] = img[hp, wp, c]




@njit(cache=True, nogil=True, inline="always")
def _refill(z0: np.uint64, first: int, block: np.ndarray) -> None:
    # block[i] = output first + i of the splitmix64 stream after z0 = _mix64(seed): values 2 (first + i)
    # and 2 (first + i) + 1 of the uniforms below, as block.view(np.uint32)
    z = z0 + np.uint64(first) * _GAMMA
    for i in range(block.size):
        z += _GAMMA
        block[np.uint64(i)] = _mix64(z)  # unsigned index: no negative-index check to stop vectorising


@njit(cache=True, nogil=True)
def uniforms(seed: np.uint64, n: int) -> np.ndarray:
    """n 32-bit uniforms of the splitmix64 stream that starts at mix(seed): value j gets half j % 2 of
    output j // 2, so it depends on (seed, j) only. One 64-bit mix per two values, in a loop LLVM
    vectorises: about 0.4 ns a value here, a third of two 32-bit hashes per value."""
    block = np.empty((n + 1) // 2, np.uint64)
    _refill(_mix64(np.uint64(seed)), 0, block)
    return block.view(np.uint32)[:n]


# The per-value kernels below draw uniforms(seed, n) a chunk at a time, into a buffer that stays in L1,
# instead of an array of 4 bytes per image value written and read back: five times the image's own
# memory traffic, on machines whose bandwidth barely grows with the second core.
UNIFORM_CHUNK = 4096  # values per refill (even: a refill starts at a whole 64-bit output)


@njit(cache=True, nogil=True, inline="always")
def _chunk(img: np.ndarray, out: np.ndarray, z0: np.uint64, block: np.ndarray, start: int):
    # the values start.. of img and out (up to UNIFORM_CHUNK of them) and their uniforms, drawn into block
    _refill(z0, start // 2, block)
    m = min(UNIFORM_CHUNK, img.size - start)
    return img.ravel()[start:start + m], out.ravel()[start:start + m], block.view(np.uint32)[:m]


@njit(cache=True, nogil=True)
def signed_uniforms(seed: np.uint64, shape: tuple) -> np.ndarray:
    """float32 U(-1, 1) draws of the uniform stream, in `shape`: a tenth of numpy's float32 draws here."""
    out = np.empty(shape, np.float32)
    flat = out.ravel()
    u = uniforms(seed, flat.size)
    scale = np.float32(2.0 / 4294967296.0)
    for j in range(np.uint64(flat.size)):
        flat[j] = np.float32(u[j]) * scale - np.float32(1.0)
    return out


@njit(cache=True, nogil=True)
def sample_levels(img: np.ndarray, seed: np.uint64, thresholds: np.ndarray, guide: np.ndarray,
                  out: np.ndarray) -> None:
    """out = the k with T[v, k] <= u < T[v, k + 1] for each value v and its 32-bit uniform u: a draw from
    any per-grey-level output law given as cumulative thresholds T (256, 257), T[v, 0] = 0,
    T[v, 256] = 2^32. guide[v, b] is where the search for u's top byte b starts. u: uniforms(seed, img.size)."""
    z0, block = _mix64(np.uint64(seed)), np.empty(UNIFORM_CHUNK // 2, np.uint64)
    for start in range(0, img.size, UNIFORM_CHUNK):
        src, dst, u = _chunk(img, out, z0, block, start)
        for j in range(u.size):
            uj = np.uint64(u[j])
            v = src[j]
            k = guide[v, uj >> np.uint64(24)]
            while thresholds[v, k + 1] <= uj:
                k += 1
            dst[j] = np.uint8(k)


@njit(cache=True, nogil=True)
def salt_and_pepper(img: np.ndarray, seed: np.uint64, amount: float, out: np.ndarray) -> None:
    """Each value set to 0 with probability amount / 2, to 255 with amount / 2, else kept, by its uniform
    u of uniforms(seed, img.size)."""
    pepper = np.uint32(min(amount * 0.5, 1.0) * 4294967295.0)
    salt = np.uint32(min(amount, 1.0) * 4294967295.0)
    z0, block = _mix64(np.uint64(seed)), np.empty(UNIFORM_CHUNK // 2, np.uint64)
    for start in range(0, img.size, UNIFORM_CHUNK):
        src, dst, u = _chunk(img, out, z0, block, start)
        for j in range(u.size):
            uj = u[j]
            v = src[j]
            v = np.uint8(255) if uj < salt else v
            v = np.uint8(0) if uj < pepper else v
            dst[j] = v


@njit(cache=True, nogil=True)
def add_offsets(img: np.ndarray, seed: np.uint64, table: np.ndarray, thresholds: np.ndarray, kmin: int,
                shift: int, out: np.ndarray) -> None:
    """out = clip(v + K) with K drawn from one law for every value: K = kmin + the k with
    T[k] <= u < T[k + 1]. table[u >> shift] is that k where the bucket of u holds no threshold, else
    the bucket's first k with the top bit set: then the thresholds decide (a few percent of draws).
    u: uniforms(seed, img.size)."""
    sh = np.uint32(shift)
    z0, block = _mix64(np.uint64(seed)), np.empty(UNIFORM_CHUNK // 2, np.uint64)
    for start in range(0, img.size, UNIFORM_CHUNK):
        src, dst, u = _chunk(img, out, z0, block, start)
        for j in range(u.size):
            uj = u[j]
            e = table[uj >> sh]
            k = np.int64(e & np.uint16(0x7FFF))
            if e & np.uint16(0x8000):
                u64 = np.uint64(uj)
                while thresholds[k + 1] <= u64:
                    k += 1
            v = np.int64(src[j]) + k + kmin
            dst[j] = np.uint8(min(max(v, 0), 255))


@njit(cache=True, nogil=True, inline="always")
def _normal(u: np.uint32, quantiles: np.ndarray) -> np.float32:
    # N(0, 1) read off its 2^16 cell midpoints by the top 16 bits: one load (interpolating between
    # 2^12 + 1 quantiles took twice as long and cut the tails at 3.4 sigma)
    return quantiles[u >> np.uint32(16)]  # unsigned: no negative-index wrap-around in the loop


@njit(cache=True, nogil=True)
def standard_normals(seed: np.uint64, shape: tuple, quantiles: np.ndarray) -> np.ndarray:
    """float32 N(0, 1) draws of the uniform stream through the quantile table (as speckle's): under
    1 ns a draw, a tenth of numpy's ziggurat on this machine."""
    out = np.empty(shape, np.float32)
    flat = out.ravel()
    u = uniforms(seed, flat.size)
    for j in range(np.uint64(flat.size)):
        flat[j] = _normal(u[j], quantiles)
    return out


@njit(cache=True, nogil=True)
def speckle(img: np.ndarray, seed: np.uint64, c: float, quantiles: np.ndarray, out: np.ndarray) -> None:
    """out = uint8(clip(x (1 + c n), 0, 1) 255) with n a standard normal read off its quantile table
    (2^16 cells: each threshold of the output law within 2^-16), u of uniforms(seed, img.size)."""
    c32 = np.float32(c)
    z0, block = _mix64(np.uint64(seed)), np.empty(UNIFORM_CHUNK // 2, np.uint64)
    for start in range(0, img.size, UNIFORM_CHUNK):
        src, dst, u = _chunk(img, out, z0, block, start)
        for j in range(np.uint64(u.size)):
            z = _normal(u[j], quantiles)
            x = np.float32(src[j])
            y = min(max(x + x * c32 * z, np.float32(0.0)), np.float32(255.0))
            dst[j] = np.uint8(np.int32(y))


@njit(cache=True, nogil=True)
def _diamond_square(g: np.ndarray, size: int, u: np.ndarray, wibbledecay: float) -> float:
    """The diamond-square octaves of make_imagenet_c.py's plasma_fractal on a size x size torus (size a
    power of two), in place on the flat g (g[0] set): each new point is the mean of its four neighbours
    plus wibble * U(-wibble, wibble), wibble from 100, divided by wibbledecay per octave. Draws
    u[0 : size^2 - 1] in order; returns the wibble of the next (finer) octave."""
    n = np.uint64(size)
    wrap = n - np.uint64(1)  # x % size as x & wrap; flat, unsigned indices: no negative-index checks
    draw = np.uint64(0)
    step, wibble = n, 100.0
    to_signed = 2.0 / 4294967296.0
    while step >= np.uint64(2):
        half = step >> np.uint64(1)
        cells = n // step
        amp = wibble * wibble
        for i in range(cells):  # squares: the centre of each cell
            y = np.uint64(i) * step
            y2 = (y + step) & wrap
            for j in range(cells):
                x = np.uint64(j) * step
                x2 = (x + step) & wrap
                total = g[y * n + x] + g[y2 * n + x] + g[y * n + x2] + g[y2 * n + x2]
                g[(y + half) * n + x + half] = total * 0.25 + amp * (u[draw] * to_signed - 1.0)
                draw += np.uint64(1)
        for i in range(cells):  # diamonds: the midpoints of the cell edges
            y = np.uint64(i) * step
            yu = (y - half) & wrap
            for j in range(cells):
                x = np.uint64(j) * step
                total = (g[(y + half) * n + x + half] + g[yu * n + x + half] + g[y * n + x]
                         + g[y * n + ((x + step) & wrap)])
                g[y * n + x + half] = total * 0.25 + amp * (u[draw] * to_signed - 1.0)
                draw += np.uint64(1)
        for i in range(cells):
            y = np.uint64(i) * step
            yd = (y + step) & wrap
            for j in range(cells):
                x = np.uint64(j) * step
                total = (g[(y + half) * n + x + half] + g[(y + half) * n + ((x - half) & wrap)] + g[y * n + x]
                         + g[yd * n + x])
                g[(y + half) * n + x] = total * 0.25 + amp * (u[draw] * to_signed - 1.0)
                draw += np.uint64(1)
        step = half
        wibble /= wibbledecay
    return wibble


@njit(cache=True, nogil=True)
def plasma_planes(mapsize: int, wibbledecay: float, seed: np.uint64) -> tuple:
    """The plasma fractal of make_imagenet_c.py on a mapsize x mapsize torus (a power of two >= 2),
    unnormalised, as its four parity planes of (mapsize/2)^2 points, and its (min, max).

    planes[0] = map[0::2, 0::2], planes[1] = map[1::2, 1::2], planes[2] = map[0::2, 1::2],
    planes[3] = map[1::2, 0::2]. Every octave but the finest runs on planes[0] (the even points are
    the whole fractal one octave coarser); the finest octave, three quarters of the points, is then
    three contiguous passes over the planes that LLVM vectorises (a strided pass over the full map
    does not). The mapsize^2 - 1 draws come from one uniform stream, in the order of the octaves."""
    k = mapsize // 2
    kk = np.uint64(k)
    planes = np.empty((4, k, k), np.float64)
    even, centre, row_mid, col_mid = planes[0].ravel(), planes[1].ravel(), planes[2].ravel(), planes[3].ravel()
    even[0] = 0.0
    u = uniforms(seed, mapsize * mapsize)
    wibble = _diamond_square(even, k, u, wibbledecay)
    amp = wibble * wibble
    a2 = amp * (2.0 / 4294967296.0)
    one = np.uint64(1)
    last = kk - one  # the last column: its right neighbour wraps, so it is peeled off the loops
    draw = kk * kk - one  # the draws the coarser octaves took
    for i in range(kk):  # squares: map[2i+1, 2j+1] from its four even corners
        r0 = np.uint64(i) * kk
        r1 = ((np.uint64(i) + one) & last) * kk
        d = draw + r0
        for j in range(last):
            t = even[r0 + j] + even[r1 + j] + even[r0 + j + one] + even[r1 + j + one]
            centre[r0 + j] = t * 0.25 + (u[d + j] * a2 - amp)
        t = even[r0 + last] + even[r1 + last] + even[r0] + even[r1]
        centre[r0 + last] = t * 0.25 + (u[d + last] * a2 - amp)
    draw += kk * kk
    for i in range(kk):  # diamonds: map[2i, 2j+1] from the centres above and below, the evens beside
        r0 = np.uint64(i) * kk
        ru = ((np.uint64(i) - one) & last) * kk
        d = draw + r0
        for j in range(last):
            t = centre[r0 + j] + centre[ru + j] + even[r0 + j] + even[r0 + j + one]
            row_mid[r0 + j] = t * 0.25 + (u[d + j] * a2 - amp)
        t = centre[r0 + last] + centre[ru + last] + even[r0 + last] + even[r0]
        row_mid[r0 + last] = t * 0.25 + (u[d + last] * a2 - amp)
    draw += kk * kk
    for i in range(kk):  # and map[2i+1, 2j] from the centres beside, the evens above and below
        r0 = np.uint64(i) * kk
        r1 = ((np.uint64(i) + one) & last) * kk
        d = draw + r0
        t = centre[r0] + centre[r0 + last] + even[r0] + even[r1]
        col_mid[r0] = t * 0.25 + (u[d] * a2 - amp)
        for j in range(one, kk):
            t = centre[r0 + j] + centre[r0 + j - one] + even[r0 + j] + even[r1 + j]
            col_mid[r0 + j] = t * 0.25 + (u[d + j] * a2 - amp)
    flat = planes.ravel()
    lo, hi = flat[0], flat[0]
    for q in range(flat.size):
        v = flat[np.uint64(q)]
        lo = min(lo, v)
        hi = max(hi, v)
    return planes, lo, hi


@njit(cache=True, nogil=True)
def fog_blend(img: np.ndarray, planes: np.ndarray, lo: float, hi: float, strength: float, out: np.ndarray) -> None:
    """uint8(clip((x + strength plasma) max(x) / (max(x) + strength), 0, 1) 255), x on [0, 1], with
    plasma = (map - lo) / (hi - lo) of the map's top-left h x w corner, read off plasma_planes."""
    h, w, _ = img.shape
    src = img.ravel()
    dst = out.ravel()
    peak = np.uint8(0)
    for q in range(src.size):
        peak = max(peak, src[np.uint64(q)])
    m = peak / 255.0
    scale = m / (m + strength) * 255.0  # the final * 255 folded in
    inv = np.float32(scale / 255.0)
    fs = strength * scale / (hi - lo) if hi > lo else 0.0  # fog = fs (map - lo)
    shift = np.float32(fs * lo)
    add = np.empty(w, np.float32)  # the row's fog per pixel
    ww = np.uint64(w)
    pairs = ww >> np.uint64(1)
    row_bytes = ww * np.uint64(3)
    zero, top = np.float32(0.0), np.float32(255.0)
    for y in range(h):
        evens = planes[(y & 1) * 3, y >> 1]  # the row's even columns (planes 0 or 3), odd columns (2 or 1)
        odds = planes[2 - (y & 1), y >> 1]
        for x in range(pairs):
            add[np.uint64(2) * x] = np.float32(fs * evens[x]) - shift
            add[np.uint64(2) * x + np.uint64(1)] = np.float32(fs * odds[x]) - shift
        if ww & np.uint64(1):
            add[ww - np.uint64(1)] = np.float32(fs * evens[pairs]) - shift
        base = np.uint64(y) * row_bytes
        for x in range(ww):
            a = add[x]
            p = base + np.uint64(3) * x
            for ch in range(3):
                v = np.float32(src[p + np.uint64(ch)]) * inv + a
                dst[p + np.uint64(ch)] = np.uint8(np.int32(min(max(v, zero), top)))


@njit(cache=True, nogil=True)
def snow_flakes(zoomed: np.ndarray, scale: float, loc: float, threshold: float, out: np.ndarray) -> None:
    """The original's snow layer after its zoom, as the 8-bit image it hands to ImageMagick:
    v = zoomed * scale + loc (the zoom is affine-invariant, so it ran on the unit normal draws),
    0 below the threshold, uint8(clip(v, 0, 1) 255)."""
    src = zoomed.ravel()
    dst = out.ravel()
    a, b, t = np.float32(scale), np.float32(loc), np.float32(threshold)
    for k in range(src.size):
        v = src[k] * a + b
        dst[k] = _truncated(np.float32(0.0) if v < t else v)


@njit(cache=True, nogil=True)
def snow_finish(img: np.ndarray, flakes: np.ndarray, mix: float, amount: float, out: np.ndarray) -> None:
    """make_imagenet_c.py's last two lines of snow in one pass, x on [0, 1]:
    x = mix x + (1 - mix) max(x, grey(x) 1.5 + 0.5); out = uint8(clip(x + f + rot180(f), 0, 1) 255),
    f = amount * flakes / 255 (grey: OpenCV's RGB2GRAY weights), on RGB (H, W, 3). Row by row: the grey
    and snow of the row first, then the values, over flat views with unsigned indices; the channel
    count a constant (a run-time count halves the speed)."""
    h, w, _ = img.shape
    c = 3
    inv = np.float32(1.0 / 255.0)
    m = np.float32(mix)
    keep = np.float32(1.0) - m
    k = np.float32(amount) * inv
    zero, one, top = np.float32(0.0), np.float32(1.0), np.float32(255.0)
    src = img.ravel()
    dst = out.ravel()
    grey = np.empty(w, np.float32)
    snow = np.empty(w, np.float32)
    cu = np.uint64(3)
    for y in range(h):
        s = src[y * w * c:(y + 1) * w * c]
        d = dst[y * w * c:(y + 1) * w * c]
        fa = flakes[y]
        fb = flakes[h - 1 - y]
        for x in range(w):
            xu = np.uint64(x)
            j = xu * cu
            grey[xu] = (np.float32(0.299) * np.float32(s[j]) + np.float32(0.587) * np.float32(s[j + np.uint64(1)])
                        + np.float32(0.114) * np.float32(s[j + np.uint64(2)])) * (inv * np.float32(1.5)) \
                + np.float32(0.5)
            snow[xu] = (np.float32(fa[xu]) + np.float32(fb[np.uint64(w - 1) - xu])) * k
        for x in range(w):
            xu = np.uint64(x)
            gx, sx = grey[xu], snow[xu]
            for ch in range(3):
                j = xu * cu + np.uint64(ch)
                v = np.float32(s[j]) * inv
                v = m * v + keep * (v if v > gx else gx) + sx
                v = v if v > zero else zero
                d[j] = np.uint8((v if v < one else one) * top)


@njit(cache=True, nogil=True)
def liquid_layer(seed: np.uint64, shape: tuple, loc: float, scale: float, quantiles: np.ndarray) -> np.ndarray:
    """spatter's N(loc, scale) layer, float32, from the quantile table (as standard_normals)."""
    out = np.empty(shape, np.float32)
    flat = out.ravel()
    u = uniforms(seed, flat.size)
    lo, sc = np.float32(loc), np.float32(scale)
    for j in range(np.uint64(flat.size)):
        flat[j] = lo + sc * _normal(u[j], quantiles)
    return out


@njit(cache=True, nogil=True)
def spatter_drops(liquid: np.ndarray, threshold: float, drops: np.ndarray) -> None:
    """The original's liquid[liquid < threshold] = 0, then uint8(liquid * 255), in one pass."""
    src, dst = liquid.ravel(), drops.ravel()
    t = np.float32(threshold)
    for j in range(np.uint64(src.size)):
        v = src[j]
        dst[j] = np.uint8(np.int32(v * np.float32(255.0))) if v >= t else np.uint8(0)


@njit(cache=True, nogil=True)
def spatter_water(img: np.ndarray, drops: np.ndarray, dist: np.ndarray, gain: float, water: np.ndarray,
                  out: np.ndarray) -> None:
    """uint8(clip(x + m / max(m) gain water, 0, 1) 255), m = drops dist, x = img / 255, in float32 as the
    original's; the peak, the layer and the blend in three vectorised passes instead of numpy's seven."""
    d, e = drops.ravel(), dist.ravel()
    n = np.uint64(d.size)
    layer = np.empty(d.size, np.float32)
    peak = np.float32(0.0)
    for j in range(n):
        layer[j] = np.float32(d[j]) * e[j]
        peak = max(peak, layer[j])
    g = np.float32(gain)
    if peak > 0:
        for j in range(n):
            layer[j] = layer[j] / peak * g
    else:
        for j in range(n):
            layer[j] = layer[j] * g
    _tint_blend(img.ravel(), layer, water, np.float32(1.0), out.ravel())


@njit(cache=True, nogil=True)
def spatter_mud(img: np.ndarray, mask: np.ndarray, amount: float, mud: np.ndarray, out: np.ndarray) -> None:
    """mask[mask < 0.8] = 0; uint8(clip(x (1 - a mask) + mud a mask, 0, 1) 255) in float32."""
    flat = mask.ravel()
    layer = np.empty(flat.size, np.float32)
    a = np.float32(amount)
    for j in range(np.uint64(flat.size)):
        m = flat[j]
        layer[j] = (m if m >= np.float32(0.8) else np.float32(0.0)) * a
    _tint_blend(img.ravel(), layer, mud, np.float32(-1.0), out.ravel())


@njit(cache=True, nogil=True, inline="always")
def _tint_blend(src, layer, colour, keep, dst) -> None:
    # keep 1: x + m colour (water); keep -1: x (1 - m) + colour m (mud). Per pixel, its channels written
    # out for RGB (a loop over channels inside does not vectorise)
    inv = np.float32(1.0 / 255.0)
    one, zero, full = np.float32(1.0), np.float32(0.0), np.float32(255.0)
    ch = src.size // layer.size
    if ch == 3:
        c0, c1, c2 = colour[0], colour[1], colour[2]
        u1, u2 = np.uint64(1), np.uint64(2)  # unsigned offsets: k + 1 with a signed 1 would be a float
        for j in range(np.uint64(layer.size)):
            m = layer[j]
            k = np.uint64(3) * j
            if keep > 0:
                v0 = np.float32(src[k]) * inv + m * c0
                v1 = np.float32(src[k + u1]) * inv + m * c1
                v2 = np.float32(src[k + u2]) * inv + m * c2
            else:
                v0 = np.float32(src[k]) * inv * (one - m) + c0 * m
                v1 = np.float32(src[k + u1]) * inv * (one - m) + c1 * m
                v2 = np.float32(src[k + u2]) * inv * (one - m) + c2 * m
            dst[k] = np.uint8(np.int32(min(max(v0, zero), one) * full))
            dst[k + u1] = np.uint8(np.int32(min(max(v1, zero), one) * full))
            dst[k + u2] = np.uint8(np.int32(min(max(v2, zero), one) * full))
    else:
        for j in range(np.uint64(src.size)):
            m = layer[j // np.uint64(ch)]
            c = colour[j % np.uint64(ch)]
            if keep > 0:
                v = np.float32(src[j]) * inv + m * c
            else:
                v = np.float32(src[j]) * inv * (one - m) + c * m
            dst[j] = np.uint8(np.int32(min(max(v, zero), one) * full))


@njit(cache=True, nogil=True)
def prefix_row(src: np.ndarray, ch: int, dst: np.ndarray) -> None:
    """dst[(i + 1) ch + c] = the sum of src[i' ch + c] for i' <= i (values interleaved by channel);
    dst[:ch] stays as it is (0). For RGB the running sums stay in registers (through the array, each
    add waits on the store before it)."""
    if ch == 3:
        s0 = s1 = s2 = np.int64(0)
        for x in range(src.size // 3):
            s0 += src[3 * x]
            s1 += src[3 * x + 1]
            s2 += src[3 * x + 2]
            dst[3 * x + 3] = s0
            dst[3 * x + 4] = s1
            dst[3 * x + 5] = s2
    else:
        for j in range(src.size):
            dst[j + ch] = dst[j] + src[j]
