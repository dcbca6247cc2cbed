"""ImageNet-C digital corruptions: brightness, contrast, elastic transform, pixelate, JPEG, saturate."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from vfmaudit.perturb.families.imagenet_c import _kernels
from vfmaudit.perturb.families.imagenet_c._box import pixelate_box
from vfmaudit.perturb.families.imagenet_c._common import draw_seed, draw_uniform, output_for, to_uint8, unit
from vfmaudit.perturb.families.jpeg import jpeg


def brightness(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    # float32 (skimage's HSV round trip rounds differently anyway: float32 lands as close as float64)
    out = output_for(img, out)
    _kernels.hsv_value_shift(np.ascontiguousarray(img), float(p["c"]), out)
    return out


def saturate(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    # float64: float32 moves up to 13 % of the truncated values by one
    out = output_for(img, out)
    _kernels.hsv_saturation_affine(np.ascontiguousarray(img), float(p["gain"]), float(p["offset"]), out)
    return out


def contrast(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    # (x - m) c + m per channel is a function of the grey level alone: one 256-entry table a channel
    means = np.array(cv2.mean(img)[:3]) / 255.0
    levels = np.arange(256)[:, None] / 255.0
    lut = to_uint8((levels - means) * p["c"] + means)  # (256, 3), float64 as the original
    return cv2.LUT(img, lut.reshape(256, 1, 3), dst=out)  # out None: a new array


def pixelate(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    c = p["c"]
    if c >= 1:
        return img.copy()
    return pixelate_box(img, c, out)  # PIL's BOX both ways, as the original, byte for byte in one Numba call


def jpeg_compression(img: np.ndarray, p: dict, seed: int) -> np.ndarray:
    return jpeg(img[None], p["quality"], np.zeros(1, np.uint64))[0]


@lru_cache(maxsize=32)
def _reflect_gaussian_matrix(n: int, sigma: float, truncate: float = 3.0) -> np.ndarray:
    """The (n, n) matrix of scipy.ndimage.gaussian_filter1d(mode='reflect', truncate) on length n:
    a field smoothed by it is A_rows @ field @ A_cols.T, two small matrix products whatever sigma."""
    radius = int(truncate * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (taps / sigma) ** 2)
    weights /= weights.sum()
    period = 2 * n
    cols = (np.arange(n)[:, None] + taps[None, :]) % period
    cols = np.where(cols < n, cols, period - 1 - cols)
    matrix = np.zeros((n, n))
    np.add.at(matrix, (np.repeat(np.arange(n), taps.size), cols.ravel()), np.tile(weights, n))
    return matrix


def _smooth_field(seed: np.uint64, h: int, w: int, sigma: float) -> np.ndarray:
    """An (h, w) displacement field: U(-1, 1) draws (the splitmix64 stream of the noises: a tenth of
    numpy's float32 draws) smoothed by reflect_gaussian."""
    return reflect_gaussian(_kernels.signed_uniforms(seed, (h, w)), sigma)


def reflect_gaussian(field: np.ndarray, sigma: float) -> np.ndarray:
    """skimage.filters.gaussian(field, sigma, mode='reflect', truncate=3) of a float32 (h, w) field, in
    float32 (the displacements are float32 in the end; half the time of float64)."""
    h, w = field.shape
    if sigma <= 0:
        return field
    radius = int(3.0 * sigma + 0.5)
    if radius < min(h, w):  # the kernel fits: OpenCV's separable blur, BORDER_REFLECT is scipy's 'reflect'
        taps = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 * (taps / sigma) ** 2)
        kernel = (kernel / kernel.sum()).astype(np.float32)
        return cv2.sepFilter2D(field, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    # wider than the image (severities 1 and 2 at 224 px): the reflections folded into two matrices
    smooth = _reflect_gaussian_matrix(h, float(sigma)) @ field @ _reflect_gaussian_matrix(w, float(sigma)).T
    return smooth.astype(np.float32)


def elastic_transform(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    alpha, sigma, jitter = p["alpha"], p["sigma"], p["affine"]
    if alpha <= 0 and jitter <= 0:
        return img.copy()
    h, w = img.shape[:2]
    x = unit(img)
    square = min(h, w) // 3
    if square > 0:  # random affine: three points around the centre, each moved by U(-jitter, jitter)
        centre = np.float32([h, w]) // 2
        pts1 = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
        moves = [draw_uniform(seed, i, -jitter, jitter) for i in range(pts1.size)]
        pts2 = pts1 + np.float32(moves).reshape(pts1.shape)
        matrix = cv2.getAffineTransform(pts1, pts2)
        x = cv2.warpAffine(x, matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    dx = _smooth_field(draw_seed(seed, 6), h, w, sigma) * np.float32(alpha)  # float32 fields, float32 displacements
    dy = _smooth_field(draw_seed(seed, 7), h, w, sigma) * np.float32(alpha)
    out = output_for(img, out)
    _kernels.remap_reflect(np.ascontiguousarray(x), dy, dx, out)
    return out
