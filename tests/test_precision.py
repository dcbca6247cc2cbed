"""Precision in the ONNX graph: INT8 sensitivity and the search to a target, fp16 artefacts."""

import json

import numpy as np
import onnx
import pytest

from cli_runner import run_cli
from vfmaudit.artefact import read_onnx_info
from vfmaudit.calibration.sensitivity import Target, parse_target, search


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    from vfmaudit import export_onnx

    d = tmp_path_factory.mktemp("prec")
    return export_onnx("timm:test_resnet", d / "cnn.onnx", seed=0).path


@pytest.fixture(scope="module")
def searched(cnn, tmp_path_factory):
    """A target full INT8 misses on this model (its own full-INT8 p5 nudged up), met by keeping nodes in float."""
    d = tmp_path_factory.mktemp("search")
    full = run_cli("calibrate", cnn, "--out", d / "full.onnx", "--size", "24", "--sensitivity", "--json",
                   d / "full.json", "--cache-dir", d / "cache")
    assert full.returncode == 0, full.stderr
    report = json.loads((d / "full.json").read_text())
    p5 = report["acceptance"]["cosine_to_fp32"]["all"]["p5"]
    goal = 1 - (1 - p5) / 4  # four times closer to fp32 than full INT8 gets
    res = run_cli("calibrate", cnn, "--out", d / "mixed.onnx", "--size", "24", "--target", f"cosine.p5>={goal:.7f}",
                  "--json", d / "mixed.json", "--cache-dir", d / "cache")
    return d, report, res, goal


def test_sensitivity_ranking_is_consistent_with_quantizing_the_nodes_alone(cnn, searched):
    """Independently of the ranking code: quantize the top and the bottom node alone with onnxruntime and
    compare the embedding error each causes."""
    from vfmaudit.calibration import build_calibration_set
    from vfmaudit.calibration.ort_quant import quantize_onnx
    from vfmaudit.data import sample_items
    from vfmaudit.runtime import create_encoder

    d, report, _, _ = searched
    ranking = report["sensitivity"]
    assert len(ranking) >= 15 and all(r["op_type"] == "Conv" for r in ranking)
    # the module column names the torch module each node came from (README): test_resnet's own names
    import timm

    modules = {name for name, _ in timm.create_model("test_resnet", pretrained=False).named_modules() if name}
    named = [r["module"] for r in ranking]
    assert all(named) and sum(any(m in n for m in modules if "." in m) for n in named) >= len(named) // 2, named
    losses = [r["cosine_loss"] for r in ranking]
    assert losses == sorted(losses, reverse=True) and losses[0] > losses[-1]
    assert all(r["sqnr_db"] is None or r["sqnr_db"] > 10 for r in ranking)
    info = read_onnx_info(cnn)
    calib = build_calibration_set(sample_items(8), info.preprocess, size=24, cache_dir=d / "cache2")
    fp32 = create_encoder("onnx", model=str(cnn))
    images = np.stack([fp32.preprocess.prepare(it.load()) for it in sample_items()[8:12]])
    ref = fp32.encode(images)

    def error_of(node):
        path = d / f"alone_{node}.onnx"
        quantize_onnx(cnn, path, calib, only=(node,), cache_dir=d / "cache2")
        emb = create_encoder("onnx", model=str(path)).encode(images)
        return float(1 - np.mean(np.sum(emb * ref, axis=1)))

    assert error_of(ranking[0]["node"]) > error_of(ranking[-1]["node"])


def test_search_meets_a_target_full_int8_misses(searched):
    d, full_report, res, goal = searched
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((d / "mixed.json").read_text())
    s = report["search"]
    assert s["met"] and s["nodes_kept_float"] >= 1 and s["value"] >= goal
    assert full_report["acceptance"]["cosine_to_fp32"]["all"]["p5"] < goal
    # the search judged each trial on exactly the images, families and levels the acceptance reports: the
    # value it found is the written model's acceptance value, and the verdict is the target's on it
    final = report["acceptance"]["cosine_to_fp32"]["all"]["p5"]
    assert s["value"] == pytest.approx(final, abs=1e-12) and s["final_value"] == pytest.approx(final, abs=1e-12)
    assert final >= goal and report["passed"]
    kept = set(s["kept_float"])
    model = onnx.load(str(d / "mixed.onnx"))
    dq_inputs = {i for n in model.graph.node if n.op_type == "DequantizeLinear" for i in n.output}
    for node in model.graph.node:
        if node.name in kept:  # a kept node's weight stays float (its input may be shared with quantized nodes)
            assert node.input[1] not in dq_inputs, node.name
    assert set(s["speed"]) >= {"mixed_over_fp32", "mixed_over_full_int8"}
    assert read_onnx_info(d / "mixed.onnx").extra["calibration"]["kept_float"] == s["kept_float"]
    # the ranking of the --sensitivity run was reused from the cache (same file bytes, set and method)
    assert report["sensitivity"] == full_report["sensitivity"]
    assert report["sensitivity_cache"] == full_report["sensitivity_cache"]
    cached = json.loads(open(report["sensitivity_cache"]).read())
    assert [r["node"] for r in cached] == [r["node"] for r in report["sensitivity"]]


