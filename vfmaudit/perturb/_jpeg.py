"""A JPEG round trip (encode at a quality, decode) as libjpeg-turbo computes it, without the entropy
coding: the same bytes as PIL's and OpenCV's save-and-load, in one Numba call per image.

The entropy coding (Huffman) is lossless, so what an encode-decode does to the pixels is: RGB to YCbCr,
the chroma averaged over 2x2 (4:2:0), each 8x8 block through the forward DCT, quantised by the quality's
table, dequantised, through the inverse DCT, the chroma up-sampled back, YCbCr to RGB. Each step here
is libjpeg-turbo's integer arithmetic (its defaults, which PIL and OpenCV keep: baseline tables scaled
by jpeg_quality_scaling, JDCT_ISLOW, fancy up-sampling):

- colour (jccolor.c, jdcolor.c): 16-bit fixed point, FIX(x) = int(x 2^16 + 0.5), ONE_HALF rounding;
- edges (jcsample.c, jcprepct.c): columns repeated to a multiple of 16, rows to an even count, then
  the last sample row of each component repeated to its last block row;
- down-sampling (h2v2_downsample): (a + b + c + d + bias) >> 2, bias 1, 2, 1, 2 along the row;
- forward DCT (jfdctint.c, LL&M with CONST_BITS 13, PASS1_BITS 2) and quantisation by reciprocal
  (jcdctmgr.c compute_reciprocal / quantize: ((|t| + c) * f) >> r of the divisor 8 q);
- inverse DCT (jidctint.c) with its range limit, which wraps modulo 1024 (IDCT_range_limit);
- up-sampling (jdsample.c h2v2_fancy_upsample: 3/4 and 1/4 in each direction, rounding 8 and 7,
  edges repeated; int_upsample, pixel replication, where the chroma is at most 2 samples wide).

The tests compare the bytes with PIL's encode and decode (tests/test_jpeg_codec.py).

Not yet what the `jpeg` family runs: at 224 px it takes 314 us an image against 285 us for OpenCV's
encode and decode (2026-12-07, one thread). The colour stages are vectorised (35 and 57 us); the block
coding is 150 ns a block, bound by int64 arithmetic in 8 lanes (libjpeg-turbo's AVX2 DCTs work in
16-bit lanes). Fusing the column passes with the quantisation, and the range limit into the last
pass, is the next step (docs/benchmarks.md, issue 41).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

# Annex K's tables in natural (row-major) order, as libjpeg's jcparam.c
_LUMINANCE = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
              14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
              18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
              49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
_CHROMINANCE = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99) + (99,) * 32


def quant_table(base: tuple[int, ...], quality: int) -> np.ndarray:
    """jpeg_set_quality(quality, force_baseline=TRUE): the base table scaled, clamped to [1, 255]."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((np.array(base, np.int64) * scale + 50) // 100, 1, 255)


def reciprocal(divisor: int) -> tuple[int, int, int]:
    """compute_reciprocal: (f, c, r) with ((|t| + c) * f) >> r the rounded |t| / divisor."""
    if divisor == 1:
        return 1, 0, 16
    r = 16 + divisor.bit_length() - 1
    f, rest = divmod(1 << r, divisor)
    c = divisor // 2
    if rest == 0:  # a power of two: f one bit too wide for libjpeg's 16-bit element
        f >>= 1
        r -= 1
    elif rest <= divisor // 2:
        c += 1
    else:
        f += 1
    return f, c, r


@lru_cache(maxsize=128)
def tables(quality: int) -> np.ndarray:
    """(2, 4, 64) int64: per table (luminance, chrominance) q, f, c, r for each coefficient."""
    out = np.empty((2, 4, 64), np.int64)
    for t, base in enumerate((_LUMINANCE, _CHROMINANCE)):
        q = quant_table(base, quality)
        out[t, 0] = q
        out[t, 1:] = np.array([reciprocal(int(v) << 3) for v in q], np.int64).T
    return out


