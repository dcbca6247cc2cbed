"""Plugins from outside the repository: a real throwaway distribution, built and installed with pip
into a folder on PYTHONPATH, adds a family, a metric and a backend through the `vfmaudit.plugins`
entry-point group. Every command sees them: an audit and its reports, the gate, the catalogue
commands. A second, broken plugin of the same distribution costs one line and nothing else."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import toy_plugin

PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "vfmaudit-toy-plugin"
version = "0.1.0"

[project.entry-points."vfmaudit.plugins"]
toy = "vfmaudit_toy_plugin"
broken = "vfmaudit_toy_broken"

[tool.setuptools]
py-modules = ["vfmaudit_toy_plugin", "vfmaudit_toy_impl", "vfmaudit_toy_broken"]
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The distribution built from source and installed by pip into a folder (the test's site)."""
    src = tmp_path_factory.mktemp("plugin-src")
    (src / "pyproject.toml").write_text(PYPROJECT)
    # the plugin's code is tests/toy_plugin.py itself; its entry-point module registers it on import
    (src / "vfmaudit_toy_impl.py").write_text((Path(__file__).parent / "toy_plugin.py").read_text())
    (src / "vfmaudit_toy_plugin.py").write_text("import vfmaudit_toy_impl\n\nvfmaudit_toy_impl.register_all()\n")
    (src / "vfmaudit_toy_broken.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    site = tmp_path_factory.mktemp("plugin-site")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    assert any(p.name.startswith("vfmaudit_toy_plugin-0.1.0") and p.suffix == ".dist-info" for p in site.iterdir())
    work = tmp_path_factory.mktemp("plugin-work")
    toy_plugin.write_inputs(work)
    return site, work


def vfm(installed, *args, plugins=True):
    site, work = installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    if not plugins:
        env["VFMAUDIT_NO_PLUGINS"] = "1"
    return subprocess.run([sys.executable, "-m", "vfmaudit", *map(str, args)], capture_output=True, text=True,
                          cwd=work, env=env, timeout=600)


def _broken_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "plugin 'broken'" in line]


def test_a_plugin_reaches_the_audit_and_its_reports(installed):
    site, work = installed
    res = vfm(installed, "audit", "imgs", "-m", "m.toyproj", "-p", "invert,jpeg", "--levels", "3", "--out", "out")
    assert res.returncode == 0, res.stderr
    # the broken plugin: one line naming it and its module, and the audit ran all the same
    [line] = _broken_line(res.stderr)
    assert "vfmaudit_toy_broken" in line and "broken on purpose" in line
    assert "Traceback" not in res.stderr
    assert "worst_cosine mean" in res.stdout and "invert" in res.stdout  # the console table
    report = json.loads((work / "out" / "report.json").read_text())
    assert list(report["families"]) == ["invert", "jpeg"]
    assert report["backend"]["backend"] == "toyproj"  # chosen by the plugin's file suffix
    inv = report["families"]["invert"]
    assert inv["worst_cosine"]["n"] == 3 and inv["worst_cosine"]["worst"] <= inv["cosine"]["worst"] + 1e-9
    header = (work / "out" / "per_image.csv").read_text().splitlines()[0].split(",")
    assert "worst_cosine" in header
    page = (work / "out" / "report.html").read_text()
    assert "worst_cosine" in page and "invert" in page


def test_a_plugin_is_in_every_catalogue_command(installed):
    listings = {cmd: vfm(installed, cmd) for cmd in ("perturbations", "metrics", "backends", "plugins")}
    for cmd, res in listings.items():
        assert res.returncode == 0, (cmd, res.stderr)
    assert "invert" in listings["perturbations"].stdout
    assert "worst_cosine" in listings["metrics"].stdout
    assert "toyproj" in listings["backends"].stdout and ".toyproj" in listings["backends"].stdout
    plugins = listings["plugins"].stdout
    assert "vfmaudit_toy_plugin" in plugins and "loaded" in plugins and "failed" in plugins
    # without plugins the tool is the built-in one
    bare = vfm(installed, "perturbations", plugins=False)
    assert bare.returncode == 0 and "invert" not in bare.stdout and not _broken_line(bare.stderr)


def test_a_plugin_reaches_the_gate(installed):
    site, work = installed
    (work / "policy.toml").write_text(textwrap.dedent('''
        model = "m.toyproj"
        images = ["imgs"]

        [audit]
        perturbations = "invert"
        levels = 3

        [[check]]
        name = "the toy metric is measured"
        metric = "audit.invert.worst_cosine.mean"
        min = -1.0

        [[check]]
        metric = "audit.invert.divergence_radius.worst"
        max = 0.0001
    '''))
    plan = vfm(installed, "gate", "policy.toml", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "audit.invert.worst_cosine.mean" in plan.stdout
    res = vfm(installed, "gate", "policy.toml", "--out", "gate")
    assert res.returncode == 1, res.stderr  # the second check fails: inverting moves the embedding
    gate = json.loads((work / "gate" / "gate.json").read_text())
    by_metric = {c["metric"]: c for c in gate["checks"]}
    toy = by_metric["audit.invert.worst_cosine.mean"]
    assert toy["passed"] and -1 <= toy["value"] <= 1
    assert not by_metric["audit.invert.divergence_radius.worst"]["passed"]
