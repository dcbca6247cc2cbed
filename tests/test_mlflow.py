"""MLflow tracking and the model registry (issue 40) against a real `mlflow server` (SQLite backend, local
artefact folder, 127.0.0.1 and a free port, started here and stopped after) and MLflow's own local default
store: the acceptance loop (champion as baseline -> gate -> register -> promote only on a pass), bad input,
concurrent promotions, the history page, and the runs every measuring command logs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli, run_process
from mlflow_server import mlflow_server
from s3_server import free_port
from test_gate import one_error_line
from test_report_browser import browser  # noqa: F401 - the shared headless Chromium fixture
from test_gate import write_policy as policy

pytest.importorskip("mlflow", reason="the mlflow extra is part of the dev install")
from mlflow import MlflowClient  # noqa: E402

pytestmark = pytest.mark.slow

BASE = """
model = "timm:test_vit"

[audit]
perturbations = "jpeg,brightness"
levels = 2

[[check]]
metric = "audit.jpeg.divergence_radius.p95"
max = 0.9
"""
FIRST = BASE + """
[[check]]
name = "brightness cosine"
metric = "audit.brightness.cosine.mean"
min = -1
"""
REGRESSION = BASE + """
[[check]]
name = "no worse than production"
metric = "audit.brightness.cosine.mean"
max_drop = 0.01
"""
FAILING = REGRESSION + """
[[check]]
name = "impossibly strict"
metric = "audit.jpeg.divergence_radius.p95"
max = 0.0
"""


def alias_version(client, name: str, alias: str) -> str:
    return str(client.get_model_version_by_alias(name, alias).version)  # an int in a local store


def versions(client, name: str) -> list:
    return sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri


@pytest.fixture(scope="module")
def client(server):
    return MlflowClient(tracking_uri=server)


@pytest.fixture(autouse=True)
def no_ambient_store(monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def champion(server, client, tmp_path_factory):
    """A model 'shared' whose champion is version 1, registered by a passing gate: (its gate folder, policies)."""
    d = tmp_path_factory.mktemp("champion")
    first, reg = policy(d, FIRST, "first.toml"), policy(d, REGRESSION, "regression.toml")
    res = run_cli("gate", first, "--mlflow", server, "--register", "shared", "--promote", "champion", "-o", d / "g1",
                  "-q")
    assert res.returncode == 0, res.stdout + res.stderr
    assert alias_version(client, "shared", "champion") == "1"
    return d / "g1", reg


def checks_of(gate_json: Path) -> list[tuple]:
    data = json.loads(gate_json.read_text())
    return [(c["metric"], c["passed"], c["baseline"], c["value"], [x["passed"] for x in c["conditions"]])
            for c in data["checks"]]


def test_the_acceptance_loop_promotes_only_what_passes(server, client, tmp_path, monkeypatch):
    git = ["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "candidate"], check=True)
    commit = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    first = policy(tmp_path, FIRST, "first.toml")
    # the first version: no baseline yet; registered and promoted
    res = run_cli("gate", first, "--mlflow", server, "--register", "enc", "--promote", "champion", "-o",
                  tmp_path / "g1", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "registered: models:/enc/1" in res.stdout and "promoted: models:/enc@champion -> version 1" in res.stdout
    v1 = versions(client, "enc")[0]
    assert alias_version(client, "enc", "champion") == "1" and v1.tags["vfmaudit.gate"] == "passed"
    run = client.get_run(v1.run_id)
    gate1 = json.loads((tmp_path / "g1" / "gate.json").read_text())
    # the run: the gate's values under the gate's names, the verdict and provenance as tags, the files
    for metric, value in gate1["values"].items():
        if value is not None:
            assert run.data.metrics[metric] == pytest.approx(value, rel=1e-12), metric
    assert run.data.tags["vfmaudit.verdict"] == "passed" and run.data.tags["mlflow.source.git.commit"] == commit
    assert run.data.tags["vfmaudit.version"] and run.data.tags["vfmaudit.hardware"]
    assert run.data.params["model"] == "timm:test_vit" and run.data.params["policy"] == str(first)
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(v1.run_id, "audit.jpeg.cosine.level_mean")  # per-level series as steps
    per_level = json.loads((tmp_path / "g1" / "audit" / "report.json").read_text())["families"]["jpeg"]["per_level"]
    assert [m.step for m in history] == [0, 1]
    assert [m.value for m in history] == pytest.approx([r["cosine_mean"] for r in per_level], rel=1e-12)
    files = {f.path for f in client.list_artifacts(v1.run_id, "gate")}
    assert {"gate/gate.json", "gate/junit.xml", "gate/summary.md", "gate/audit"} <= files
    audit_files = {f.path for f in client.list_artifacts(v1.run_id, "gate/audit")}
    assert {"gate/audit/report.html", "gate/audit/per_image.csv", "gate/audit/report.json"} <= audit_files
    spec = json.loads(Path(client.download_artifacts(v1.run_id, "candidate/spec.json", str(tmp_path))).read_text())
    assert spec == {"model": "timm:test_vit", "pretrained": None, "seed": 0}
    assert v1.source.endswith("/candidate") and v1.tags["vfmaudit.candidate"] == "spec.json"

    # a passing candidate, the champion as its baseline (the store from MLFLOW_TRACKING_URI, --mlflow alone)
    reg = policy(tmp_path, REGRESSION, "regression.toml")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    res = run_cli("gate", reg, "--baseline", "models:/enc@champion", "--mlflow", "--register", "enc", "--promote",
                  "champion", "-o", tmp_path / "g2", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert alias_version(client, "enc", "champion") == "2"
    assert json.loads((tmp_path / "g2" / "gate.json").read_text())["baseline"] == "models:/enc@champion (version 1)"
    assert (tmp_path / "g2" / "compare.html").is_file()  # the champion's audit against the candidate's
    # the same baseline as a folder: the same verdicts, baselines and margins
    res = run_cli("gate", reg, "--baseline", tmp_path / "g1", "-o", tmp_path / "g2-folder", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert checks_of(tmp_path / "g2" / "gate.json") == checks_of(tmp_path / "g2-folder" / "gate.json")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    # a failing candidate: registered (as asked), tagged failed, the alias stays; exit 1
    failing = policy(tmp_path, FAILING + f'\n[mlflow]\ntracking_uri = "{server}"\n', "failing.toml")
    res = run_cli("gate", failing, "--baseline", "models:/enc/2", "--register", "enc", "--promote", "champion", "-o",
                  tmp_path / "g3", cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "registered: models:/enc/3" in res.stdout and "promoted" not in res.stdout
    loop = json.loads((tmp_path / "g3" / "mlflow.json").read_text())  # what CI reads of the loop
    assert loop["registered"] == "models:/enc/3" and loop["promoted"] is None and loop["run_id"] == \
        versions(client, "enc")[2].run_id
    assert alias_version(client, "enc", "champion") == "2"
    v3 = versions(client, "enc")[2]
    assert v3.tags["vfmaudit.gate"] == "failed"
    assert client.get_run(v3.run_id).data.tags["vfmaudit.verdict"] == "failed"

    # a gate that cannot run (its only image is unreadable): exit 2, nothing registered, no run logged
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not an image")
    runs_before = len(client.search_runs([client.get_experiment_by_name("vfmaudit").experiment_id]))
    cannot = policy(tmp_path, f'images = ["{broken}"]\n' + textwrap.dedent(REGRESSION), "cannot.toml")
    res = run_cli("gate", cannot, "--baseline", "models:/enc@champion", "--mlflow", server, "--register", "enc",
                  "--promote", "champion", "-o", tmp_path / "g4", "-q", cwd=tmp_path)
    one_error_line(res)
    assert len(versions(client, "enc")) == 3 and alias_version(client, "enc", "champion") == "2"
    assert len(client.search_runs([client.get_experiment_by_name("vfmaudit").experiment_id])) == runs_before

    # the history: every version in order, its verdict, the alias
    res = run_cli("report", "history", "models:/enc", "--mlflow", server, "-o", tmp_path / "history.html", "--json",
                  tmp_path / "history.json")
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "history.json").read_text())
    assert [e["version"] for e in data["entries"]] == ["1", "2", "3"]
    assert [e["passed"] for e in data["entries"]] == [True, True, False]
    assert [e["aliases"] for e in data["entries"]] == [[], ["champion"], []]
    assert data["entries"][1]["values"] == json.loads((tmp_path / "g2" / "gate.json").read_text())["values"]
    assert "version 2 [champion]: passed" in res.stdout
    # an experiment's gate runs, oldest first (the failing candidate's run is the last)
    res = run_cli("report", "history", "vfmaudit", "--mlflow", server, "-o", tmp_path / "exp.html", "--json",
                  tmp_path / "exp.json")
    assert res.returncode == 0, res.stderr
    runs = json.loads((tmp_path / "exp.json").read_text())["entries"]
    assert [e["run_id"] for e in runs][-3:] == [v.run_id for v in versions(client, "enc")]


def test_the_readme_loop_registers_the_onnx_file(server, client, tmp_path, monkeypatch):
    """The README's loop with examples/policies/registry-release.toml: an exported candidate gated against
    the champion, the .onnx file itself registered and promoted; the workflow example runs the same command."""
    import re
    import shutil

    from vfmaudit import export_onnx
    from vfmaudit.files import file_sha256

    root = Path(__file__).parent.parent
    example = (root / "examples" / "policies" / "registry-release.toml").read_text()
    workflow = (root / "examples" / "github-actions" / "vfmaudit-gate.yml").read_text()
    assert "--baseline models:/encoder@champion --register encoder --promote champion" in workflow
    assert "registry-release.toml --baseline models:/encoder@champion" in (root / "README.md").read_text()
    export_onnx("timm:test_vit", tmp_path / "model.onnx", seed=0, exporter="torchscript")
    shutil.copy(root / "examples" / "policies" / "registry-release.toml", tmp_path / "release.toml")
    # the first version, as the example says: its regression checks left out
    first = re.sub(r"\[\[check\]\]\nname = [^\n]*\nmetric = [^\n]*\nmax_(relative_)?drop = [^\n]*\n?", "", example)
    assert "drop" not in first.split("[[check]]", 1)[1]
    (tmp_path / "first.toml").write_text(first + '\n[[check]]\nmetric = "audit.jpeg.divergence_radius.p95"\nmax = 1\n')
    res = run_cli("gate", tmp_path / "first.toml", "--mlflow", server, "--register", "encoder", "--promote",
                  "champion", "-o", tmp_path / "g1", "-q")
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_cli("gate", tmp_path / "release.toml", "--baseline", "models:/encoder@champion", "--mlflow", server,
                  "--register", "encoder", "--promote", "champion", "-o", tmp_path / "g2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "promoted: models:/encoder@champion -> version 2" in res.stdout
    v2 = versions(client, "encoder")[1]
    assert alias_version(client, "encoder", "champion") == "2" and v2.tags["vfmaudit.candidate"] == "model.onnx"
    import mlflow.artifacts

    # what a deployment pulls from the registry is the very file that was gated
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)  # models:/ URIs resolve in the registry of the environment
    pulled = Path(mlflow.artifacts.download_artifacts("models:/encoder@champion", dst_path=str(tmp_path / "dl"),
                                                      tracking_uri=server))
    assert sorted(p.name for p in pulled.iterdir()) == ["model.onnx"]
    assert file_sha256(pulled / "model.onnx") == file_sha256(tmp_path / "model.onnx")
    assert client.get_run(v2.run_id).data.params["weights_sha256"] == file_sha256(tmp_path / "model.onnx")


def test_bad_input_is_one_line_exit_2_and_promotes_nothing(server, client, champion, tmp_path):
    gate1, reg = champion
    # a version registered by another tool, without a gate run
    client.create_model_version("shared", source="s3://models/encoder/by-hand")
    dead = f"http://127.0.0.1:{free_port()}"
    loop = ["--register", "shared", "--promote", "champion"]
    cases = {
        "unreachable tracking URI": (["--baseline", str(gate1), "--mlflow", dead, *loop], "cannot reach"),
        "unknown model name": (["--baseline", "models:/nosuchmodel@champion", "--mlflow", server, *loop],
                               "no registered model 'nosuchmodel'"),
        "alias that does not exist": (["--baseline", "models:/shared@production", "--mlflow", server, *loop],
                                      "has no alias 'production' (aliases: champion -> version 1)"),
        "version without a gate.json": (["--baseline", "models:/shared/2", "--mlflow", server, *loop],
                                        "has no gate/gate.json"),
        "version that does not exist": (["--baseline", "models:/shared/9", "--mlflow", server, *loop],
                                        "has no version 9"),
        "--promote without --register": (["--baseline", str(gate1), "--mlflow", server, "--promote", "champion"],
                                         "--promote moves an alias to the version that --register creates"),
        "a reserved alias": (["--baseline", str(gate1), "--mlflow", server, "--register", "shared", "--promote",
                              "latest"], "reserved"),
        "not a models:/ URI": (["--baseline", "models:/shared", "--mlflow", server, *loop], "models:/NAME@ALIAS"),
    }
    for what, (args, expected) in cases.items():
        res = run_cli("gate", reg, *args, "-o", tmp_path / "out")
        line = one_error_line(res)
        assert expected in line, (what, line)
        assert "measuring" not in res.stdout + res.stderr, what  # refused before any measurement
        assert alias_version(client, "shared", "champion") == "1", what
        assert len(versions(client, "shared")) == 2, what
    # a dry run reaches the store and resolves the baseline too, and registers nothing
    res = run_cli("gate", reg, "--baseline", "models:/shared@champion", "--mlflow", server, "--register", "shared",
                  "--promote", "champion", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "baseline: models:/shared@champion (version 1)" in res.stdout and "would register" in res.stdout
    assert len(versions(client, "shared")) == 2


def test_a_promotion_that_fails_half_way_leaves_the_alias(server, client, champion, tmp_path):
    """The gate passes, but its files cannot be stored (the experiment's artefact folder lies under a
    file): exit 2 with the reason, no version registered, the alias where it was."""
    gate1, _ = champion
    (tmp_path / "a-file").write_text("not a folder")
    client.create_experiment("unstorable", artifact_location=f"file://{tmp_path}/a-file/artifacts")
    text = textwrap.dedent(REGRESSION) + '\n[mlflow]\nexperiment = "unstorable"\n'
    path = tmp_path / "p.toml"
    path.write_text(text)
    res = run_cli("gate", path, "--baseline", "models:/shared@champion", "--mlflow", server, "--register", "shared",
                  "--promote", "champion", "-o", tmp_path / "g", "-q")
    line = one_error_line(res)
    assert "the gate passed and its results are in" in line and "the alias was not moved" in line, line
    assert alias_version(client, "shared", "champion") == "1"
    assert [v.version for v in versions(client, "shared")][-1] in ("1", "2")  # nothing new registered
    assert json.loads((tmp_path / "g" / "gate.json").read_text())["passed"]  # the gate's work is kept
    runs = client.search_runs([client.get_experiment_by_name("unstorable").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_two_gates_promoting_the_same_alias_at_once(server, client, tmp_path):
    """Two passing and one failing gate, three processes at once: every one registered, the alias on a
    passing version, never on the failing one."""
    good, bad = policy(tmp_path, FIRST, "good.toml"), policy(tmp_path, FIRST + """
        [[check]]
        metric = "audit.jpeg.divergence_radius.p95"
        max = 0.0
        """, "bad.toml")
    procs = [subprocess.Popen([sys.executable, "-m", "vfmaudit", "gate", str(p), "--mlflow", server, "--register",
                               "race", "--promote", "champion", "-o", str(tmp_path / f"g{i}"), "-q"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, p in enumerate([good, bad, good])]
    outcomes = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 1, 0], outcomes
    registered = versions(client, "race")
    assert len(registered) == 3
    passed = {v.version for v in registered if v.tags["vfmaudit.gate"] == "passed"}
    assert len(passed) == 2
    assert alias_version(client, "race", "champion") in passed


def test_the_local_default_store(tmp_path):
    """No URI anywhere: MLflow's own default store in the working folder, the same loop."""
    first, reg = policy(tmp_path, FIRST, "first.toml"), policy(tmp_path, REGRESSION, "regression.toml")
    env_free = {"cwd": tmp_path}
    res = run_process("gate", first, "--register", "local", "--promote", "champion", "-o", "g1", "-q", **env_free)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_process("gate", reg, "--baseline", "models:/local@champion", "--register", "local", "--promote",
                      "champion", "-o", "g2", "-q", **env_free)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "mlflow.db").is_file()
    local = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert alias_version(local, "local", "champion") == "2"
    res = run_process("report", "history", "models:/local", "--json", "h.json", "-o", "h.html", **env_free)
    assert res.returncode == 0, res.stderr
    assert [e["version"] for e in json.loads((tmp_path / "h.json").read_text())["entries"]] == ["1", "2"]


