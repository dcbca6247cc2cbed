"""ImageNet-C glass blur, as defined by Hendrycks & Dietterich (2019), "Benchmarking Neural
Network Robustness to Common Corruptions and Perturbations" (github.com/hendrycks/robustness,
Apache-2.0), in the form the `imagecorruptions` package (bethgelab, Apache-2.0) ships.

Written out here from that definition instead of installing `imagecorruptions`, which pulls in
the non-headless `opencv-python` and would overwrite our `opencv-python-headless` files. It
is deliberately the plain per-pixel Python loop of the reference, so it is slow (as the peer).
"""

from __future__ import annotations

import numpy as np
from skimage.filters import gaussian

# (sigma, max_delta, iterations) at severities 1..5
GLASS_BLUR_SEVERITIES = [(0.7, 1, 2), (0.9, 2, 1), (1.0, 2, 3), (1.1, 3, 2), (1.5, 4, 2)]


def glass_blur(image: np.ndarray, severity: int = 1) -> np.ndarray:
    """float64 (H, W, 3) in [0, 255]; random offsets come from numpy's global stream, as in the reference."""
    sigma, delta, iterations = GLASS_BLUR_SEVERITIES[severity - 1]
    x = np.uint8(gaussian(np.asarray(image) / 255.0, sigma=sigma, channel_axis=-1) * 255)
    height, width = x.shape[:2]
    for _ in range(iterations):
        for h in range(height - delta, delta, -1):
            for w in range(width - delta, delta, -1):
                dx, dy = np.random.randint(-delta, delta, size=(2,))
                # The reference writes `x[h, w], x[h', w'] = x[h', w'], x[h, w]`: with numpy
                # views that copies one way only (x[h, w] <- x[h', w']), so that is what it does.
                x[h, w] = x[h + dy, w + dx]
    return np.clip(gaussian(x / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255


# The other corruptions whose arithmetic the tests check, each as make_imagenet_c.py defines it
# (float64 on [0, 1], scikit-image / SciPy / Pillow / OpenCV calls), written from that definition.

def _out(x: np.ndarray) -> np.ndarray:
    return np.uint8(np.clip(x, 0, 1) * 255)


def brightness(image: np.ndarray, c: float) -> np.ndarray:
    from skimage.color import hsv2rgb, rgb2hsv

    x = rgb2hsv(image / 255.0)
    x[:, :, 2] = np.clip(x[:, :, 2] + c, 0, 1)
    return _out(hsv2rgb(x))


def saturate(image: np.ndarray, c: tuple[float, float]) -> np.ndarray:
    from skimage.color import hsv2rgb, rgb2hsv

    x = rgb2hsv(image / 255.0)
    x[:, :, 1] = np.clip(x[:, :, 1] * c[0] + c[1], 0, 1)
    return _out(hsv2rgb(x))


def contrast(image: np.ndarray, c: float) -> np.ndarray:
    x = image / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return _out((x - means) * c + means)


def pixelate(image: np.ndarray, c: float) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    x = Image.fromarray(image).resize((int(w * c), int(h * c)), Image.BOX)
    return np.asarray(x.resize((w, h), Image.BOX))


def jpeg_compression(image: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf))


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return _out(gaussian(image / 255.0, sigma=sigma, channel_axis=-1))


def defocus_blur(image: np.ndarray, c: tuple[float, float]) -> np.ndarray:
    import cv2

    radius, alias_blur = c
    grid, ksize = (np.arange(-8, 8 + 1), (3, 3)) if radius <= 8 else (np.arange(-radius, radius + 1), (5, 5))
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    kernel = cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)
    x = image / 255.0
    return _out(np.stack([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)], axis=-1))


def clipped_zoom(x: np.ndarray, z: float) -> np.ndarray:
    from scipy.ndimage import zoom

    h = x.shape[0]
    ch = int(np.ceil(h / z))
    top = (h - ch) // 2
    out = zoom(x[top:top + ch, top:top + ch], (z, z, 1), order=1)
    trim = (out.shape[0] - h) // 2
    return out[trim:trim + h, trim:trim + h]