# FIX(x) of jfdctint.c / jidctint.c (CONST_BITS 13) and of the colour converters (SCALEBITS 16)
C0298, C0390, C0541, C0765, C0899, C1175 = 2446, 3196, 4433, 6270, 7373, 9633
C1501, C1847, C1961, C2053, C2562, C3072 = 12299, 15137, 16069, 16819, 20995, 25172
Y_R, Y_G, Y_B = 19595, 38470, 7471  # 0.299, 0.587, 0.114
CB_R, CB_G, HALF_C = 11059, 21709, 32768  # 0.16874, 0.33126, 0.5
CR_G, CR_B = 27439, 5329  # 0.41869, 0.08131
R_CR, B_CB, G_CR, G_CB = 91881, 116130, 46802, 22554  # 1.402, 1.772, 0.71414, 0.34414
_f = np.float32
FY_R, FY_G, FY_B, F_HALF, F_INV = _f(Y_R), _f(Y_G), _f(Y_B), _f(HALF_C), _f(1.0 / 65536)
FCB_R, FCB_G, FCR_G, FCR_B = _f(CB_R), _f(CB_G), _f(CR_G), _f(CR_B)
F_CHROMA_OFFSET = _f((128 << 16) + HALF_C - 1)  # CBCR_OFFSET + ONE_HALF - 1
FR_CR, FB_CB, FG_CR, FG_CB = _f(R_CR), _f(B_CB), _f(G_CR), _f(G_CB)
F_128, F_0, F_255 = _f(128), _f(0), _f(255)


@njit(cache=True, nogil=True, inline="always")
def _fdct8(d0, d1, d2, d3, d4, d5, d6, d7, first):
    t0, t7, t1, t6 = d0 + d7, d0 - d7, d1 + d6, d1 - d6
    t2, t5, t3, t4 = d2 + d5, d2 - d5, d3 + d4, d3 - d4
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    if first:  # rows: scaled up by 2^PASS1_BITS
        o0, o4, sh = (t10 + t11) << 2, (t10 - t11) << 2, 11
    else:  # columns: PASS1_BITS removed
        o0, o4, sh = (t10 + t11 + 2) >> 2, (t10 - t11 + 2) >> 2, 15
    rnd = 1 << (sh - 1)
    z1 = (t12 + t13) * C0541
    o2 = (z1 + t13 * C0765 + rnd) >> sh
    o6 = (z1 - t12 * C1847 + rnd) >> sh
    z1, z2, z3, z4 = t4 + t7, t5 + t6, t4 + t6, t5 + t7
    z5 = (z3 + z4) * C1175
    t4, t5, t6, t7 = t4 * C0298, t5 * C2053, t6 * C3072, t7 * C1501
    z1, z2 = -z1 * C0899, -z2 * C2562
    z3, z4 = z5 - z3 * C1961, z5 - z4 * C0390
    return (o0, (t7 + z1 + z4 + rnd) >> sh, o2, (t6 + z2 + z3 + rnd) >> sh, o4,
            (t5 + z2 + z4 + rnd) >> sh, o6, (t4 + z1 + z3 + rnd) >> sh)


@njit(cache=True, nogil=True, inline="always")
def _idct8(d0, d1, d2, d3, d4, d5, d6, d7, sh):
    rnd = 1 << (sh - 1)
    z1 = (d2 + d6) * C0541
    t2, t3 = z1 - d6 * C1847, z1 + d2 * C0765
    t0, t1 = (d0 + d4) << 13, (d0 - d4) << 13
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    z1, z2, z3, z4 = d7 + d1, d5 + d3, d7 + d3, d5 + d1
    z5 = (z3 + z4) * C1175
    t0, t1, t2, t3 = d7 * C0298, d5 * C2053, d3 * C3072, d1 * C1501
    z1, z2 = -z1 * C0899, -z2 * C2562
    z3, z4 = z5 - z3 * C1961, z5 - z4 * C0390
    t0, t1, t2, t3 = t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4
    return ((t10 + t3 + rnd) >> sh, (t11 + t2 + rnd) >> sh, (t12 + t1 + rnd) >> sh, (t13 + t0 + rnd) >> sh,
            (t13 - t0 + rnd) >> sh, (t12 - t1 + rnd) >> sh, (t11 - t2 + rnd) >> sh, (t10 - t3 + rnd) >> sh)


@njit(cache=True, nogil=True, inline="always")
def _transform_line(ws, b, k, step, forward, arg) -> None:
    # the 8 coefficients ws[k + j step, b] (a row: step 1, a column: step 8) through _fdct8 (arg: first)
    # or _idct8 (arg: the shift), in place
    d0, d1, d2, d3 = ws[k, b], ws[k + step, b], ws[k + 2 * step, b], ws[k + 3 * step, b]
    d4, d5, d6, d7 = ws[k + 4 * step, b], ws[k + 5 * step, b], ws[k + 6 * step, b], ws[k + 7 * step, b]
    o = _fdct8(d0, d1, d2, d3, d4, d5, d6, d7, arg) if forward else _idct8(d0, d1, d2, d3, d4, d5, d6, d7, arg)
    for j in range(8):
        ws[k + j * step, b] = o[j]


