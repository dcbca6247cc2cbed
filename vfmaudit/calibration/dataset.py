"""Calibration sets: clean images plus perturbed variants, stratified, deterministic, bounded, cached.

Activation ranges then cover what the model sees in production (re-compressed, darker,
brighter, blurred, noisy images), not only clean photographs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vfmaudit import perturb
from vfmaudit._version import __version__
from vfmaudit.data.sources import ImageItem
from vfmaudit.errors import ImageDecodeError, VfmauditError
from vfmaudit.files import default_permissions, write_text_atomic
from vfmaudit.models.preprocess import PreprocessSpec

# the edits and their ranges: perturb/presets.py, preset "calibration"
CALIBRATION_PRESET = "calibration"
LEVELS_PER_EDIT = 3


def default_cache_dir() -> Path:
    return Path(os.environ.get("VFMAUDIT_CACHE", Path.home() / ".cache" / "vfmaudit")) / "calibration"


@dataclass
class CalibrationSet:
    images: np.ndarray  # uint8 (N, H, W, 3), a read-only memmap of the cached file
    index: list[dict]  # per image: source id, edit ("clean" or family), level
    path: Path
    cached: bool  # True when it was read back from the cache, not built

    def __len__(self) -> int:
        return len(self.images)


def split_held_out(items: list[ImageItem], fraction: float = 0.25, seed: int = 0) -> tuple[list, list]:
    """Deterministic split into calibration images and held-out images for acceptance."""
    if len(items) < 2:
        raise VfmauditError("calibration needs at least 2 images (some are held out to check the INT8 model)")
    order = np.random.default_rng(seed).permutation(len(items))
    n_held = max(1, int(round(len(items) * fraction)))
    held = [items[i] for i in sorted(order[:n_held])]
    calib = [items[i] for i in sorted(order[n_held:])]
    return calib, held


def _variants(perturbed: bool, perturbations: str = CALIBRATION_PRESET) -> list[tuple[str, float]]:
    # clean images weigh as much as one family (LEVELS_PER_EDIT slots): production is mostly clean
    out = [("clean", 0.0)] * (LEVELS_PER_EDIT if perturbed else 1)
    if perturbed:  # a preset's explicit levels (ImageNet-C's severities) are kept, others get LEVELS_PER_EDIT
        out += [(p.name, float(lv)) for p in perturb.parse_perturbations(perturbations, LEVELS_PER_EDIT)
                for lv in p.levels]
    return out


def _cache_key(spec: PreprocessSpec, items: list[ImageItem], size: int, perturbed: bool, seed: int,
               perturbations: str = CALIBRATION_PRESET) -> str:
    sources = []
    for it in items:
        p = Path(it.id)
        stat = p.stat() if p.is_file() else None
        sources.append([it.id, stat.st_size if stat else 0, stat.st_mtime_ns if stat else 0])
    from vfmaudit.perturb.families.imagenet_c import options as imagenet_c_options

    # the ImageNet-C pixel mode and frost textures change the variants' bytes: part of the key
    blob = json.dumps({"spec": spec.to_dict(), "sources": sources, "size": size, "perturbed": perturbed,
                       "seed": seed, "edits": _variants(perturbed, perturbations), "version": __version__,
                       "imagenet_c": imagenet_c_options()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def build_calibration_set(items: list[ImageItem], spec: PreprocessSpec, size: int = 256, perturbed: bool = True,
                          seed: int = 0, cache_dir: str | Path | None = None,
                          perturbations: str = CALIBRATION_PRESET) -> CalibrationSet:
    """At most `size` images at the model's input size, stratified across (image, edit, level).

    Slots are dealt round-robin over the shuffled images and the shuffled edit list, so every
    edit and level is represented in proportion; the same inputs and seed give the same bytes.
    """
    if size < 1:
        raise VfmauditError(f"size must be >= 1, got {size}", param="size")
    if not items:
        raise VfmauditError("no calibration images; pass image files or folders as images", param="images")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = _cache_key(spec, items, size, perturbed, seed, perturbations)
    data_path, index_path = cache / f"{key}.npy", cache / f"{key}.json"
    if data_path.exists() and index_path.exists():
        return CalibrationSet(np.load(data_path, mmap_mode="r"), json.loads(index_path.read_text()), data_path, True)

    rng = np.random.default_rng(seed)
    images: list[tuple[str, np.ndarray]] = []
    for it in items:
        try:
            images.append((it.id, spec.prepare(it.load())))
        except ImageDecodeError:
            continue  # unreadable calibration images are simply not used
    if not images:
        raise VfmauditError("none of the calibration images could be read")
    img_order = rng.permutation(len(images))
    variants = _variants(perturbed, perturbations)
    var_order = rng.permutation(len(variants))
    n = min(size, len(images) * len(variants))
    h, w = spec.size
    # a unique temporary name, published by atomic renames: two builders of the same entry never
    # write one file, and a reader sees either no entry or a whole one
    fd, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".npy", dir=cache)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, h, w, 3))
        index = []
        for slot in range(n):
            src_id, img = images[img_order[slot % len(images)]]
            # walk the variants in an order offset per pass over the images, so pairs do not repeat
            edit, level = variants[var_order[(slot + slot // len(images)) % len(variants)]]
            out[slot] = img if edit == "clean" else perturb.apply(img, edit, level, seed=seed + slot)
            index.append({"source": src_id, "edit": edit, "level": level})
        out.flush()
        del out
        write_text_atomic(index_path, json.dumps(index))  # the index first: the data file completes the entry
        default_permissions(tmp)
        os.replace(tmp, data_path)
    finally:
        tmp.unlink(missing_ok=True)  # left only when the build failed
    return CalibrationSet(np.load(data_path, mmap_mode="r"), index, data_path, False)