def test_an_audit_run_holds_its_metrics_levels_and_files_and_no_credentials(tmp_path, photo_batch):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(photo_batch[:2]):
        Image.fromarray(img).save(folder / f"p{i}.png")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    res = run_cli("audit", folder, "-m", "timm:test_vit", "-p", "jpeg,brightness", "--levels", "3", "-o",
                  tmp_path / "a", "--storage-option", "secret_access_key=HUNTER2", "--mlflow", store,
                  cwd=tmp_path)  # a SQLite store keeps its files in ./mlruns
    assert res.returncode == 0, res.stderr
    assert "mlflow: run " in res.stdout
    c = MlflowClient(tracking_uri=store)
    (run,) = c.search_runs([c.get_experiment_by_name("vfmaudit").experiment_id])
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    from vfmaudit.gate.measurements import get_measurement

    expected = {k: v for k, v in get_measurement("audit").values(report).items() if v is not None}
    assert expected and {k: run.data.metrics[k] for k in expected} == pytest.approx(expected, rel=1e-12)
    for fam in ("jpeg", "brightness"):
        steps = c.get_metric_history(run.info.run_id, f"audit.{fam}.euclidean.level_mean")
        assert [m.value for m in steps] == pytest.approx(
            [r["euclidean_mean"] for r in report["families"][fam]["per_level"]], rel=1e-12)
    assert run.data.params["levels"] == "3" and run.data.tags["vfmaudit.command"] == "audit"
    assert {"report.json", "report.html", "per_image.csv", "per_level.csv"} <= {f.path for f in c.list_artifacts(
        run.info.run_id)}
    everything = json.dumps([run.data.params, run.data.tags])
    assert "HUNTER2" not in everything and "storage_option" not in everything


