"""Golden data for `export check` where the torch reference is not: on the workstation,
`--save-golden FILE` stores the reference's embeddings of the check images (clean and under each
parity edit), those images at the model's input size with their content hashes, the preprocessing
and the model's description; on the device, `--golden FILE` checks the artefact against them, with
the same report, tolerances and exit codes, and no torch (as Polygraphy's --save-outputs /
--load-outputs).

The file is a NumPy .npz (no pickles): `meta` (JSON text), `images` (uint8 N x H x W x 3) and one
`emb_<k>` array per variant, in `meta["variants"]` order. A golden file made for another model is
refused in one line naming the field that differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from vfmaudit.errors import VfmauditError

SCHEMA = "vfmaudit.golden"
VERSION = 1
# what the artefact's own description must share with the golden file's model
MATCHED = ("spec", "embedding_dim")


def content_hash(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def save_golden(path: str | Path, model: dict, preprocess: dict, ids: list[str], images: np.ndarray,
                variants: list[tuple[str, np.ndarray, np.ndarray]], seed: int) -> Path:
    """variants: (name, the images encoded, the reference's embeddings), clean first."""
    meta = {"schema": SCHEMA, "schema_version": VERSION, "model": model, "preprocess": preprocess, "ids": ids,
            "seed": seed, "image_hashes": [content_hash(im) for im in images],
            "variants": [{"name": name, "images_sha256": content_hash(batch)} for name, batch, _ in variants]}
    arrays = {"meta": np.array(json.dumps(meta)), "images": images}
    arrays.update({f"emb_{k}": emb.astype(np.float32) for k, (_, _, emb) in enumerate(variants)})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


class Golden:
    def __init__(self, path: str | Path) -> None:
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                self.meta = json.loads(str(data["meta"]))
                self.images = data["images"]
                self.embeddings = [data[f"emb_{k}"] for k in range(len(self.meta["variants"]))]
        except (OSError, ValueError, KeyError) as e:
            raise VfmauditError(f"golden {path} is not a vfmaudit golden file ({type(e).__name__}: {e}); make one "
                                "with vfmaudit export check ARTEFACT --save-golden FILE", param="golden") from None
        if self.meta.get("schema") != SCHEMA or self.meta.get("schema_version") != VERSION:
            raise VfmauditError(f"golden {path} has schema {self.meta.get('schema')} v{self.meta.get('schema_version')}; "
                                f"this vfmaudit reads {SCHEMA} v{VERSION}", param="golden")
        if [content_hash(im) for im in self.images] != self.meta["image_hashes"]:
            raise VfmauditError(f"golden {path}: its images do not match their recorded hashes (a damaged file)",
                                param="golden")
        self.path = str(path)

    @property
    def ids(self) -> list[str]:
        return list(self.meta["ids"])

    def check_artefact(self, description: dict, preprocess: dict) -> None:
        """One line naming the first field where the artefact is not the golden file's model."""
        model = self.meta["model"]
        for key in MATCHED:
            if model.get(key) != description.get(key):
                raise VfmauditError(f"golden {self.path} was made for {key} {model.get(key)!r}, the artefact has "
                                    f"{description.get(key)!r}: not the same model", param="golden")
        for key in sorted(set(self.meta["preprocess"]) | set(preprocess)):
            theirs, ours = self.meta["preprocess"].get(key), preprocess.get(key)
            if json.dumps(theirs) != json.dumps(ours):
                raise VfmauditError(f"golden {self.path} was made with preprocessing {key} {theirs!r}, the artefact "
                                    f"has {ours!r}: not the same model", param="golden")

    def check_variant(self, k: int, name: str, batch: np.ndarray) -> None:
        """The edited images here are the bytes the golden file's reference encoded."""
        want = self.meta["variants"][k]
        if want["name"] != name or want["images_sha256"] != content_hash(batch):
            raise VfmauditError(f"golden {self.path}: the parity edit {want['name']} gives other images here than "
                                f"where the file was made (another vfmaudit version?); make the golden file again",
                                param="golden")
