"""Adding a family, a metric and a backend is one registration each: they flow through the audit,
its tables and reports, the CLI and `bench encoder` with no other edit."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

import toy_plugin
from cli_runner import run_cli
from toy_plugin import ProjectionEncoder
from vfmaudit import perturb
from vfmaudit.runtime import register_backend


@pytest.fixture
def plugins(tmp_path):
    toy_plugin.register_all()
    yield toy_plugin.write_inputs(tmp_path)
    toy_plugin.unregister_all()


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
