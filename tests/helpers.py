"""Small helpers several test modules share: reading result tables, making folders of photographs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def rows(path: Path) -> list[dict]:
    """A CSV result table as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def noisy_photos(folder: Path, photo_batch: np.ndarray, n: int, spread: int = 20, name: str = "img{i:02d}.png") -> Path:
    """n distinct PNGs: the sample photographs again and again, each with its own seeded noise."""
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.clip(photo_batch[i % len(photo_batch)].astype(int) + rng.integers(-spread, spread, photo_batch.shape[1:]),
                      0, 255)
        Image.fromarray(img.astype(np.uint8)).save(folder / name.format(i=i))
    return folder


COLOUR_TINTS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def colour_classes(root: Path, per_class: int = 16) -> Path:
    """Three colour classes with their real names (noisy 64x64 images): what even a random encoder's
    linear probe tells apart, and what hue and saturation edits can move across classes."""
    rng = np.random.default_rng(0)
    for name, tint in COLOUR_TINTS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(np.array(tint) + rng.normal(0, 40, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i:02d}.png")
    return root


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A WebDataset shard: the members (name, bytes) in order, as webdataset's writers lay them out."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def image_struct(blobs: list):
    """What `datasets` writes for an Image feature: a {bytes, path} struct column."""
    import pyarrow as pa

    t = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.array([None if b is None else {"bytes": b, "path": None} for b in blobs], type=t)


def write_shards(folder: Path, blobs: list[bytes], per_shard: int, labels: list[str] | None = None) -> Path:
    """blobs (encoded PNGs) as WebDataset shards shard-000000.tar ... of per_shard samples (with cls labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(0, len(blobs), per_shard):
        members = []
        for i in range(s, min(len(blobs), s + per_shard)):
            members.append((f"{i:06d}.png", blobs[i]))
            if labels is not None:
                members.append((f"{i:06d}.cls", labels[i].encode()))
        write_tar(folder / f"shard-{s // per_shard:06d}.tar", members)
    return folder


def tiny_onnx(folder: Path) -> str:
    """timm's tiny test_vit exported to ONNX (TorchScript exporter, seed 0): an encoder that starts without
    torch, for tests of what surrounds the encoder."""
    from vfmaudit.export import export_onnx

    return str(export_onnx("timm:test_vit", folder / "tv.onnx", exporter="torchscript", seed=0).path)
