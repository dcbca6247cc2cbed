"""vfmaudit gate: policies, checks, baselines, JUnit / Markdown / JSON, agreement@k, dry runs."""

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from vfmaudit.gate import MetricInfo, evaluate, load_policy
from vfmaudit.gate.policy import Check
from vfmaudit.metrics import neighbour_agreement

EXAMPLES = Path(__file__).parent.parent / "examples" / "policies"

FAST_AUDIT = """
model = "timm:test_vit"

[audit]
perturbations = "jpeg,brightness"
levels = 2
"""


def write_policy(folder: Path, text: str, name: str = "policy.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def one_error_line(res) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (res.returncode, res.stderr)
    return lines[0]


def junit_counts(path: Path) -> tuple[int, int]:
    """(tests, failures) as a CI reader would count them, checked against the attributes."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("tests")) == len(cases) == int(root.get("tests"))
    assert int(suite.get("failures")) == len(failures) == int(root.get("failures"))
    assert suite.get("errors") == "0" and suite.find("properties") is not None
    for c in cases:  # named by the check's name, else its metric (which starts with the measurement)
        assert c.get("classname") and c.get("name")
        assert " " in c.get("name") or c.get("name").startswith(c.get("classname") + ".")
    for c in failures:
        assert "needs" in c.find("failure").get("message") or "baseline" in c.find("failure").get("message")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["model"] and props["vfmaudit"] and "version.torch" in props
    return len(cases), len(failures)


def test_passing_and_failing_policy_on_one_model(tmp_path):
    good = write_policy(tmp_path, FAST_AUDIT + """
        [[check]]
        metric = "audit.jpeg.divergence_radius.p95"
        max = 0.9

        [[check]]
        metric = "audit.brightness.cosine.mean"
        min = -1
        """, "good.toml")
    bad = write_policy(tmp_path, FAST_AUDIT + """
        [[check]]
        metric = "audit.jpeg.divergence_radius.p95"
        max = 0.9

        [[check]]
        name = "impossibly strict"
        metric = "audit.jpeg.divergence_radius.worst"
        max = 0.000001
        """, "bad.toml")
    res = run_cli("gate", good, "--out", tmp_path / "g", "--junit", tmp_path / "ci" / "junit.xml",
                  "--markdown", tmp_path / "summary.md", "--json", tmp_path / "gate-copy.json")
    assert res.returncode == 0, res.stderr
    assert "gate PASSED" in res.stdout
    assert junit_counts(tmp_path / "g" / "junit.xml") == (2, 0)
    assert junit_counts(tmp_path / "ci" / "junit.xml") == (2, 0)
    data = json.loads((tmp_path / "g" / "gate.json").read_text())
    assert data == json.loads((tmp_path / "gate-copy.json").read_text())  # --json: the same document
    assert data["schema"] == "vfmaudit.gate" and data["passed"] and data["counts"] == {"checks": 2, "failures": 0}
    assert (tmp_path / "g" / "audit" / "report.json").exists()  # the measurement's own report is kept
    audit = json.loads((tmp_path / "g" / "audit" / "report.json").read_text())
    p95 = audit["families"]["jpeg"]["divergence_radius"]["p95"]
    check = data["checks"][0]
    assert check["value"] == pytest.approx(p95) and check["conditions"][0]["margin"] == pytest.approx(0.9 - p95)
    assert "✅" in (tmp_path / "summary.md").read_text()

    res = run_cli("gate", bad, "--out", tmp_path / "b")
    assert res.returncode == 1, res.stderr
    assert junit_counts(tmp_path / "b" / "junit.xml") == (2, 1)
    failure = ET.parse(tmp_path / "b" / "junit.xml").getroot().find(".//failure").get("message")
    assert "audit.jpeg.divergence_radius.worst" in failure and "<= 1e-06" in failure and "margin -" in failure
    md = (tmp_path / "b" / "summary.md").read_text()
    assert "❌ failed (1 of 2 checks)" in md and "impossibly strict" in md


def test_regression_checks_against_a_stored_baseline(tmp_path):
    first = write_policy(tmp_path, FAST_AUDIT + """
        [[check]]
        metric = "audit.brightness.cosine.mean"
        min = -1
        """, "first.toml")
    assert run_cli("gate", first, "--out", tmp_path / "base").returncode == 0
    same = write_policy(tmp_path, FAST_AUDIT + """
        [[check]]
        metric = "audit.brightness.cosine.mean"
        max_drop = 0.0
        """, "same.toml")
    res = run_cli("gate", same, "--baseline", tmp_path / "base", "--out", tmp_path / "again")
    assert res.returncode == 0, res.stdout + res.stderr  # the same model is not worse than itself
    data = json.loads((tmp_path / "again" / "gate.json").read_text())
    assert data["baseline"].endswith("gate.json") and data["checks"][0]["baseline"] == data["checks"][0]["value"]
    summary = (tmp_path / "again" / "summary.md").read_text()
    assert "baseline" in summary and "compare.html" in summary  # baseline and candidate audits, side by side
    assert "Gate: baseline (A) against candidate (B)" in (tmp_path / "again" / "compare.html").read_text()

    # a baseline that was better by 0.05: a regression of 0.05 in cosine (higher is better)
    base = json.loads((tmp_path / "base" / "gate.json").read_text())
    base["values"]["audit.brightness.cosine.mean"] += 0.05
    (tmp_path / "better.json").write_text(json.dumps(base))
    strict = write_policy(tmp_path, FAST_AUDIT + """
        [[check]]
        metric = "audit.brightness.cosine.mean"
        max_drop = 0.01
        """, "strict.toml")
    res = run_cli("gate", strict, "--baseline", tmp_path / "better.json", "--out", tmp_path / "worse")
    assert res.returncode == 1
    cond = json.loads((tmp_path / "worse" / "gate.json").read_text())["checks"][0]["conditions"][0]
    assert cond["compared"] == pytest.approx(0.05) and cond["margin"] == pytest.approx(-0.04)


def test_max_drop_follows_each_metrics_direction():
    lower = Check(metric="audit.jpeg.divergence_radius.p95", measurement="audit", info=MetricInfo(False, (0, 1)),
                  thresholds={"max_drop": 0.01, "max_relative_drop": 0.5})
    base = {"audit.jpeg.divergence_radius.p95": 0.10}
    assert evaluate(lower, 0.105, base).passed  # 0.005 worse, 5% relative
    worse = evaluate(lower, 0.2, base)
    assert not worse.passed and [c["passed"] for c in worse.conditions] == [False, False]
    assert evaluate(lower, 0.0, base).passed  # better is never a regression
    higher = Check(metric="parity.cosine.min", measurement="parity", info=MetricInfo(True, (-1, 1)),
                   thresholds={"max_drop": 0.01})
    assert not evaluate(higher, 0.95, {"parity.cosine.min": 0.99}).passed
    assert evaluate(higher, 0.999, {"parity.cosine.min": 0.99}).passed
    assert not evaluate(higher, None, {"parity.cosine.min": 0.99}).passed  # not measured: fails, says so


@pytest.mark.parametrize("body,needle", [
    ('model = "openclip:ViT-S-32"\nmodle = 1\n[[check]]\nmetric = "bench.throughput"\nmin = 1\n',
     "unknown key 'modle'; did you mean 'model'?"),
    ('model = 3\n[[check]]\nmetric = "bench.throughput"\nmin = 1\n', "model must be a string"),
    ('model = "openclip:ViT-S-32"\n[[check]]\nmetric = "audit.jpeg.divergance_radius.p95"\nmax = 1\n',
     "unknown metric 'audit.jpeg.divergance_radius.p95'; did you mean 'audit.jpeg.divergence_radius.p95'?"),
    ('model = "openclip:ViT-S-32"\n[[check]]\nmetric = "audti.jpeg.cosine.mean"\nmin = 0\n',
     "unknown measurement 'audti'"),
    ('model = "openclip:ViT-S-32"\n[[check]]\nmetric = "parity.cosine.min"\nmin = 1.5\n',
     "above the largest possible"),
    ('model = "openclip:ViT-S-32"\n[[check]]\nmetric = "bench.throughput"\nmin = 5\nmax = 2\n', "no value can pass"),
    ('model = "openclip:ViT-S-32"\n[[check]]\nmetric = "bench.throughput"\nmax_drop = -1\n', "max_drop must be >= 0"),
    ('model = "openclip:ViT-S-32"\n[[check]]\nmetric = "bench.throughput"\n', "no threshold"),
    ('model = "openclip:ViT-S-32"\n[[check]]\nmetric = "bench.throughput"\nmin = "fast"\n', "min must be a number"),
    ('model = "openclip:ViT-S-32"\n[audit]\nlevel = 3\n[[check]]\nmetric = "bench.throughput"\nmin = 1\n',
     "audit.level: unknown option; did you mean 'levels'?"),
    ('model = "openclip:ViT-S-32"\n[audit]\nlevels = "3"\n[[check]]\nmetric = "bench.throughput"\nmin = 1\n',
     "audit.levels must be an integer"),
    ('model = "missing.onnx"\n[[check]]\nmetric = "parity.cosine.min"\nmin = 0.9\n', "file not found: missing.onnx"),
    ('model = "openclip:ViT-S-32"\nimages = ["no/such/folder"]\n[[check]]\nmetric = "bench.throughput"\nmin = 1\n',
     "images: not found"),
    ('model = "openclip:ViT-S-32"\n[downstream]\ntasks = "knn"\n[[check]]\n'
     'metric = "downstream.linear_probe.jpeg.accuracy_drop.max"\nmax = 0.1\n',
     "unknown metric 'downstream.linear_probe.jpeg.accuracy_drop.max'; did you mean"),
    ('model = "openclip:ViT-S-32"\n[[check]]\nmetric = "bench.throughput"\nmax_relative_drop = 0.1\n',
     "pass --baseline"),
    ('model = "openclip:ViT-S-32"\n', "no [[check]]"),
    ('[[check]]\nmetric = "bench.throughput"\nmin = 1\n', "'model' is missing"),
    ('model = "openclip:ViT-S-32"\n[[check]\n', "not valid TOML"),
    ('model = "openclip:NoSuchNet"\n[[check]]\nmetric = "bench.throughput"\nmin = 1\n', "model: unknown OpenCLIP"),
])
def test_malformed_policies_are_one_line_and_exit_2(tmp_path, body, needle):
    policy = write_policy(tmp_path, body)
    line = one_error_line(run_cli("gate", policy, "--out", tmp_path / "o"))
    assert needle in line and ("policy.toml" in line or "baseline" in line), line
    assert not (tmp_path / "o" / "gate.json").exists()


def test_missing_baseline_is_one_line(tmp_path):
    policy = write_policy(tmp_path, FAST_AUDIT + '[[check]]\nmetric = "audit.jpeg.cosine.mean"\nmin = 0\n')
    line = one_error_line(run_cli("gate", policy, "--baseline", tmp_path / "nope", "--out", tmp_path / "g"))
    assert "baseline not found" in line


def test_dry_run_validates_and_runs_no_model(tmp_path, monkeypatch):
    import dataclasses
    import functools

    from vfmaudit.models import factory
    from vfmaudit.runtime import registry

    def forbid(fn):
        @functools.wraps(fn)  # keeps the signature: the registry reads the options from it
        def boom(*args, **kwargs):
            raise AssertionError(f"--dry-run ran {fn.__name__}")
        return boom

    monkeypatch.setattr(factory, "build_model", forbid(factory.build_model))
    for name, backend in registry.backends().items():
        monkeypatch.setitem(registry._BACKENDS._entries, name, dataclasses.replace(backend, factory=forbid(backend.factory)))
    policy = write_policy(tmp_path, FAST_AUDIT + """
        [[check]]
        metric = "audit.jpeg.divergence_radius.p95"
        max = 0.2

        [[check]]
        metric = "agreement.jpeg.top1.mean"
        min = 0.9
        """)
    res = run_cli("gate", policy, "--dry-run", "--out", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    assert "would run: audit" in res.stdout and "would run: agreement" in res.stdout
    assert "would run: bench" not in res.stdout  # measurements no check needs do not run
    assert not (tmp_path / "o").exists()
    # the same policy without --dry-run does try to build the model: the guard above is real
    real = run_cli("gate", policy, "--out", tmp_path / "o2")
    assert real.returncode == 3 and "--dry-run ran make_torch_encoder" in real.stderr  # an internal error


def brute_force_agreement(ref, cand, k, candidate_gallery=True):
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cand = cand / np.linalg.norm(cand, axis=1, keepdims=True)
    gallery = cand if candidate_gallery else ref
    top1, overlap = [], []
    for i in range(len(ref)):
        others = [j for j in range(len(ref)) if j != i]
        r = sorted(others, key=lambda j: (-float(ref[i] @ ref[j]), j))
        c = sorted(others, key=lambda j: (-float(cand[i] @ gallery[j]), j))
        top1.append(r[0] == c[0])
        overlap.append(len(set(r[:k]) & set(c[:k])) / k)
    return float(np.mean(top1)), float(np.mean(overlap))


@pytest.mark.parametrize("candidate_gallery", [True, False])
def test_agreement_equals_brute_force(candidate_gallery):
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(40, 16))
    cand = ref + 0.6 * rng.normal(size=ref.shape)
    got = neighbour_agreement(ref, cand, ks=(1, 5, 10), candidate_gallery=candidate_gallery)
    for k in (1, 5, 10):
        top1, overlap = brute_force_agreement(ref, cand, k, candidate_gallery)
        assert got["top1"] == pytest.approx(top1) and got[f"overlap@{k}"] == pytest.approx(overlap)
    assert neighbour_agreement(ref, ref)["overlap@10"] == 1.0
    assert neighbour_agreement(ref[:5], cand[:5])["overlap@10"] is None  # needs 11 images


def test_example_robustness_policy(tmp_path):
    res = run_cli("gate", EXAMPLES / "robustness-release.toml", "--out", tmp_path / "g")
    assert res.returncode == 0, res.stdout + res.stderr
    assert junit_counts(tmp_path / "g" / "junit.xml") == (4, 0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """model.onnx (timm's tiny test_vit, seeded random) and model.int8.onnx beside copies of the example policies."""
    from vfmaudit import calibrate, export_onnx

    d = tmp_path_factory.mktemp("artefacts")
    export_onnx("timm:test_vit", d / "model.onnx", seed=0, exporter="torchscript")
    calibrate(d / "model.onnx", d / "model.int8.onnx", size=32, cache_dir=d / "cache")
    for name in ("onnx-export.toml", "int8.toml"):
        shutil.copy(EXAMPLES / name, d / name)
    return d


def test_example_onnx_export_policy(exported, tmp_path):
    res = run_cli("gate", exported / "onnx-export.toml", "--out", tmp_path / "g")
    assert res.returncode == 0, res.stdout + res.stderr
    assert junit_counts(tmp_path / "g" / "junit.xml") == (4, 0)
    values = json.loads((tmp_path / "g" / "gate.json").read_text())["values"]
    assert values["parity.agreement.top1"] == 1.0 and values["parity.cosine.min"] > 0.9999


def test_example_int8_policy(exported, tmp_path):
    res = run_cli("gate", exported / "int8.toml", "--out", tmp_path / "g")
    assert res.returncode in (0, 1), res.stderr
    counts = junit_counts(tmp_path / "g" / "junit.xml")
    data = json.loads((tmp_path / "g" / "gate.json").read_text())
    assert counts == (3, data["counts"]["failures"])
    assert res.returncode == 0, data["checks"]
    assert 0 <= data["values"]["int8.agreement.overlap@5"] <= 1


def test_readme_metric_names_are_valid_paths(tmp_path):
    """Every concrete metric the README's gate section names is one the gate accepts."""
    import re

    from vfmaudit.gate import measurements

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Acceptance gates"):readme.index("## Benchmarks")]
    names = {m for m in re.findall(r"`([a-z0-9_]+\.[a-z0-9_@.]+)`", section)
             if m.split(".")[0] in measurements() and not m.endswith(".json")}
    # the audit measures the ImageNet-C preset too, so its summary's paths exist (the README names them)
    policy = load_policy(write_policy(tmp_path, 'model = "openclip:ViT-S-32"\n[audit]\nperturbations = '
                                                '"everyday,imagenet-c"\n[[check]]\nmetric = "bench.throughput"\n'
                                                'min = 1\n'))
    valid = {p for name, m in measurements().items() if m.available
             for p in m.metric_paths(policy, policy.options[name])}
    assert len(names) >= 10 and not names - valid, names - valid


def test_gate_json_and_its_copy_are_one_document_whatever_the_clock(tmp_path, monkeypatch):
    """gate.json and --json are the same to_json(): the time stamps are taken once (a run that crossed
    a second boundary between the two writes used to differ in 'created')."""
    import itertools

    from vfmaudit.artefact import provenance
    from vfmaudit.gate import load_policy
    from vfmaudit.gate.runner import GateResult

    ticks = itertools.count()
    monkeypatch.setattr(provenance, "utc_now", lambda: f"2026-01-01T00:00:{next(ticks):02d}+00:00")
    policy = write_policy(tmp_path, FAST_AUDIT + """
        [[check]]
        metric = "audit.jpeg.cosine.mean"
        min = 0
        """, "p.toml")
    result = GateResult(policy=load_policy(policy))
    assert result.to_json() == result.to_json()


@pytest.mark.parametrize("section, metric, expected", [
    ('[attack]\nmethod = "pgdd"\n', "attack.linf_2.cosine.p5", "attack.method: method must be one of"),
    ('[attack]\nloss = "cos"\n', "attack.linf_2.cosine.p5", "attack.loss: loss must be one of"),
    ('[attack]\nsteps = 0\n', "attack.linf_2.cosine.p5", "attack.steps: steps must be >= 1"),
    ('[downstream]\ntasks = "knnn"\n', "downstream.knn_1.clean.accuracy", "downstream.tasks: unknown task 'knnn'"),
])
def test_dry_run_checks_every_option_value_naming_file_and_key(tmp_path, section, metric, expected):
    policy = write_policy(tmp_path, f'model = "timm:test_vit"\n{section}[[check]]\nmetric = "{metric}"\nmin = 0\n')
    line = one_error_line(run_cli("gate", policy, "--dry-run"))
    assert line.startswith(f"error: {policy}: ") and expected in line, line