@pytest.mark.parametrize("command", ["attack", "bench meb", "calibrate", "downstream", "finetune"])
def test_every_measuring_command_logs_one_run(command, tmp_path, photo_batch):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(photo_batch):
        Image.fromarray(img).save(folder / f"p{i}.png")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    if command == "attack":
        args = ["attack", folder, "-m", "timm:test_vit", "--eps", "2", "--steps", "2", "-o", tmp_path / "o"]
        expected = "attack."
    elif command == "bench meb":
        args = ["bench", "meb", "--sets", "50", "--n", "5", "--dim", "16"]
        expected = "bench.meb."
    elif command == "calibrate":
        from vfmaudit import export_onnx

        fp32 = export_onnx("timm:test_resnet", tmp_path / "r.onnx", exporter="torchscript").path
        args = ["calibrate", fp32, "--out", tmp_path / "r.int8.onnx", "--size", "8", "--cache-dir", tmp_path / "c"]
        expected = "int8.cosine."
    elif command == "downstream":
        args = ["downstream", "builtin:textures", "-m", "timm:test_vit", "--tasks", "knn", "-p", "jpeg", "--levels",
                "2", "--max-per-class", "4", "-o", tmp_path / "o"]
        expected = "downstream.knn"
    else:
        args = ["finetune", folder, "-m", "timm:test_vit", "-p", "jpeg", "--batch-size", "2", "--steps", "2",
                "--train", "last:1", "--eval-perturbations", "jpeg", "-o", tmp_path / "o"]
        expected = "finetune."
    res = run_cli(*args, "--mlflow", store, *([] if command == "bench meb" else ["-q"]), cwd=tmp_path)
    assert res.returncode in (0, 1), res.stderr
    c = MlflowClient(tracking_uri=store)
    (run,) = c.search_runs([c.get_experiment_by_name("vfmaudit").experiment_id])
    assert run.data.tags["vfmaudit.command"] == command and run.info.status == "FINISHED"
    assert any(k.startswith(expected) for k in run.data.metrics), sorted(run.data.metrics)[:20]
    assert all(np.isfinite(v) for v in run.data.metrics.values())
    assert run.data.tags["vfmaudit.verdict"] in ("done", "passed", "failed")
    if command == "finetune":  # the training log as steps
        losses = [m.value for m in c.get_metric_history(run.info.run_id, "finetune.train.loss")]
        with open(tmp_path / "o" / "train_log.csv") as f:
            assert losses == pytest.approx([float(line.split(",")[2]) for line in f.readlines()[1:]])
    if command == "calibrate":
        assert run.data.tags["vfmaudit.verdict"] == ("passed" if res.returncode == 0 else "failed")
        assert "weights_sha256" in run.data.params
    names = {f.path for f in c.list_artifacts(run.info.run_id)}
    assert names, "the run holds the command's files"
    assert not any(n.endswith((".onnx", ".safetensors")) for n in names)  # models are registered, not copied