def test_calibrate_page_shows_target_search_path_and_ranking(searched):
    import html as html_lib
    import re

    d, _, _, _ = searched
    report = json.loads((d / "mixed.json").read_text())
    page = (d / "mixed.html").read_text()
    s = report["search"]
    assert html_lib.escape(s["target"]) in page and "Verdict: <b>PASS</b>: target" in page
    # the search path: one row per trial, with the number kept in float and its value
    search_table = page[page.index('id="search"'):page.index("</table>", page.index('id="search"'))]
    assert search_table.count("<tr>") == len(s["evaluations"]) + 1
    for e in s["evaluations"]:
        assert f"<td>{e['kept_float']}</td><td>{e['value']:.5f}</td>" in search_table
    # the ranking: every node in the sortable table's data, in ranking order
    data = json.loads(re.search(r'id="sensitivity-data">(.*?)</script>', page).group(1))
    assert [r["node"] for r in data] == [r["node"] for r in report["sensitivity"]]
    assert "vfmTable({dataId: 'sensitivity-data'" in page
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)
    # A and B are the two model files, linked relative to the page; neither links to the page itself
    hrefs = re.findall(r'<a href="([^"]+)">', page)
    assert any(h.endswith("/cnn.onnx") for h in hrefs) and "mixed.onnx" in hrefs and "mixed.html" not in hrefs


def test_impossible_target_exits_1_with_the_best_found(tmp_path):
    """A ViT (not timm's ResNet, whose zero-initialised residual branches make some nodes' quantization
    exactly harmless, so that 'all but those in float' reaches cosine 1.0): no node can stay INT8."""
    from vfmaudit import export_onnx

    vit = export_onnx("timm:test_vit", tmp_path / "vit.onnx", seed=0).path
    res = run_cli("calibrate", vit, "--out", tmp_path / "x.onnx", "--size", "24", "--target", "cosine.min>=0.99999999",
                  "--json", tmp_path / "x.json", "--cache-dir", tmp_path / "cache")
    assert res.returncode == 1, res.stderr
    s = json.loads((tmp_path / "x.json").read_text())["search"]
    assert not s["met"] and s["value"] is not None and s["value"] < 0.99999999 and "NOT met" in res.stdout
    assert "target cosine.min>=0.99999999: NOT met" in res.stdout  # the target as given, not rounded to 1


def test_search_is_a_bisection_over_the_ranking():
    class R:
        def __init__(self, name):
            self.name = name

    ranking = [R(f"n{i}") for i in range(20)]
    calls = []

    def evaluate(keep):  # the metric rises with every node kept in float
        calls.append(len(keep))
        return 0.9 + 0.005 * len(keep)

    found = search(ranking, Target("cosine.p5", ">=", 0.96), evaluate)
    assert found.met and len(found.kept_float) == 12 and found.kept_float[0] == "n0"
    assert len(calls) <= 2 + 5  # full INT8, all-but-one, then log2(20) steps
    assert not search(ranking, Target("cosine.p5", ">=", 0.9999), evaluate).met


@pytest.mark.parametrize("text,needle", [
    ("cosine.p5=0.9", "is not METRIC>=VALUE"),
    ("cosine.p6>=0.9", "did you mean 'cosine.p5'"),
    ("radius.mean>=0.1", "lower is better, so compare it with <="),
])
def test_bad_targets_are_one_line(cnn, tmp_path, text, needle):
    res = run_cli("calibrate", cnn, "--out", tmp_path / "x.onnx", "--target", text)
    assert res.returncode == 2 and needle in res.stderr and res.stderr.count("\n") == 1
    assert parse_target("agreement.overlap@5>=0.8").metric == "agreement.overlap@5"


def test_fp16_artefact_passes_export_check_at_the_fp16_threshold(tmp_path):
    res = run_cli("export", "onnx", "-m", "timm:test_vit", "--precision", "fp16", "--out", tmp_path / "m16.onnx",
                  "--json", tmp_path / "parity.json")
    assert res.returncode == 0, res.stderr
    info = read_onnx_info(tmp_path / "m16.onnx")
    assert info.precision == "fp16"
    parity = json.loads((tmp_path / "parity.json").read_text())
    assert parity["passed"] and parity["min_cosine_required"] == 0.999 and parity["precision"] == "fp16"
    model = onnx.load(str(tmp_path / "m16.onnx"))
    fp16_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(fp16_weights) > 20  # weights really are fp16
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 I/O kept
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    check = run_cli("export", "check", tmp_path / "m16.onnx")
    assert check.returncode == 0 and "fp16" in check.stdout
    # README: normalisations, reductions and softmax compute in float32: every input of those ops is
    # a float32 tensor (a Cast to float, a float32 initializer or graph input), never an fp16 one
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    islands = [n for n in model.graph.node if n.op_type in ("LayerNormalization", "Softmax", "ReduceMean")]
    assert len(islands) > 10
    for node in islands:
        for name in node.input:
            if name:
                assert types.get(name) == onnx.TensorProto.FLOAT, (node.op_type, node.name, name, types.get(name))
    # an fp16 graph is refused as a source whatever its metadata claims
    info.precision = "fp32"
    from vfmaudit.artefact import write_onnx_info

    write_onnx_info(tmp_path / "m16.onnx", info)
    assert read_onnx_info(tmp_path / "m16.onnx").precision == "fp32"
    lied = run_cli("export", "convert", tmp_path / "m16.onnx", "--precision", "fp16", "--out", tmp_path / "again.onnx")
    assert lied.returncode == 2 and "is fp16; convert its fp32 export instead" in lied.stderr, lied.stderr

