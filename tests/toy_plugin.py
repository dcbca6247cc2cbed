"""A toy plugin: a family, a metric and a backend, registered the way any plugin module registers them.

tests/test_plugins.py registers it in the test process; tests/test_plugin_distribution.py ships this
very file inside a throwaway distribution and installs it with pip.
"""

import numpy as np

from vfmaudit import perturb
from vfmaudit.metrics import Metric, register_metric, unregister_metric
from vfmaudit.models.preprocess import PreprocessSpec
from vfmaudit.runtime import register_backend, unregister_backend
from vfmaudit.runtime.base import to_model_size

FAMILY, METRIC, BACKEND = "invert", "worst_cosine", "toyproj"


def invert_blend(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:  # noqa: ARG001
    x = batch.astype(np.float32)
    return np.clip(np.rint((1 - level) * x + level * (255 - x)), 0, 255).astype(np.uint8)


def worst_cosine(clean: np.ndarray, variants: np.ndarray) -> np.ndarray:
    return np.einsum("bd,bld->bl", clean, variants).min(axis=1)


class ProjectionEncoder:
    """A real (if tiny) encoder: a seeded random projection of the 16x16 image, read from a file."""

    backend = BACKEND

    def __init__(self, path: str, batch_size: int):
        self.seed = int(open(path).read())
        self.preprocess = PreprocessSpec(size=(16, 16), resize=16)
        self.embed_dim = 8
        self.batch_size = batch_size
        self.weights = np.random.default_rng(self.seed).normal(size=(16 * 16 * 3, 8))

    def encode(self, images: np.ndarray) -> np.ndarray:
        x = to_model_size(self.preprocess, images).reshape(len(images), -1) / 255.0 - 0.5
        emb = (x @ self.weights).astype(np.float32)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    def describe(self) -> dict:
        return {"spec": BACKEND, "weights": {"kind": "file", "label": f"seed {self.seed}"},
                "embedding_dim": 8, "preprocess": self.preprocess.to_dict(), "backend": BACKEND,
                "device": "cpu", "precision": "fp32", "batch_size": self.batch_size}


def make_projection_encoder(model: str = "", device: str = "cpu", batch_size: int = 32) -> ProjectionEncoder:  # noqa: ARG001
    return ProjectionEncoder(model, batch_size)


def register_all() -> None:
    perturb.register(perturb.Family(name=FAMILY, lo=0.0, hi=1.0, identity=0.0, units="blend",
                                    description="blend with the negative image", apply_batch=invert_blend))
    register_metric(Metric(name=METRIC, higher_is_better=True, range=(-1.0, 1.0), per_image=worst_cosine,
                           description="lowest cosine over the levels"))
    register_backend(BACKEND, suffixes=(".toyproj",), description="random projection (test plugin)")(
        make_projection_encoder)


def unregister_all() -> None:
    perturb.unregister(FAMILY)
    unregister_metric(METRIC)
    unregister_backend(BACKEND)


def write_inputs(folder) -> tuple:
    """A model file for the toy backend (its seed) and a folder of 3 small random images."""
    from PIL import Image

    model = folder / "m.toyproj"
    model.write_text("3")
    images = folder / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(images / f"{i}.png")
    return model, images
