"""Where images come from: files and folders given by the user, or the built-in samples."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from vfmaudit.data.decode import DEFAULT_MAX_PIXELS, load_image, to_rgb_uint8
from vfmaudit.errors import ImageDecodeError, VfmauditError

# Real photographs that ship inside scikit-image (no download needed).
SAMPLE_NAMES = (
    "astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field",
    "immunohistochemistry", "retina", "camera", "coins", "moon", "clock",
)


@dataclass(frozen=True)
class ImageItem:
    """One input: a stable id for reports and resume, and how to load it."""

    id: str
    load: Callable[[], np.ndarray]
    shard: str = ""  # the shard it was read from (sharded sources); resume skips finished shards
    label: str | None = None  # its label where the source has one (WebDataset cls/txt, a Parquet column)


def _sample_loader(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        arr = getattr(skimage.data, name)()
        if isinstance(arr, tuple):  # stereo pairs: take the left view
            arr = arr[0]
        return to_rgb_uint8(arr)

    return load


def sample_items(limit: int | None = None) -> list[ImageItem]:
    """The built-in sample set: photographs from skimage.data (greyscale ones converted to RGB)."""
    names = SAMPLE_NAMES[:limit] if limit else SAMPLE_NAMES
    return [ImageItem(id=f"skimage:{n}", load=_sample_loader(n)) for n in names]


def _file_loader(path: Path, max_pixels: int) -> Callable[[], np.ndarray]:
    return lambda: load_image(path, max_pixels=max_pixels)


def _walk(folder: Path, problems: list[tuple[Path, str]]) -> Iterable[Path]:
    """Non-hidden files below folder in a stable order; folders that cannot be listed go to problems."""
    def unreadable(e: OSError) -> None:
        problems.append((Path(e.filename), f"the folder cannot be listed: {e.strerror}"))

    for root, dirs, files in os.walk(folder, followlinks=False, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _display(path: Path, resolved: Path | None = None) -> str:
    full = resolved or Path(os.path.abspath(path))  # an unresolvable link is named as it was found
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


def _unreadable(reason: str) -> Callable[[], np.ndarray]:
    """The loader of an entry that is no image file: the audit skips it and lists the reason."""
    def load() -> np.ndarray:
        raise ImageDecodeError(reason)

    return load


def _resolve(path: Path) -> tuple[Path | None, str | None]:
    """(the real path, None), or (None, why it has none): a symbolic link loop, a broken link."""
    try:
        return path.resolve(strict=True), None
    except (RuntimeError, OSError) as e:  # RuntimeError: Python < 3.13 reports link loops that way
        if path.is_symlink():
            loop = isinstance(e, RuntimeError) or getattr(e, "errno", None) == errno.ELOOP
            return None, ("a symbolic link loop" if loop else "a broken symbolic link (its target is missing)")
        return None, f"cannot be opened: {getattr(e, 'strerror', None) or e}"


def collect_items(paths: Iterable[str | Path], max_pixels: int = DEFAULT_MAX_PIXELS) -> list[ImageItem]:
    """Files and folders (recursive, hidden entries skipped) to items, in a stable order.

    Every non-hidden entry in a folder is tried: a file that does not decode, a symbolic link
    loop or a broken link, and a sub-folder that cannot be listed are items whose loading fails,
    so the audit skips and lists them, never fatal. A path that does not exist, or inputs with no
    entry at all, stop the run before any work.
    """
    items: list[ImageItem] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise VfmauditError(f"no such file or folder: {raw}; check the path")
        problems: list[tuple[Path, str]] = []
        files = list(_walk(p, problems)) if p.is_dir() else [p]
        if p.is_dir() and not files and not problems:
            raise VfmauditError(f"folder {raw} holds no files; pass a folder with images in it")
        for folder, reason in problems:
            items.append(ImageItem(id=_display(folder), load=_unreadable(reason)))
        for f in files:
            key, reason = _resolve(f)
            if reason:
                items.append(ImageItem(id=_display(f), load=_unreadable(reason)))
                continue
            if key in seen or not key.is_file():
                continue
            seen.add(key)
            items.append(ImageItem(id=_display(f, key), load=_file_loader(f, max_pixels)))
    if not items:
        raise VfmauditError("no input files found; pass image files or folders")
    return items


def sample_crops(per_image: int = 8, seed: int = 0, limit: int | None = None) -> list[ImageItem]:
    """More photograph-like images from the built-in samples: `per_image` random crops of each
    (40-90 % of the shorter side, anywhere in the frame), deterministic by seed. Ids name the
    source photograph, so a split can keep all crops of one photograph on the same side."""
    items = []
    for base in sample_items(limit):
        for k in range(per_image):
            def load(base=base, k=k) -> np.ndarray:
                img = base.load()
                h, w = img.shape[:2]
                rng = np.random.default_rng([seed, k, sum(map(ord, base.id))])
                side = int(min(h, w) * rng.uniform(0.4, 0.9))
                y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                return np.ascontiguousarray(img[y:y + side, x:x + side])

            items.append(ImageItem(id=f"{base.id}#crop{k}", load=load))
    return items


def item_for_id(item_id: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageItem | None:
    """The item a report names, when it can be loaded again: a built-in sample or a file that still exists."""
    if item_id.startswith("skimage:") and "#" not in item_id:
        name = item_id.split(":", 1)[1]
        return ImageItem(item_id, _sample_loader(name)) if name in SAMPLE_NAMES else None
    p = Path(item_id).expanduser()
    return ImageItem(item_id, _file_loader(p, max_pixels)) if p.is_file() else None
