"""Labelled image sets for downstream evaluation: an ImageFolder tree, a CSV of path,label, or a
built-in set made from what installed packages ship (no download).

    builtin:textures 5 classes of procedural textures (stripes at three angles, checks, dots), the default:
                     low-level patterns that even randomly initialised encoders separate
    builtin:shapes   5 classes of procedurally drawn shapes on textured backgrounds (deterministic)
    builtin:digits   scikit-learn's 8x8 digits, upsampled to 64x64 and colourised
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfmaudit.data.source import default_options, kind_of, open_source
from vfmaudit.data.sources import ImageItem, collect_items
from vfmaudit.data.storage import is_url
from vfmaudit.errors import VfmauditError

BUILTIN = ("textures", "shapes", "digits", "textures-sketch")


@dataclass
class LabelledSet:
    name: str
    items: list[ImageItem]
    labels: np.ndarray  # int (N,)
    class_names: list[str]
    # indices of a given train/test split (train/ and test/ folders); None: split by seed
    train_index: np.ndarray | None = None
    test_index: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def split(self, test_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(train, test) indices: the given split, or a stratified one drawn from `seed`."""
        if self.train_index is not None and self.test_index is not None:
            return self.train_index, self.test_index
        rng = np.random.default_rng(seed)
        train, test = [], []
        for c in range(len(self.class_names)):
            idx = np.flatnonzero(self.labels == c)
            idx = idx[rng.permutation(len(idx))]
            n_test = max(1, int(round(len(idx) * test_fraction))) if len(idx) > 1 else 0
            test += list(idx[:n_test])
            train += list(idx[n_test:])
        return np.array(sorted(train), dtype=int), np.array(sorted(test), dtype=int)


def load_dataset(spec: str, max_per_class: int | None = None) -> LabelledSet:
    """A folder (one sub-folder per class, optionally under train/ and test/), a .csv, or builtin:NAME."""
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN:
            raise VfmauditError(f"unknown built-in data set '{name}'; choose from: "
                                f"{', '.join('builtin:' + b for b in BUILTIN)}", param="dataset")
        return {"textures": _textures, "shapes": _shapes, "digits": _digits,
                "textures-sketch": _texture_sketches}[name](max_per_class)
    if _is_labelled_source(spec):
        return cap_per_class(from_source(spec), max_per_class)
    path = Path(spec).expanduser()
    if not path.exists():
        raise VfmauditError(f"data set not found: {spec}; pass a folder with one sub-folder per class, a CSV of "
                            f"path,label, WebDataset or Parquet shards with labels, or builtin:textures",
                            param="dataset")
    if path.is_file():
        return cap_per_class(_from_csv(path), max_per_class)
    if (path / "train").is_dir() and (path / "test").is_dir():
        return cap_per_class(given_split(path / "train", path / "test", str(path)), max_per_class)
    return cap_per_class(_from_folder(path), max_per_class)


def cap_per_class(data: LabelledSet, max_per_class: int | None) -> LabelledSet:
    """The first max_per_class items of each class (of each side of a given split); None: all."""
    if not max_per_class:
        return data
    parts = [data.train_index, data.test_index] if data.train_index is not None else [np.arange(len(data.items))]
    kept_parts = []
    for part in parts:
        seen: dict[int, int] = {}
        kept = []
        for i in part:
            c = int(data.labels[i])
            if seen.get(c, 0) < max_per_class:
                seen[c] = seen.get(c, 0) + 1
                kept.append(int(i))
        kept_parts.append(kept)
    order = [i for part in kept_parts for i in part]
    new_index = {old: new for new, old in enumerate(order)}
    items, labels = [data.items[i] for i in order], data.labels[np.asarray(order, dtype=int)]
    train = test = None
    if data.train_index is not None:
        train = np.array([new_index[i] for i in kept_parts[0]], dtype=int)
        test = np.array([new_index[i] for i in kept_parts[1]], dtype=int)
    return LabelledSet(data.name, items, labels, data.class_names, train, test,
                       data.notes + [f"at most {max_per_class} images per class"])


def given_split(train_dir: str | Path, test_dir: str | Path, name: str | None = None) -> LabelledSet:
    """The training and the test images, each a class-per-folder tree or labelled shards (WebDataset,
    Parquet), classes matched by name."""
    sides = []
    for p, which in ((train_dir, "train"), (test_dir, "test")):
        if _is_labelled_source(str(p)):
            sides.append(from_source(str(p)))
            continue
        if not Path(p).expanduser().is_dir():
            raise VfmauditError(f"{which} {p} is not a folder; pass a folder with one sub-folder per class, or "
                                f"labelled WebDataset / Parquet shards", param=which)
        sides.append(_from_folder(Path(p).expanduser()))
    train, test = sides
    names = sorted(set(train.class_names) | set(test.class_names))
    relabel = lambda s: np.array([names.index(s.class_names[c]) for c in s.labels], dtype=int)  # noqa: E731
    items = train.items + test.items
    n = len(train.items)
    return LabelledSet(name or f"{train_dir} + {test_dir}", items, np.concatenate([relabel(train), relabel(test)]),
                       names, np.arange(n), np.arange(n, len(items)))


