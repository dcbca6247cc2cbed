"""The preprocessing an encoder owns: geometry (resize, crop) on uint8, then normalisation.

Geometry follows torchvision's Resize/CenterCrop on PIL images, which is what open_clip and
timm use at evaluation, so embeddings equal the reference transforms'.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

_PIL_INTERP = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


@dataclass(frozen=True)
class PreprocessSpec:
    size: tuple[int, int]  # (H, W) the model takes
    resize: int  # shortest side before the centre crop ("shortest"), ignored for "squash"
    resize_mode: str = "shortest"  # "shortest" | "squash" | "longest"
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    fill: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessSpec":
        return cls(size=tuple(d["size"]), resize=int(d["resize"]), resize_mode=d["resize_mode"],
                   interpolation=d["interpolation"], mean=tuple(d["mean"]), std=tuple(d["std"]),
                   fill=int(d.get("fill", 0)))

    # -- geometry -------------------------------------------------------------------------
    def prepare(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (h, w, 3) of any size -> uint8 (H, W, 3) at the model's input size."""
        th, tw = self.size
        if image.shape[:2] == (th, tw):
            return image
        img = Image.fromarray(image)
        interp = _PIL_INTERP.get(self.interpolation, Image.Resampling.BICUBIC)
        w, h = img.size
        if self.resize_mode == "squash":
            return np.asarray(img.resize((tw, th), interp))
        if self.resize_mode == "longest":
            scale = min(th / h, tw / w)
            nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        else:  # torchvision Resize(int): shorter side to `resize`, longer side truncated
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = self.resize, int(self.resize * long / short)
            nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
        if (nw, nh) != (w, h):
            img = img.resize((nw, nh), interp)
        return _center_crop(np.asarray(img), th, tw, self.fill)

    # -- normalisation --------------------------------------------------------------------
    def normalize(self, batch: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), as ToTensor + Normalize."""
        x = batch.astype(np.float32) / np.float32(255.0)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _center_crop(arr: np.ndarray, th: int, tw: int, fill: int) -> np.ndarray:
    h, w = arr.shape[:2]
    if h < th or w < tw:  # torchvision pads symmetrically before cropping
        pt, pl = max(0, (th - h) // 2), max(0, (tw - w) // 2)
        pb, pr = max(0, (th - h + 1) // 2), max(0, (tw - w + 1) // 2)
        arr = np.pad(arr, ((pt, pb), (pl, pr), (0, 0)), constant_values=fill)
        h, w = arr.shape[:2]
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    return np.ascontiguousarray(arr[top:top + th, left:left + tw])


def prepare_batch(spec: PreprocessSpec, images: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Geometry for many images of any sizes -> uint8 (N, H, W, 3)."""
    th, tw = spec.size
    out = np.empty((len(images), th, tw, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = spec.prepare(img)
    return out
