"""Frost textures for ImageNet-C frost: procedural by default, the original files from a folder.

The original's six textures (frost1.png ... frost6.jpg) have no stated licence, so none ships
here. By default five textures are generated (one per index the original draws, 0..4): a
fractal frost haze, branching ice needles grown from random seeds, and a faint crystal glint,
bluish white on dark, 600 x 900 pixels. Set VFMAUDIT_FROST_DIR (or call set_frost_dir) to a
folder holding the original files to use them instead; their names and sizes are checked.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from vfmaudit.errors import VfmauditError

ENV = "VFMAUDIT_FROST_DIR"
# the five textures the original draws from (np.random.randint(5): frost6.jpg is never used),
# with their sizes (width x height) as shipped in hendrycks/robustness and imagecorruptions
ORIGINAL_FILES = (("frost1.png", (900, 600)), ("frost2.png", (560, 315)), ("frost3.png", (560, 315)),
                  ("frost4.jpg", (527, 350)), ("frost5.jpg", (660, 495)))
_SIZE = (600, 900)  # procedural texture, (height, width)

_frost_dir: Path | None = None
_lock = threading.Lock()


def set_frost_dir(folder: str | Path | None) -> None:
    """Use the original frost textures from `folder` (None: the environment variable, else procedural)."""
    global _frost_dir
    _frost_dir = Path(folder) if folder else None
    _load_textures.cache_clear()
    if _frost_dir is not None:
        _load_textures(str(_frost_dir))  # check now, not in the middle of an audit


def frost_source() -> dict:
    """Where the textures come from, for reports: procedural, or the folder and each file's sha256."""
    folder = _current_dir()
    if folder is None:
        return {"textures": "procedural", "generator": "vfmaudit frost v1"}
    return {"textures": str(folder), "sha256": _load_textures(str(folder))[1]}


def _current_dir() -> Path | None:
    if _frost_dir is not None:
        return _frost_dir
    env = os.environ.get(ENV)
    return Path(env) if env else None


def frost_texture(index: int, height: int, width: int) -> np.ndarray:
    """Texture `index` (0..4) as uint8 RGB, at least height x width: scaled up (bicubic) by the
    factor the image needs, times 1.1, when it is larger than the texture."""
    folder = _current_dir()
    texture = _load_textures(str(folder))[0][index] if folder else _procedural(index)
    th, tw = texture.shape[:2]
    if th < height or tw < width:
        f = max(height / th, width / tw) * 1.1
        texture = cv2.resize(texture, (max(width, int(np.ceil(tw * f))), max(height, int(np.ceil(th * f)))),
                             interpolation=cv2.INTER_CUBIC)
    return texture


@lru_cache(maxsize=4)
def _load_textures(folder: str) -> tuple[list[np.ndarray], dict[str, str]]:
    path = Path(folder)
    if not path.is_dir():
        raise VfmauditError(f"frost texture folder {path} does not exist; set {ENV} to the folder holding "
                            f"frost1.png ... frost5.jpg, or unset it for procedural frost")
    textures, sums = [], {}
    for name, (w, h) in ORIGINAL_FILES:
        f = path / name
        data = f.read_bytes() if f.is_file() else b""
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if img is None:
            raise VfmauditError(f"{f} is missing or not an image; the frost folder needs "
                                f"{', '.join(n for n, _ in ORIGINAL_FILES)}")
        if img.shape[:2] != (h, w):
            raise VfmauditError(f"{f} is {img.shape[1]}x{img.shape[0]}, the original is {w}x{h}: "
                                f"not the ImageNet-C texture")
        textures.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))  # cv2.imread drops alpha, as the original
        sums[name] = hashlib.sha256(data).hexdigest()
    return textures, sums


@lru_cache(maxsize=5)
def _procedural(index: int) -> np.ndarray:
    with _lock:
        return make_frost_texture(index)


def make_frost_texture(index: int, size: tuple[int, int] = _SIZE) -> np.ndarray:
    """A frost texture from seed `index`: uint8 RGB (height, width, 3)."""
    h, w = size
    g = np.random.Generator(np.random.PCG64(0xF7057 + index))
    # haze: smooth multi-octave noise, denser towards a random side (frost grows from the frame)
    haze = np.zeros((h, w), np.float32)
    for octave in range(6):
        cells = 2 ** (octave + 2)
        small = g.random((cells, cells * w // h + 1)).astype(np.float32)
        haze += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) / (1.6 ** octave)
    haze = (haze - haze.min()) / max(float(np.ptp(haze)), 1e-6)
    ramp = np.linspace(0.4, 1.0, w, dtype=np.float32)[None, :] * np.linspace(0.5, 1.0, h, dtype=np.float32)[:, None]
    if index % 2:
        ramp = ramp[:, ::-1]
    haze = haze ** 2 * ramp
    # needles: random walks that branch, drawn thin and bright
    needles = np.zeros((h, w), np.float32)
    for _ in range(400):
        _grow(needles, g, float(g.uniform(0, w)), float(g.uniform(0, h)), float(g.uniform(0, 2 * np.pi)),
              length=float(g.uniform(20, 90)), depth=3)
    needles = cv2.GaussianBlur(np.minimum(needles, 1.0), (0, 0), 0.7)
    grain = cv2.GaussianBlur(g.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8)
    # bright, as the originals (mean grey 130 to 210 of 255), with fine structure on top of the haze
    ice = np.clip(0.5 + 0.35 * haze + 0.45 * needles + 0.1 * grain, 0, 1)
    tint = np.array([0.8, 0.92, 1.0], np.float32)  # bluish white
    return (np.clip(ice[..., None] * tint, 0, 1) * 255).astype(np.uint8)


def _grow(canvas: np.ndarray, g: np.random.Generator, x: float, y: float, angle: float, length: float,
          depth: int) -> None:
    steps = max(2, int(length / 4))
    for _ in range(steps):
        nx, ny = x + 4 * np.cos(angle), y + 4 * np.sin(angle)
        cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), float(g.uniform(0.5, 1.0)), 1, cv2.LINE_AA)
        x, y = nx, ny
        angle += float(g.normal(0, 0.12))
        if depth > 0 and g.random() < 0.18:
            side = 1 if g.random() < 0.5 else -1
            _grow(canvas, g, x, y, angle + side * float(g.uniform(0.6, 1.1)), length * 0.5, depth - 1)