def _is_labelled_source(spec: str) -> bool:
    """A spec whose labels come with its images (WebDataset, Parquet/Arrow), local or behind a URL."""
    if spec.startswith("builtin:") or Path(spec).suffix.lower() == ".csv":
        return False
    kind, _ = kind_of(spec, default_options())
    return kind.sharded or is_url(spec)


def from_source(spec: str) -> LabelledSet:
    """A labelled set from a sharded source: each sample's label (WebDataset cls/label/txt or json.FIELD,
    a Parquet label column; --label-key) is its class; classes in numeric order where every label is a
    number, else by name. Samples without a label are left out, and counted in the notes."""
    source = open_source([spec])
    if not source.sharded:
        raise VfmauditError(f"{spec} holds image files without labels; pass a folder with one sub-folder per "
                            f"class, or WebDataset / Parquet shards with a label", param="dataset")
    items, unlabelled = [], 0
    for item in source.items(locatable=True):
        if item.label is None or item.label == "":
            unlabelled += 1
        else:
            items.append(item)
    if not items:
        raise VfmauditError(f"{spec} has no labels: none of its {unlabelled} samples has one; pass label_key (a "
                            f"WebDataset member such as cls or json.label, a Parquet column)", param="label_key")
    names = sorted({it.label for it in items}, key=_class_order)
    index = {n: i for i, n in enumerate(names)}
    notes = [f"{unlabelled} sample(s) without a label left out"] if unlabelled else []
    return LabelledSet(spec, items, np.array([index[it.label] for it in items], dtype=int), names, notes=notes)


def _class_order(name: str):
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _from_folder(path: Path) -> LabelledSet:
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise VfmauditError(f"{path} needs at least two class sub-folders (the ImageFolder layout: "
                            f"{path}/CLASS/image.jpg)", param="dataset")
    items, labels = [], []
    for c, name in enumerate(classes):
        found = collect_items([path / name])
        items += found
        labels += [c] * len(found)
    return LabelledSet(str(path), items, np.array(labels, dtype=int), classes)


def _from_csv(path: Path) -> LabelledSet:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    if not rows or any(len(r) < 2 for r in rows):
        raise VfmauditError(f"{path}: expected rows of path,label (a header line 'path,label' is optional)",
                            param="dataset")
    classes = sorted({r[1].strip() for r in rows})
    items = []
    for r in rows:
        p = Path(r[0].strip())
        p = p if p.is_absolute() else path.parent / p
        items += collect_items([p])
    labels = np.array([classes.index(r[1].strip()) for r in rows], dtype=int)
    return LabelledSet(str(path), items, labels, classes)


# -- built-in sets -------------------------------------------------------------------------------
SHAPES = ("circle", "square", "triangle", "cross", "ring")


