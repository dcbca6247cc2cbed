"""The released ImageNet-C dataset's protocol (make_imagenet_c.py): Resize(256) -> CenterCrop(224)
-> corruption -> uint8 -> JPEG quality 85 (PIL, optimize=True). The published numbers are on these
files, not on corruptions computed in memory."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

PROTOCOLS = ("imagenet-c",)
RESIZE, CROP, JPEG_QUALITY = 256, 224, 85


def imagenet_c_crop(image: np.ndarray) -> np.ndarray:
    """torchvision's Resize(256) (shorter side to 256, PIL bilinear) then CenterCrop(224), on uint8 RGB."""
    h, w = image.shape[:2]
    if h <= w:
        size = (int(RESIZE * w / h), RESIZE)  # PIL takes (width, height)
    else:
        size = (RESIZE, int(RESIZE * h / w))
    resized = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    rh, rw = resized.shape[:2]
    top, left = int(round((rh - CROP) / 2.0)), int(round((rw - CROP) / 2.0))
    return np.ascontiguousarray(resized[top:top + CROP, left:left + CROP])


def save_like_release(image: np.ndarray) -> bytes:
    """The corrupted image as the release stored it: JPEG, quality 85, optimize=True."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def as_released(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) or (H, W, 3) through the release's JPEG 85 round trip."""
    batch = images[None] if images.ndim == 3 else images
    out = np.stack([np.asarray(Image.open(io.BytesIO(save_like_release(img)))) for img in batch])
    return out[0] if images.ndim == 3 else out


def check_protocol(protocol: str | None) -> None:
    from vfmaudit.errors import VfmauditError

    if protocol not in (None, "", *PROTOCOLS):
        raise VfmauditError(f"unknown protocol '{protocol}'; choose from {', '.join(PROTOCOLS)} (or none)",
                            param="protocol")