@njit(cache=True, nogil=True)
def _code_blocks(ws, nb, tab) -> None:
    # the first nb blocks of ws (64, CHUNK) through FDCT, quantisation, dequantisation and IDCT, in place;
    # the blocks side by side, so that every loop runs across blocks (vectorised)
    for r in range(8):  # forward, rows (scaled up by 2^PASS1_BITS)
        for b in range(nb):
            _transform_line(ws, b, 8 * r, 1, True, True)
    for c in range(8):  # forward, columns
        for b in range(nb):
            _transform_line(ws, b, c, 8, True, False)
    for i in range(64):  # quantise (jcdctmgr's reciprocal) and dequantise (jidctint's DEQUANTIZE)
        q, f, corr, sh = tab[0, i], tab[1, i], tab[2, i], tab[3, i]
        w = ws[i]
        for b in range(nb):
            t = w[b]
            v = ((abs(t) + corr) * f) >> sh
            w[b] = (-v if t < 0 else v) * q
    for c in range(8):  # inverse, columns
        for b in range(nb):
            _transform_line(ws, b, c, 8, False, 11)
    for r in range(8):  # inverse, rows, into the range limit
        for b in range(nb):
            _transform_line(ws, b, 8 * r, 1, False, 18)
    for i in range(64):
        w = ws[i]
        for b in range(nb):
            m = w[b] & 1023  # IDCT_range_limit: x + 128 clamped, wrapping modulo 1024 beyond +-512
            w[b] = m + 128 if m < 128 else (255 if m < 512 else (0 if m < 896 else m - 896))


CHUNK = 32  # blocks coded together: their work array (16 KB) stays in L1 through the passes


@njit(cache=True, nogil=True)
def _code_plane(plane, tab) -> None:
    bx = plane.shape[1] // 8
    blocks = plane.shape[0] // 8 * bx
    ws = np.empty((64, CHUNK), np.int64)
    for base in range(0, blocks, CHUNK):
        nb = min(CHUNK, blocks - base)
        for lane in range(nb):
            y0, x0 = (base + lane) // bx * 8, (base + lane) % bx * 8
            for r in range(8):
                row = plane[y0 + r]
                for c in range(8):
                    ws[r * 8 + c, lane] = np.int64(row[x0 + c]) - 128
        _code_blocks(ws, nb, tab)
        for lane in range(nb):
            y0, x0 = (base + lane) // bx * 8, (base + lane) % bx * 8
            for r in range(8):
                row = plane[y0 + r]
                for c in range(8):
                    row[x0 + c] = ws[r * 8 + c, lane]


