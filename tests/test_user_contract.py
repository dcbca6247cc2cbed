"""What a new user and a CI pipeline meet: the exit-code contract, bad folders, outputs that are
never silently replaced, no success on nothing, Markdown that no name can break, and JUnit that a
strict schema and CI dashboards accept."""

import json
import os
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import toy_plugin
from cli_runner import run_cli
from vfmaudit.cli import CHECK_FAILED, INTERNAL_ERROR, UNUSABLE_INPUT

XSD = Path(__file__).parent / "data" / "junit-10.xsd"


def one_line(res, code=UNUSABLE_INPUT) -> str:
    """The one error line (after at most the stage lines a run prints before it fails)."""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln]
    assert res.returncode == code and len(errors) == 1 and lines[-1] == errors[0], (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    return errors[0]


@pytest.fixture
def toy(tmp_path):
    """A tiny real encoder (a seeded projection) and family, registered as a plugin module would."""
    toy_plugin.register_all()
    yield toy_plugin.write_inputs(tmp_path)
    toy_plugin.unregister_all()


# -- exit codes --------------------------------------------------------------------------------------
class _Crashes:
    backend = "crashes"

    def __init__(self):
        from vfmaudit.models.preprocess import PreprocessSpec

        self.preprocess, self.embed_dim = PreprocessSpec(size=(8, 8), resize=8), 4

    def encode(self, images):
        return np.zeros((len(images), 4), np.float32) / 0  # noqa: B018 - an honest bug: numpy, then a raise
        raise AssertionError  # pragma: no cover

    def describe(self):
        return {"backend": "crashes"}


@pytest.fixture
def crashing_backend():
    from vfmaudit.runtime import register_backend, unregister_backend

    @register_backend("crashes", suffixes=(".crash",), description="raises inside encode (test)")
    def make(model: str = "", device: str = "cpu", batch_size: int = 32):  # noqa: ARG001
        enc = _Crashes()
        enc.encode = lambda images: {}["a bug"]  # KeyError: what a real defect looks like
        return enc

    yield
    unregister_backend("crashes")


def test_an_internal_error_is_exit_3_with_one_line_asking_for_a_report(crashing_backend, tmp_path, monkeypatch):
    model = tmp_path / "m.crash"
    model.write_text("")
    res = run_cli("audit", "-m", model, "-p", "jpeg", "--levels", "2", "--out", tmp_path / "o")
    assert res.returncode == INTERNAL_ERROR
    line = res.stderr.strip().splitlines()[-1]  # after the stage line the run had printed
    assert sum("error" in ln for ln in res.stderr.splitlines()) == 1
    assert line.startswith("internal error: KeyError") and "report it" in line and "VFMAUDIT_DEBUG=1" in line
    assert "Traceback" not in res.stderr and INTERNAL_ERROR not in (0, CHECK_FAILED, UNUSABLE_INPUT)
    monkeypatch.setenv("VFMAUDIT_DEBUG", "1")
    debug = run_cli("audit", "-m", model, "-p", "jpeg", "--levels", "2", "--out", tmp_path / "o2")
    assert debug.returncode == INTERNAL_ERROR and "Traceback" in debug.stderr and "KeyError" in debug.stderr


# -- bad folders ---------------------------------------------------------------------------------------
def _folder_with_links(root: Path, good: int = 2) -> Path:
    d = root / "mixed"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(good):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(d / f"ok{i}.png")
    os.symlink("loop", d / "loop")  # a link to itself
    os.symlink("missing.png", d / "dangling.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_symlink_loops_and_broken_links_are_skipped_and_listed(toy, tmp_path):
    model, _ = toy
    folder = _folder_with_links(tmp_path)
    res = run_cli("audit", folder, "-m", model, "-p", "invert", "--levels", "2", "--out", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    reasons = {Path(s["input"]).name: s["reason"] for s in report["skipped"]}
    assert report["images"]["audited"] == 2
    assert "symbolic link loop" in reasons["loop"] and "broken symbolic link" in reasons["dangling.png"]
    assert "notes.txt" in reasons
    assert "loop" in res.stdout and "3 input(s) skipped" in res.stdout  # the console lists them


def test_a_run_of_no_readable_image_is_exit_2_naming_what_was_skipped(toy, tmp_path):
    model, _ = toy
    folder = _folder_with_links(tmp_path, good=0)
    res = run_cli("audit", folder, "-m", model, "-p", "invert", "--levels", "2", "--out", tmp_path / "o")
    line = one_line(res)
    assert "none of the 3 input(s) could be audited" in line and "symbolic link loop" in line
    assert (tmp_path / "o" / "report.json").is_file()  # the work (the list of skipped inputs) is kept


def test_a_gate_over_no_readable_image_is_exit_2(toy, tmp_path):
    folder = _folder_with_links(tmp_path, good=0)
    policy = _policy(tmp_path, toy, [(None, "audit.invert.cosine.mean", "min", 0.5)], images=folder)
    line = one_line(run_cli("gate", policy, "--out", tmp_path / "g"))
    assert "none of the 3 input(s) could be audited" in line


def test_downstream_over_no_readable_image_is_exit_2(tmp_path):
    for cls in ("cats", "dogs"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(4):
            (tmp_path / "data" / cls / f"{i}.jpg").write_bytes(b"not a jpeg")
    line = one_line(run_cli("downstream", tmp_path / "data", "-m", "timm:resnet18", "--tasks", "knn", "-p", "jpeg",
                            "--levels", "1", "--out", tmp_path / "o"))
    assert "could be read; 8 skipped, e.g. " in line and "0.jpg" in line


def test_levels_1_is_the_strongest_non_identity_level_and_an_identity_only_plan_is_refused(toy, tmp_path):
    model, images = toy
    res = run_cli("audit", images, "-m", model, "-p", "jpeg,brightness", "--levels", "1", "--out", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    fams = json.loads((tmp_path / "o" / "report.json").read_text())["families"]
    assert fams["jpeg"]["levels"] == [10.0]  # quality 10, not 100 (which leaves the image unchanged)
    assert fams["brightness"]["levels"] == [fams["brightness"]["domain"][1]]  # equally far: the top end
    assert fams["jpeg"]["divergence_radius"]["mean"] > 0
    line = one_line(run_cli("audit", images, "-m", model, "-p", "brightness:1:1", "--out", tmp_path / "x"))
    assert "identity" in line and "nothing to measure" in line and not (tmp_path / "x").exists()
    assert "1: the strongest level" in " ".join(run_cli("audit", "--help").stdout.split())


# -- outputs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["export", "onnx", "-m", "timm:resnet18"],
    ["export", "convert", "{src}"],
    ["export", "tensorrt", "{src}"],
    ["calibrate", "{src}"],
    ["report", "compare", "{audit}"],
])
def test_every_out_file_is_refused_when_it_exists_or_is_a_folder(command, tmp_path):
    src, audit = tmp_path / "src.onnx", tmp_path / "audit"
    src.write_bytes(b"")
    audit.mkdir()
    args = [a.format(src=src, audit=audit) for a in command]
    existing = tmp_path / "out.onnx"  # named like the flag: a message must not rewrite the path
    existing.write_text("keep me")
    line = one_line(run_cli(*args, "--out", existing))
    assert "exists" in line and "--overwrite" in line and existing.read_text() == "keep me"
    folder = tmp_path / "a-folder"
    folder.mkdir()
    line = one_line(run_cli(*args, "--out", folder))
    assert "is a folder" in line


def test_report_compare_overwrites_only_when_asked(toy, tmp_path):
    model, images = toy
    for name in ("a", "b"):
        assert run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "2", "--out",
                       tmp_path / name).returncode == 0
    page = tmp_path / "c.html"
    assert run_cli("report", "compare", tmp_path / "a", tmp_path / "b", "--out", page).returncode == 0
    one_line(run_cli("report", "compare", tmp_path / "a", tmp_path / "b", "--out", page))
    again = run_cli("report", "compare", tmp_path / "a", tmp_path / "b", "--out", page, "--overwrite")
    assert again.returncode == 0, again.stderr


def test_gate_out_that_is_a_file_is_one_line(toy, tmp_path):
    f = tmp_path / "gate-out"
    f.write_text("")
    policy = _policy(tmp_path, toy, [("r", "audit.invert.divergence_radius.mean", "max", 1.0)])
    assert "is a file" in one_line(run_cli("gate", policy, "--out", f))


# -- gate outputs: Markdown and JUnit ---------------------------------------------------------------------
def _policy(tmp_path: Path, toy, checks: list[tuple[str | None, str, str, float]], images=None) -> Path:
    model, imgs = toy
    text = f'model = "{model}"\nimages = ["{images or imgs}"]\n\n[audit]\nperturbations = "invert"\nlevels = 2\n'
    for name, metric, kind, value in checks:
        text += "\n[[check]]\n" + (f"name = {json.dumps(name)}\n" if name else "") + \
            f'metric = "{metric}"\n{kind} = {value}\n'
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


HOSTILE = "x | <b>y</b> `tick` *bold* [link](http://e.x)"


def test_markdown_cells_cannot_be_broken_by_names(toy, tmp_path):
    from markdown_it import MarkdownIt

    policy = _policy(tmp_path, toy, [(HOSTILE, "audit.invert.divergence_radius.mean", "max", 1.0),
                                     (None, "audit.invert.divergence_radius.worst", "max", 1e-9)])
    res = run_cli("gate", policy, "--out", tmp_path / "g")
    assert res.returncode == CHECK_FAILED, res.stderr  # the second check cannot pass
    html = MarkdownIt("commonmark").enable("table").render((tmp_path / "g" / "summary.md").read_text())
    rows = ET.fromstring(f"<r>{html[html.index('<table>'):html.index('</table>') + 8]}</r>").iter("tr")
    widths = [len(list(tr)) for tr in rows]
    assert widths == [6, 6, 6]  # a header and two checks, none with an extra column
    assert "<b>" not in html and "<em>" not in html and "<a " not in html and "<code>tick" not in html
    assert "&lt;b&gt;y&lt;/b&gt;" in html and "`tick`" in html


def test_junit_is_schema_valid_names_each_check_and_times_its_measurement(toy, tmp_path):
    import xmlschema

    policy = _policy(tmp_path, toy, [(None, "audit.invert.cosine.mean", "min", -1.0),
                                     (None, "audit.invert.cosine.mean", "max", 1.0),
                                     ("radius bound", "audit.invert.divergence_radius.mean", "max", 1e-9)])
    res = run_cli("gate", policy, "--out", tmp_path / "g", "--dry-run")
    assert res.returncode == 0 and "radius bound" in res.stdout
    res = run_cli("gate", policy, "--out", tmp_path / "g")
    assert res.returncode == CHECK_FAILED and "radius bound" in res.stdout
    path = tmp_path / "g" / "junit.xml"
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    cases = ET.parse(path).getroot().findall(".//testcase")
    names = [c.get("name") for c in cases]
    assert len(set(names)) == 3 and names[2] == "radius bound"
    assert names[0].startswith("audit.invert.cosine.mean") and names[0] != names[1]  # two checks, one metric
    assert {c.get("classname") for c in cases} == {"audit"}
    gate = json.loads((tmp_path / "g" / "gate.json").read_text())
    assert gate["durations_s"]["audit"] > 0
    assert sum(float(c.get("time")) for c in cases) == pytest.approx(gate["durations_s"]["audit"], abs=3e-3)
    assert [c.find("failure") is not None for c in cases] == [False, False, True]


def test_a_gate_that_cannot_run_still_writes_a_junit_file_with_the_reason(toy, tmp_path):
    import xmlschema

    policy = _policy(tmp_path, toy, [(None, "audit.invert.cosine.mean", "min", 0.5)],
                     images=tmp_path / "no-such-folder")
    junit = tmp_path / "ci" / "junit.xml"
    line = one_line(run_cli("gate", policy, "--out", tmp_path / "g", "--junit", junit))
    assert "no-such-folder" in line
    for path in (junit, tmp_path / "g" / "junit.xml"):
        xmlschema.XMLSchema(str(XSD)).validate(str(path))
        root = ET.parse(path).getroot()
        [case] = root.findall(".//testcase")
        assert root.get("errors") == "1" and case.find("failure").get("type") == "error"
        assert "no-such-folder" in case.find("failure").get("message")


def test_compare_of_audits_with_no_image_in_common_says_it_compares_summaries_only(toy, tmp_path):
    model, images = toy
    other = tmp_path / "other"
    other.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(other / f"x{i}.png")
    for name, folder in (("a", images), ("b", other)):
        assert run_cli("audit", folder, "-m", model, "-p", "invert", "--levels", "2", "--out",
                       tmp_path / name).returncode == 0
    res = run_cli("report", "compare", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "c.html",
                  "--json", tmp_path / "c.json")
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["images"] == {"a": 3, "b": 2, "shared": 0} and "share no image" in data["note"]
    assert "share no image" in res.stderr and "3 in A, 2 in B, 0 in both" in res.stdout
    assert "share no image" in (tmp_path / "c.html").read_text() and data["moved_most"] == []


def test_bench_encoder_with_no_configuration_that_runs_is_exit_2(tmp_path):
    res = run_cli("bench", "encoder", "-m", "timm:resnet18", "--backends", "torch", "--precision", "fp16",
                  "--batch-sizes", "1", "--iterations", "1", "--json", tmp_path / "b.json")
    line = one_line(res)
    assert "no configuration could run here" in line
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]  # the rows, with their reasons, are kept
    assert [r["status"] for r in rows] == ["skipped"] and "cuda" in rows[0]["reason"]


def test_resume_with_other_options_names_the_option_that_differs(toy, tmp_path):
    model, images = toy
    assert run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "2", "--out", tmp_path / "o").returncode == 0
    line = one_line(run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "3", "--out", tmp_path / "o",
                            "--resume"))
    assert "cannot resume" in line and "perturbations or levels" in line and "--overwrite" in line