def zoom_blur(image: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Square images only, as the original."""
    x = (image / 255.0).astype(np.float32)
    acc = np.zeros_like(x)
    for z in factors:
        acc += clipped_zoom(x, z)
    return _out((x + acc) / (len(factors) + 1))


def motion_blur(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick's MotionBlurImage (MagickCore/effect.c) on uint8 with edge virtual pixels, written
    out in numpy: 2 ceil(radius) + 1 one-sided Gaussian taps along the angle."""
    width = int(2 * np.ceil(radius) + 1)
    taps = np.arange(width)
    weights = np.exp(-(taps ** 2) / (2.0 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    weights /= weights.sum()
    px, py = width * np.sin(np.radians(angle)), width * np.cos(np.radians(angle))
    h, w = image.shape[:2]
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    acc = np.zeros(image.shape, np.float64)
    for i in taps:
        ox = int(np.ceil(i * py / np.hypot(px, py) - 0.5))
        oy = int(np.ceil(i * px / np.hypot(px, py) - 0.5))
        acc += weights[i] * image[np.clip(rows + oy, 0, h - 1), np.clip(cols + ox, 0, w - 1)]
    return np.clip(np.floor(acc + 0.5), 0, 255).astype(np.uint8)


def gaussian_noise(image: np.ndarray, c: float) -> np.ndarray:
    x = image / 255.0
    return _out(x + np.random.normal(size=x.shape, scale=c))


def shot_noise(image: np.ndarray, c: float) -> np.ndarray:
    return _out(np.random.poisson(image / 255.0 * c) / c)


def impulse_noise(image: np.ndarray, c: float) -> np.ndarray:
    from skimage.util import random_noise

    return _out(random_noise(image / 255.0, mode="s&p", amount=c, rng=int(np.random.randint(2 ** 31))))


def speckle_noise(image: np.ndarray, c: float) -> np.ndarray:
    x = image / 255.0
    return _out(x + x * np.random.normal(size=x.shape, scale=c))


def plasma_fractal(mapsize: int = 256, wibbledecay: float = 3) -> np.ndarray:
    """The diamond-square fractal of make_imagenet_c.py (global numpy stream), in [0, 1]."""
    grid = np.empty((mapsize, mapsize), dtype=np.float64)
    grid[0, 0] = 0
    step, wibble = mapsize, 100.0

    def wibbled(a):
        return a / 4 + wibble * np.random.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        corners = grid[0:mapsize:step, 0:mapsize:step]
        sq = corners + np.roll(corners, shift=-1, axis=0)
        sq += np.roll(sq, shift=-1, axis=1)
        grid[step // 2:mapsize:step, step // 2:mapsize:step] = wibbled(sq)
        dr = grid[step // 2:mapsize:step, step // 2:mapsize:step]
        ul = grid[0:mapsize:step, 0:mapsize:step]
        grid[0:mapsize:step, step // 2:mapsize:step] = wibbled(dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1))
        grid[step // 2:mapsize:step, 0:mapsize:step] = wibbled(dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0))
        step //= 2
        wibble /= wibbledecay
    grid -= grid.min()
    return grid / grid.max()


def fog(image: np.ndarray, c: tuple[float, float]) -> np.ndarray:
    """224 x 224 only, as the original (a 256 map cropped)."""
    x = image / 255.0
    peak = x.max()
    x = x + c[0] * plasma_fractal(wibbledecay=c[1])[:224, :224][..., None]
    return _out(x * peak / (peak + c[0]))


def elastic_transform(image: np.ndarray, c: tuple[float, float, float]) -> np.ndarray:
    """The original's: a random affine, then a smoothed random displacement field."""
    import cv2
    from scipy.ndimage import map_coordinates

    x = np.array(image, dtype=np.float32) / 255.0
    shape = x.shape
    centre = np.float32(shape[:2]) // 2
    square = min(shape[:2]) // 3
    pts1 = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    pts2 = pts1 + np.random.uniform(-c[2], c[2], size=pts1.shape).astype(np.float32)
    x = cv2.warpAffine(x, cv2.getAffineTransform(pts1, pts2), shape[:2][::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian(np.random.uniform(-1, 1, size=shape[:2]), c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
    dy = (gaussian(np.random.uniform(-1, 1, size=shape[:2]), c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
    cols, rows, chans = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    coords = (rows + dy[..., None]).reshape(-1), (cols + dx[..., None]).reshape(-1), chans.reshape(-1)
    return _out(map_coordinates(x, coords, order=1, mode="reflect").reshape(shape))