def test_bare_mlflow_takes_no_value_and_metric_names_suit_mlflow():
    from vfmaudit.cli import _bare_mlflow
    from vfmaudit.tracking.metrics import metric_key

    assert _bare_mlflow(["gate", "--mlflow", "p.toml"]) == ["gate", "--mlflow=", "p.toml"]
    assert _bare_mlflow(["gate", "p.toml", "--mlflow"]) == ["gate", "p.toml", "--mlflow="]
    assert _bare_mlflow(["gate", "--mlflow", "-q"]) == ["gate", "--mlflow=", "-q"]
    assert _bare_mlflow(["gate", "--mlflow", "http://h:5000"]) == ["gate", "--mlflow", "http://h:5000"]
    assert _bare_mlflow(["gate", "--mlflow", "sqlite:///x.db"]) == ["gate", "--mlflow", "sqlite:///x.db"]
    assert _bare_mlflow(["gate", "--", "--mlflow"]) == ["gate", "--", "--mlflow"]
    assert metric_key("int8.agreement.overlap@5") == "int8.agreement.overlap_at_5"
    assert metric_key("downstream.knn.jpeg.recall@1 (x)") == "downstream.knn.jpeg.recall_at_1 _x_"


def test_the_history_page_in_a_browser(server, client, champion, tmp_path, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    from test_report_browser import console_errors, overflowing

    res = run_cli("report", "history", "models:/shared", "--mlflow", server, "-o", tmp_path / "h.html")
    assert res.returncode == 0, res.stderr
    browser.get((tmp_path / "h.html").as_uri())
    assert console_errors(browser) == [] and overflowing(browser) == []
    rows = browser.find_elements(By.CSS_SELECTOR, "#verdicts tbody tr")
    registered = versions(client, "shared")
    assert [r.find_element(By.CSS_SELECTOR, "th").text for r in rows] == [f"version {v.version}" for v in registered]
    assert rows[0].find_elements(By.CSS_SELECTOR, "td")[2].text == "PASS"
    assert browser.find_elements(By.CSS_SELECTOR, ".plots svg")  # a line per checked metric
    table = browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")
    box = browser.find_element(By.ID, "metric-filter")
    box.send_keys("brightness.cosine.mean")
    filtered = browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")
    assert len(table) > len(filtered) >= 1
    assert all("brightness.cosine.mean" in r.find_element(By.CSS_SELECTOR, "th").text for r in filtered)



def test_a_command_whose_logging_fails_says_its_results_are_kept(tmp_path, monkeypatch):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    (tmp_path / "a-file").write_text("not a folder")
    MlflowClient(tracking_uri=store).create_experiment("unstorable",
                                                        artifact_location=f"file://{tmp_path}/a-file/artifacts")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "unstorable")
    res = run_cli("bench", "meb", "--sets", "20", "--n", "5", "--dim", "8", "--json", tmp_path / "b.json",
                  "--mlflow", store, cwd=tmp_path)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "vfmaudit bench meb finished and its results are kept, but logging to the MLflow" in lines[0], lines[0]
    assert json.loads((tmp_path / "b.json").read_text())["sets_per_s"] > 0  # the work is on disk