def test_long_commands_say_what_they_do_one_line_per_stage_off_a_terminal(toy, tmp_path, monkeypatch):
    """In a pipe (the test's stderr is no terminal) every stage is one plain line; -q silences them."""
    from vfmaudit.cli.common import Stages

    monkeypatch.setattr(Stages, "DELAY_S", 0.0)  # the toy gate is faster than a stage's usual second
    policy = _policy(tmp_path, toy, [(None, "audit.invert.cosine.mean", "min", -1.0)])
    res = run_cli("gate", policy, "--out", tmp_path / "g")
    assert res.returncode == 0, res.stderr
    assert "measuring audit (1 of 1)" in res.stderr and "\r" not in res.stderr and "\x1b[" not in res.stderr
    quiet = run_cli("gate", policy, "--out", tmp_path / "g2", "-q")
    assert quiet.returncode == 0 and "measuring" not in quiet.stderr


def test_stages_on_a_terminal_update_one_spinner_line(monkeypatch):
    """On a terminal the same calls drive rich's status line (updated in place), not printed lines."""
    import io

    from rich.console import Console

    from vfmaudit.cli import common

    buf = io.StringIO()
    monkeypatch.setattr(common, "err", Console(file=buf, force_terminal=True, width=100))
    with common.Stages() as stage:
        assert stage.status is not None
        stage("quantizing")
        stage("sensitivity of the quantizable nodes", 3, 10)
    text = buf.getvalue()
    assert "\x1b[" in text  # drawn with terminal control codes, not one line per call