@njit(cache=True, nogil=True)
def _to_ycc(img, lum, cb, cr) -> None:
    # colour conversion, edge repetition and 2x2 averaging of the chroma into whole blocks
    h, w, _ = img.shape
    hy, wy = lum.shape
    ch, cw = cb.shape
    ybuf = np.empty((2, 2 * cw), np.float32)
    cbbuf = np.empty((2, 2 * cw), np.float32)
    crbuf = np.empty((2, 2 * cw), np.float32)
    quarter = np.float32(0.25)
    for cy in range((h + 1) // 2):  # full-resolution rows in pairs (the last repeated where h is odd)
        for v in range(2):
            src = img[min(2 * cy + v, h - 1)].reshape(3 * w)  # flat: a constant stride of 3 vectorises
            yb, bb, rb = ybuf[v], cbbuf[v], crbuf[v]
            for x in range(w):  # in float32, exactly: every sum is an integer below 2^24 (libjpeg's design)
                r, g, b = np.float32(src[3 * x]), np.float32(src[3 * x + 1]), np.float32(src[3 * x + 2])
                yb[x] = np.float32(np.int32((FY_R * r + FY_G * g + FY_B * b + F_HALF) * F_INV))
                bb[x] = np.float32(np.int32((F_HALF * b - FCB_R * r - FCB_G * g + F_CHROMA_OFFSET) * F_INV))
                rb[x] = np.float32(np.int32((F_HALF * r - FCR_G * g - FCR_B * b + F_CHROMA_OFFSET) * F_INV))
            for x in range(w, 2 * cw):  # the last column repeated
                yb[x], bb[x], rb[x] = yb[w - 1], bb[w - 1], rb[w - 1]
            if 2 * cy + v < hy:
                dst = lum[2 * cy + v]
                for x in range(wy):
                    dst[x] = np.uint8(yb[x])
        b0, b1, r0, r1 = cbbuf[0], cbbuf[1], crbuf[0], crbuf[1]
        db, dr = cb[cy], cr[cy]
        for x in range(cw):
            bias = np.float32(1 + (x & 1))
            db[x] = np.int32((b0[2 * x] + b0[2 * x + 1] + b1[2 * x] + b1[2 * x + 1] + bias) * quarter)
            dr[x] = np.int32((r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1] + bias) * quarter)
    for y in range(h, hy):  # the last sample row repeated to the last block row
        lum[y] = lum[h - 1]
    for y in range((h + 1) // 2, ch):
        cb[y] = cb[(h + 1) // 2 - 1]
        cr[y] = cr[(h + 1) // 2 - 1]


@njit(cache=True, nogil=True)
def _fancy_row(colsum, up) -> None:
    # out[2x] = (3 s[x] + s[x - 1] + 8) >> 4, out[2x + 1] = (3 s[x] + s[x + 1] + 7) >> 4, edges repeated
    n = colsum.size
    up[0] = (4 * colsum[0] + 8) >> 4
    up[2 * n - 1] = (4 * colsum[n - 1] + 7) >> 4
    up[1] = (3 * colsum[0] + colsum[1] + 7) >> 4
    up[2 * n - 2] = (3 * colsum[n - 1] + colsum[n - 2] + 8) >> 4
    for x in range(1, n - 1):
        up[2 * x] = (3 * colsum[x] + colsum[x - 1] + 8) >> 4
        up[2 * x + 1] = (3 * colsum[x] + colsum[x + 1] + 7) >> 4


@njit(cache=True, nogil=True)
def _to_rgb(lum, cb, cr, out) -> None:
    # chroma up-sampling and colour conversion of the decoded planes
    h, w, _ = out.shape
    dw, dh = -(-w // 2), -(-h // 2)  # chroma samples the decoder keeps
    sum_b = np.empty(dw, np.int64)
    sum_r = np.empty(dw, np.int64)
    up_b = np.empty(2 * dw, np.int64)
    up_r = np.empty(2 * dw, np.int64)
    for y in range(h):
        cy = y >> 1
        if dw > 2:  # h2v2_fancy_upsample
            near = min(max(cy - 1 if (y & 1) == 0 else cy + 1, 0), dh - 1)  # the row above, or below
            sb0, sb1, sr0, sr1 = cb[cy], cb[near], cr[cy], cr[near]
            for x in range(dw):
                sum_b[x] = 3 * np.int64(sb0[x]) + sb1[x]
                sum_r[x] = 3 * np.int64(sr0[x]) + sr1[x]
            _fancy_row(sum_b, up_b)
            _fancy_row(sum_r, up_r)
        else:  # int_upsample: each chroma sample repeated
            for x in range(2 * dw):
                up_b[x] = cb[cy, x >> 1]
                up_r[x] = cr[cy, x >> 1]
        dst = out[y].reshape(3 * w)
        yrow = lum[y]
        for x in range(w):  # float32, exactly again (|sums| < 2^24); floor as libjpeg's arithmetic shift
            yy = np.float32(yrow[x])
            xb, xr = np.float32(up_b[x]) - F_128, np.float32(up_r[x]) - F_128
            red = yy + np.floor((FR_CR * xr + F_HALF) * F_INV)
            green = yy + np.floor((F_HALF - FG_CR * xr - FG_CB * xb) * F_INV)
            blue = yy + np.floor((FB_CB * xb + F_HALF) * F_INV)
            dst[3 * x] = np.uint8(min(max(red, F_0), F_255))
            dst[3 * x + 1] = np.uint8(min(max(green, F_0), F_255))
            dst[3 * x + 2] = np.uint8(min(max(blue, F_0), F_255))


@njit(cache=True, nogil=True)
def _roundtrip(img, tabs, out) -> None:
    h, w, _ = img.shape
    lum = np.empty((-(-h // 8) * 8, -(-w // 8) * 8), np.uint8)  # luminance: whole blocks
    cb = np.empty((-(-h // 16) * 8, -(-w // 16) * 8), np.uint8)  # chroma: whole blocks of 2x2 averages
    cr = np.empty_like(cb)
    _to_ycc(img, lum, cb, cr)
    _code_plane(lum, tabs[0])
    _code_plane(cb, tabs[1])
    _code_plane(cr, tabs[1])
    _to_rgb(lum, cb, cr, out)


def jpeg_roundtrip(img: np.ndarray, quality: int, out: np.ndarray) -> None:
    """out = the uint8 RGB image (H, W, 3) saved as a baseline 4:2:0 JPEG at the quality and read back,
    as libjpeg-turbo (PIL, OpenCV) does it."""
    _roundtrip(img, tables(int(quality)), out)