def test_a_torch_spec_with_a_weights_file_registers_the_weights(server, client, tmp_path):
    import timm
    import torch

    from vfmaudit.files import file_sha256

    torch.manual_seed(1)
    torch.save(timm.create_model("test_vit", pretrained=False).state_dict(), tmp_path / "weights.pt")
    path = policy(tmp_path, 'pretrained = "weights.pt"\n' + textwrap.dedent(FIRST), "weights.toml")
    res = run_cli("gate", path, "--mlflow", server, "--register", "weighted", "-o", tmp_path / "g", "-q")
    assert res.returncode == 0, res.stdout + res.stderr
    (v1,) = versions(client, "weighted")
    assert v1.tags["vfmaudit.candidate"] == "weights.pt" and v1.tags["vfmaudit.gate"] == "passed"
    pulled = client.download_artifacts(v1.run_id, "candidate/weights.pt", str(tmp_path / "dl"))
    assert file_sha256(pulled) == file_sha256(tmp_path / "weights.pt")
    assert client.get_run(v1.run_id).data.params["weights_sha256"] == file_sha256(tmp_path / "weights.pt")


def test_a_candidate_is_not_promoted_when_the_alias_moved_during_its_gate(server, client, champion, tmp_path):
    """The gate compared with the champion of its start; another promotion moved the alias meanwhile: the
    candidate is registered, not promoted, and the alias stays where the other promotion put it."""
    from vfmaudit.api import _gate
    from vfmaudit.tracking.acceptance import gate_with_registry

    _, reg = champion
    other = client.create_model_version("shared", source="s3://models/encoder/elsewhere").version
    before = alias_version(client, "shared", "champion")

    def gate_while_another_promotes(loaded, baseline):
        result = _gate(loaded, baseline, tmp_path / "g", None, None, None, False, None, None, None)
        client.set_registered_model_alias("shared", "champion", other)  # the other promotion lands now
        return result

    try:
        result = gate_with_registry(gate_while_another_promotes, reg, "models:/shared@champion", mlflow=server,
                                    register="shared", promote_alias="champion")
        assert result.passed and result.mlflow.registered is not None and result.mlflow.promoted is None
        assert f"moved to version {other}" in result.mlflow.not_promoted
        assert alias_version(client, "shared", "champion") == str(other)
    finally:
        client.set_registered_model_alias("shared", "champion", before)  # the module's champion again