def test_a_stage_that_ends_at_once_prints_nothing_off_a_terminal(capsys):
    """A command that fails before its first second stays one error line: its stage line never shows."""
    import time

    from vfmaudit.cli.common import Stages

    with Stages() as stage:
        stage("checking a file that turns out to be missing")
    time.sleep(Stages.DELAY_S + 0.3)
    assert "checking" not in capsys.readouterr().err


# -- warnings that a run measures less than it seems ------------------------------------------------
def test_more_levels_than_sane_warn_before_the_work_and_in_the_report(toy, tmp_path):
    model, images = toy
    res = run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "40", "--out", tmp_path / "o", "-q")
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "invert: 40 levels (more than 32" in warnings[0]  # said once, not twice
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert any("invert: 40 levels" in w for w in report["warnings"])
    assert "Warning: invert: 40 levels" in (tmp_path / "o" / "report.html").read_text()
    quiet = run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "32", "--out", tmp_path / "o2", "-q")
    assert quiet.returncode == 0 and "warning" not in quiet.stderr


def test_more_levels_than_a_discrete_family_has_warn_that_they_repeat():
    from vfmaudit.perturb.plan import parse_perturbations, plan_warnings

    assert plan_warnings(parse_perturbations("jpeg", 32)) == []
    assert "distinct" not in plan_warnings(parse_perturbations("jpeg", 91))[0]  # 10, 11, ..., 100: too many only
    (warning,) = plan_warnings(parse_perturbations("jpeg:50:100", 60))
    assert "only 51 distinct values" in warning and "--levels 51" in warning


def test_inputs_far_below_the_model_size_are_audited_and_named(toy, tmp_path):
    model, images = toy  # the toy model takes 16x16; its images are 24x20
    Image.fromarray(np.full((3, 2, 3), 90, np.uint8)).save(images / "tiny.png")
    res = run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "2", "--out", tmp_path / "o", "-q")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["images"]["audited"] == 4  # audited all the same
    assert report["small_inputs"] == [{"input": str(images / "tiny.png"), "size": [3, 2]}]
    (warning,) = [w for w in report["warnings"] if "input(s)" in w]
    assert warning.startswith("1 input(s)") and "2x3, upscaled 8x" in warning
    assert "warning: 1 input(s) have a shorter side under 1/4" in res.stderr
    # a resumed run keeps the note; the small-input list is a file of the run folder
    again = run_cli("audit", images, "-m", model, "-p", "invert", "--levels", "2", "--out", tmp_path / "o", "-q",
                    "--resume")
    assert again.returncode == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["small_inputs"] == report["small_inputs"]
