"""The typographic attack as a family: a word written onto the image (the attack CLIP falls for).

Level in [0, 1]: the text's height is level x 0.3 of the image's short side (smaller where the
word would be wider than the image), its opacity 0.5 + 0.5 x level; 0 writes nothing. The word (from WORDS), the position (the whole text inside the
image where it fits), and the colour (white with a black outline, or the reverse) are drawn from
the image's stream (seed, family, level, image content), so the bytes are the same alone or in any
batch. The font is DejaVu Sans Bold, the copy matplotlib (a declared dependency) ships, rendered by
Pillow's bundled FreeType: the same bytes on every machine with the same Pillow and matplotlib.
`write_text` writes a given word (downstream's typographic attack writes a wrong class name).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from vfmaudit.perturb.registry import Family, register

# the control words of the family: common nouns (a downstream run leaves out its own class names)
WORDS = ("apple", "bicycle", "bridge", "candle", "castle", "cloud", "dog", "guitar", "hammer", "kettle", "lamp",
         "lion", "mountain", "piano", "pizza", "rocket", "shoe", "spoon", "tiger", "umbrella")
HEIGHT = 0.3  # of the short side at level 1


def font_path() -> Path:
    """DejaVu Sans Bold from matplotlib's data, found without importing matplotlib."""
    spec = importlib.util.find_spec("matplotlib")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


@lru_cache(maxsize=64)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path()), size)


def write_text(img: np.ndarray, word: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """img uint8 (H, W, 3) with `word` written at `level` (see the module), placed by `rng`."""
    from PIL import Image, ImageDraw

    h, w = img.shape[:2]
    size = int(round(float(level) * HEIGHT * min(h, w)))
    if level <= 0 or size < 1:
        return img.copy()
    font = _font(size)
    stroke = max(1, size // 12)
    left, top, right, bottom = font.getbbox(word, stroke_width=stroke)
    if right - left > w and size > 1:  # a long word: smaller, so that all of it is on the image
        size = max(1, int(size * w / (right - left)))
        font, stroke = _font(size), max(1, size // 12)
        left, top, right, bottom = font.getbbox(word, stroke_width=stroke)
    x = rng.integers(0, max(w - (right - left), 0) + 1) - left
    y = rng.integers(0, max(h - (bottom - top), 0) + 1) - top
    light = bool(rng.integers(0, 2))
    fill, outline = ((255, 255, 255), (0, 0, 0)) if light else ((0, 0, 0), (255, 255, 255))
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((int(x), int(y)), word, font=font, fill=(*fill, 255), stroke_width=stroke,
                               stroke_fill=(*outline, 255))
    alpha = np.asarray(layer)[..., 3:4].astype(np.float64) / 255.0 * (0.5 + 0.5 * min(float(level), 1.0))
    out = img.astype(np.float64) * (1 - alpha) + np.asarray(layer)[..., :3].astype(np.float64) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def typographic(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    out = np.empty_like(batch)
    for i, img in enumerate(batch):
        rng = np.random.default_rng(int(seeds[i]))
        out[i] = write_text(img, WORDS[int(rng.integers(len(WORDS)))], level, rng)
    return out


register(Family(name="typographic", lo=0.0, hi=1.0, identity=0.0, units="text height / (0.3 x short side)",
                apply_batch=typographic, stochastic=True,
                description="write a word onto the image (the typographic attack): height level x 0.3 of the "
                            "short side, opacity 0.5 + 0.5 level, word, place and colour seeded per image"))