def _shape_image(kind: str, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    import cv2

    # a textured background: a random two-colour gradient with smooth noise
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, size)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, size)[:, None, None]
    img = (c0 * (1 - t) + c1 * t) * np.ones((size, size, 3))
    noise = cv2.GaussianBlur(rng.normal(0, 30, (size, size, 3)).astype(np.float32), (0, 0), 3)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    color = tuple(int(v) for v in rng.integers(0, 256, 3))
    r = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(r + 2, size - r - 2, 2))
    if kind == "circle":
        cv2.circle(img, (cx, cy), r, color, -1, cv2.LINE_AA)
    elif kind == "ring":
        cv2.circle(img, (cx, cy), r, color, max(3, r // 3), cv2.LINE_AA)
    elif kind == "square":
        angle = rng.uniform(0, 90)
        box = cv2.boxPoints(((cx, cy), (1.6 * r, 1.6 * r), angle)).astype(np.int32)
        cv2.fillPoly(img, [box], color, cv2.LINE_AA)
    elif kind == "triangle":
        a = rng.uniform(0, 2 * np.pi)
        pts = np.array([[cx + r * np.cos(a + k * 2 * np.pi / 3), cy + r * np.sin(a + k * 2 * np.pi / 3)]
                        for k in range(3)], dtype=np.int32)
        cv2.fillPoly(img, [pts], color, cv2.LINE_AA)
    else:  # cross
        w = max(3, r // 3)
        cv2.rectangle(img, (cx - r, cy - w), (cx + r, cy + w), color, -1)
        cv2.rectangle(img, (cx - w, cy - r), (cx + w, cy + r), color, -1)
    return img


def _shapes(max_per_class: int | None) -> LabelledSet:
    per_class = max_per_class or 40
    items, labels = [], []
    for c, kind in enumerate(SHAPES):
        for i in range(per_class):
            seed = 1000 * c + i

            def load(kind=kind, seed=seed) -> np.ndarray:
                return _shape_image(kind, np.random.default_rng(seed))

            items.append(ImageItem(id=f"builtin:shapes/{kind}/{i:03d}", load=load))
            labels.append(c)
    return LabelledSet("builtin:shapes", items, np.array(labels, dtype=int), list(SHAPES),
                       notes=["procedurally drawn shapes (vfmaudit.data.datasets), deterministic"])


TEXTURES = ("horizontal_stripes", "vertical_stripes", "diagonal_stripes", "checks", "dots")


def _texture_image(kind: str, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    period = rng.uniform(6, 14)
    phase = rng.uniform(0, 2 * np.pi)
    w = 2 * np.pi / period
    if kind == "horizontal_stripes":
        pattern = np.sin(w * yy + phase)
    elif kind == "vertical_stripes":
        pattern = np.sin(w * xx + phase)
    elif kind == "diagonal_stripes":
        pattern = np.sin(w * (xx + yy) / np.sqrt(2) + phase)
    elif kind == "checks":
        pattern = np.sin(w * xx + phase) * np.sin(w * yy + phase)
    else:  # dots
        pattern = (np.sin(w * xx + phase) * np.sin(w * yy + phase)) ** 2 * 2 - 0.5
    pattern = np.clip(pattern * 1.5, -1, 1)[..., None]
    c0, c1 = rng.integers(0, 256, 3).astype(np.float64), rng.integers(0, 256, 3).astype(np.float64)
    img = c0 * (0.5 - pattern / 2) + c1 * (0.5 + pattern / 2) + rng.normal(0, 8, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _textures(max_per_class: int | None) -> LabelledSet:
    per_class = max_per_class or 40
    items, labels = [], []
    for c, kind in enumerate(TEXTURES):
        for i in range(per_class):
            def load(kind=kind, seed=2000 * c + i) -> np.ndarray:
                return _texture_image(kind, np.random.default_rng(seed))

            items.append(ImageItem(id=f"builtin:textures/{kind}/{i:03d}", load=load))
            labels.append(c)
    return LabelledSet("builtin:textures", items, np.array(labels, dtype=int), list(TEXTURES),
                       notes=["procedural textures (vfmaudit.data.datasets), deterministic"])


def _texture_sketch(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A texture drawn as a sketch: its Canny edges as dark strokes on paper (a demo shift, not a benchmark)."""
    import cv2

    gray = cv2.cvtColor(_texture_image(kind, rng), cv2.COLOR_RGB2GRAY)
    edges = cv2.dilate(cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 40, 120), np.ones((2, 2), np.uint8))
    paper = np.full(gray.shape, 245, np.uint8) - rng.integers(0, 10, gray.shape).astype(np.uint8)
    return np.repeat(np.where(edges > 0, 40, paper).astype(np.uint8)[..., None], 3, axis=2)


def _texture_sketches(max_per_class: int | None) -> LabelledSet:
    per_class = max_per_class or 40
    items, labels = [], []
    for c, kind in enumerate(TEXTURES):
        for i in range(per_class):
            def load(kind=kind, seed=1_000_000 + 2000 * c + i) -> np.ndarray:  # other textures than builtin:textures'
                return _texture_sketch(kind, np.random.default_rng(seed))

            items.append(ImageItem(id=f"builtin:textures-sketch/{kind}/{i:03d}", load=load))
            labels.append(c)
    return LabelledSet("builtin:textures-sketch", items, np.array(labels, dtype=int), list(TEXTURES),
                       notes=["builtin:textures' classes drawn as sketches (edge detection): a demo shift set, "
                              "not a benchmark"])


def _digits(max_per_class: int | None) -> LabelledSet:
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    per_class = max_per_class or 40
    items, labels = [], []
    for c in range(10):
        for i, idx in enumerate(np.flatnonzero(digits.target == c)[:per_class]):
            def load(idx=idx) -> np.ndarray:
                rng = np.random.default_rng(int(idx))
                gray = cv2.resize((digits.images[idx] / 16.0).astype(np.float32), (64, 64),
                                  interpolation=cv2.INTER_CUBIC).clip(0, 1)[..., None]
                fg, bg = rng.integers(128, 256, 3), rng.integers(0, 96, 3)
                return (bg * (1 - gray) + fg * gray).astype(np.uint8)

            items.append(ImageItem(id=f"builtin:digits/{c}/{i:03d}", load=load))
            labels.append(c)
    return LabelledSet("builtin:digits", items, np.array(labels, dtype=int), [str(c) for c in range(10)],
                       notes=["scikit-learn's digits, upsampled and colourised"])
