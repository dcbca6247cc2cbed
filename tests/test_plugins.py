"""Adding a family, a metric and a backend is one registration each: they flow through the audit,
its tables and reports, the CLI and `bench encoder` with no other edit."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from cli_runner import run_cli
from vfmaudit import perturb
from vfmaudit.metrics import Metric, register_metric, unregister_metric
from vfmaudit.models.preprocess import PreprocessSpec
from vfmaudit.runtime import register_backend, unregister_backend
from vfmaudit.runtime.base import to_model_size


def invert_blend(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:  # noqa: ARG001
    x = batch.astype(np.float32)
    return np.clip(np.rint((1 - level) * x + level * (255 - x)), 0, 255).astype(np.uint8)


def worst_cosine(clean: np.ndarray, variants: np.ndarray) -> np.ndarray:
    return np.einsum("bd,bld->bl", clean, variants).min(axis=1)


class ProjectionEncoder:
    """A real (if tiny) encoder: a seeded random projection of the 16x16 image, read from a file."""

    backend = "toyproj"

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
        return {"spec": "toyproj", "weights": {"kind": "file", "label": f"seed {self.seed}"},
                "embedding_dim": 8, "preprocess": self.preprocess.to_dict(), "backend": "toyproj",
                "device": "cpu", "precision": "fp32", "batch_size": self.batch_size}


@pytest.fixture
def plugins(tmp_path):
    perturb.register(perturb.Family(name="invert", lo=0.0, hi=1.0, identity=0.0, units="blend",
                                    description="blend with the negative image", apply_batch=invert_blend))
    register_metric(Metric(name="worst_cosine", higher_is_better=True, range=(-1.0, 1.0), per_image=worst_cosine,
                           description="lowest cosine over the levels"))

    @register_backend("toyproj", suffixes=(".toyproj",), description="random projection (test plugin)")
    def make(model: str = "", device: str = "cpu", batch_size: int = 32) -> ProjectionEncoder:  # noqa: ARG001
        return ProjectionEncoder(model, batch_size)

    model = tmp_path / "m.toyproj"
    model.write_text("3")
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(images / f"{i}.png")
    yield model, images
    perturb.unregister("invert")
    unregister_metric("worst_cosine")
    unregister_backend("toyproj")


def test_plugins_flow_through_audit_reports_cli_and_bench(plugins, tmp_path):
    model, images = plugins
    out = tmp_path / "out"
    res = run_cli("audit", images, "-m", model, "-p", "invert,jpeg", "--levels", "3", "--out", out)
    assert res.returncode == 0, res.stderr
    assert "worst_cosine mean" in res.stdout and "invert" in res.stdout  # console table

    report = json.loads((out / "report.json").read_text())
    assert list(report["families"]) == ["invert", "jpeg"]
    assert report["backend"]["backend"] == "toyproj"  # picked by the file suffix
    assert "worst_cosine" in report["metrics"]
    inv = report["families"]["invert"]
    assert inv["worst_cosine"]["n"] == 3 and inv["worst_cosine"]["worst"] <= inv["cosine"]["worst"] + 1e-9

    with open(out / "per_image.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert "worst_cosine" in table[0]
    # the new metric equals a direct computation with the new family and backend
    enc = ProjectionEncoder(str(model), 8)
    img = np.asarray(Image.open(images / "0.png").convert("RGB"))
    clean = enc.encode(img[None])[0]
    variants = enc.encode(np.stack([perturb.apply(img, "invert", lv) for lv in perturb.levels("invert", 3)]))
    row = next(r for r in table if r["family"] == "invert" and r["image"].endswith("0.png"))
    assert float(row["worst_cosine"]) == pytest.approx(float((variants @ clean).min()), abs=1e-5)

    page = (out / "report.html").read_text()
    assert "worst_cosine" in page and "invert" in page

    listing = run_cli("backends")
    assert "toyproj" in listing.stdout and ".toyproj" in listing.stdout
    assert "invert" in run_cli("perturbations").stdout and "worst_cosine" in run_cli("metrics").stdout

    bench = run_cli("bench", "encoder", "-m", model, "--backends", "toyproj", "--batch-sizes", "2",
                    "--iterations", "2", "--warmup", "0", "--json", tmp_path / "b.json")
    assert bench.returncode == 0, bench.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["backend"], r["status"]) for r in rows] == [("toyproj", "ok")]


def test_backend_refuses_options_it_cannot_honour(plugins):
    model, images = plugins
    res = run_cli("audit", images, "-m", model, "-p", "invert", "--pretrained", "w.pt", "--out", "x")
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "toyproj backend does not take --pretrained" in res.stderr


def test_a_factory_with_hidden_options_is_refused():
    with pytest.raises(TypeError, match="explicitly"):
        register_backend("sloppy")(lambda model="", **kwargs: None)
