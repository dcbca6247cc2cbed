"""Decode one file to RGB uint8 HWC; odd-but-valid images are converted, unreadable ones raise."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vfmaudit.errors import ImageDecodeError

# PIL's own default bound; above it a file is treated as a decompression bomb and skipped.
DEFAULT_MAX_PIXELS = 89_478_485


def to_rgb_uint8(arr: np.ndarray) -> np.ndarray:
    """Any gray/RGB/RGBA array of uint8, uint16, int or float to RGB uint8 HWC."""
    a = np.asarray(arr)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16 or (np.issubdtype(a.dtype, np.integer) and a.size and a.max() > 255):
        a = (np.clip(a, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)  # 16-bit to 8-bit
    elif np.issubdtype(a.dtype, np.floating):
        scale = 255.0 if a.size and np.nanmax(a) <= 1.0 else 1.0
        a = np.clip(np.nan_to_num(a) * scale + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 2:  # gray + alpha
        a = np.repeat(a[:, :, :1], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] >= 4:
        a = a[:, :, :3]  # drop alpha, as PIL's convert("RGB")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ImageDecodeError(f"unsupported image layout {arr.shape}")
    return np.ascontiguousarray(a)


def _from_pil(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return to_rgb_uint8(np.asarray(img))
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, LA, P, PA, RGBA, CMYK, YCbCr, LAB, HSV, 1
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3). Raises ImageDecodeError with the reason."""
    return _decode(Path(path), max_pixels, lambda: np.fromfile(path, dtype=np.uint8))


def decode_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An encoded image held in memory (a WebDataset member, a Parquet cell) as RGB uint8 (H, W, 3),
    decoded exactly as load_image decodes the same bytes in a file."""
    if not data:
        raise ImageDecodeError("empty image data")
    return _decode(io.BytesIO(data), max_pixels, lambda: np.frombuffer(data, dtype=np.uint8))


def _decode(source: Path | BinaryIO, max_pixels: int, raw) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageDecodeError(
                        f"decompression bomb: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels}"
                    )
                img = ImageOps.exif_transpose(img)
                img.load()
                arr = _from_pil(img)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageDecodeError(f"decompression bomb: {e}") from None
    except UnidentifiedImageError:
        arr = _load_with_opencv(raw())  # e.g. 16-bit multi-channel TIFF that PIL cannot open
    except (OSError, SyntaxError, ValueError, MemoryError) as e:
        raise ImageDecodeError(f"truncated or corrupt image: {e}") from None
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageDecodeError("image has no pixels")
    return arr


def _load_with_opencv(data: np.ndarray) -> np.ndarray:
    import cv2

    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if arr is None:
        raise ImageDecodeError("not an image (no decoder recognises the file)")
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = arr[:, :, [2, 1, 0] + list(range(3, arr.shape[2]))]  # BGR(A) -> RGB(A)
    return to_rgb_uint8(arr)
