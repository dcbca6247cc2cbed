"""ImageNet-C weather: snow, frost, fog, and spatter (one of the four extra corruptions)."""

from __future__ import annotations

import cv2
import numpy as np

from vfmaudit.perturb.families.imagenet_c import _kernels
from vfmaudit.perturb.families.imagenet_c._common import blur_float, draw_index, draw_seed, draw_uniform, output_for
from vfmaudit.perturb.families.imagenet_c.blur import motion_blur_uint8
from vfmaudit.perturb.families.imagenet_c.frost import frost_texture
from vfmaudit.perturb.families.imagenet_c.noise import normal_quantiles


def clipped_zoom_2d(layer: np.ndarray, z: float) -> np.ndarray:
    out = np.zeros(layer.shape + (1,), np.float32)
    _kernels.zoom_accumulate(np.ascontiguousarray(layer[..., None], dtype=np.float32), np.array([z]), out)
    return out[..., 0]


def snow(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    if p["amount"] <= 0:
        return img.copy()
    h, w = img.shape[:2]
    normals = _kernels.standard_normals(draw_seed(seed, 0), (h, w), normal_quantiles())
    layer = clipped_zoom_2d(normals, p["zoom"])
    # N(loc, scale) draws, thresholded; the original round-trips them through an 8-bit PNG for
    # ImageMagick's motion blur
    flakes = np.empty((h, w), np.uint8)
    _kernels.snow_flakes(layer, float(p["scale"]), float(p["loc"]), float(p["threshold"]), flakes)
    flakes = motion_blur_uint8(flakes, p["radius"], p["sigma"], draw_uniform(seed, 1, -135, -45))
    out = output_for(img, out)
    _kernels.snow_finish(img, flakes, float(p["mix"]), float(p["amount"]), out)
    return out


def frost(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    if p["frost"] <= 0 and p["image"] == 1.0:
        return img.copy()
    h, w = img.shape[:2]
    texture = frost_texture(draw_index(seed, 0, 5), h, w)  # frost1..frost5, as the original (not frost6)
    top = draw_index(seed, 1, texture.shape[0] - h + 1)
    left = draw_index(seed, 2, texture.shape[1] - w + 1)
    out = output_for(img, out)
    _kernels.frost_blend(np.ascontiguousarray(img), texture, top, left, float(p["image"]), float(p["frost"]), out)
    return out


def fog(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    strength = p["strength"]
    if strength <= 0:
        return img.copy()
    h, w = img.shape[:2]
    mapsize = 1 << max(1, int(np.ceil(np.log2(max(h, w, 2)))))  # 256 at 224, as the original
    planes, lo, hi = _kernels.plasma_planes(mapsize, float(p["wibbledecay"]), np.uint64(seed))
    out = output_for(img, out)
    _kernels.fog_blend(img, planes, lo, hi, float(strength), out)
    return out


_WATER = np.array([175, 238, 238], np.float32) / 255  # pale turquoise
_MUD = np.array([63, 42, 20], np.float32) / 255


def _gaussian(a: np.ndarray, sigma: float) -> np.ndarray:
    # skimage.filters.gaussian on a 2-D float: mode 'nearest', truncate 4
    return blur_float(a, sigma) if sigma > 0 else a.astype(np.float32)


def spatter(img: np.ndarray, p: dict, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    if p["amount"] <= 0:
        return img.copy()
    h, w = img.shape[:2]
    liquid = _kernels.liquid_layer(draw_seed(seed, 0), (h, w), float(p["loc"]),
                                   float(p["scale"]), normal_quantiles())
    liquid = _gaussian(liquid, p["sigma"])
    x = np.ascontiguousarray(img if img.ndim == 3 else img[..., None])
    out = output_for(img, out)
    dst = out.reshape(x.shape)  # (H, W, C) view, gray images too
    if p["mud"] < 0.5:  # water: embossed edges of the drops, tinted
        drops = np.empty((h, w), np.uint8)
        _kernels.spatter_drops(liquid, float(p["threshold"]), drops)
        dist = cv2.distanceTransform(255 - cv2.Canny(drops, 50, 150), cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, emboss), (3, 3)).astype(np.float32)
        _kernels.spatter_water(x, drops, dist, float(p["intensity"] * p["amount"]), _tint(_WATER, x.shape[2]), dst)
    else:
        mask = _gaussian((liquid > np.float32(p["threshold"])).astype(np.float32), p["intensity"])
        _kernels.spatter_mud(x, mask, float(p["amount"]), _tint(_MUD, x.shape[2]), dst)
    return out


_LUMA = np.array([0.2125, 0.7154, 0.0721], np.float32)  # skimage's rgb2gray, which the original uses on gray


def _tint(colour: np.ndarray, channels: int) -> np.ndarray:
    if channels == 3:
        return colour
    if channels == 1:
        return np.array([colour @ _LUMA], np.float32)
    raise ValueError(f"spatter takes gray or RGB images, not {channels} channels")
