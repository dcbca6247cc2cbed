"""Contracts every registry entry keeps, checked by iterating the registries (a new entry is covered
when it registers), and the package root's promises: every lazy name resolves, and `import
vfmaudit` loads neither numpy nor torch."""

import subprocess
import sys

import numpy as np
import pytest

import vfmaudit
from vfmaudit.engines import engines
from vfmaudit.metrics import headline_metrics, metrics, per_variant_metric, primary_metric
from vfmaudit.runtime import backends


@pytest.mark.parametrize("name", sorted(vfmaudit._LAZY))
def test_every_lazy_public_name_resolves_to_its_module(name):
    value = getattr(vfmaudit, name)
    module = vfmaudit._LAZY[name]
    assert getattr(sys.modules[module], name) is value
    assert name in dir(vfmaudit) and name in vfmaudit.__all__


@pytest.mark.parametrize("name", vfmaudit._SUBMODULES)
def test_every_lazy_subpackage_resolves(name):
    assert getattr(vfmaudit, name).__name__ == f"vfmaudit.{name}"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        vfmaudit.nothing_here  # noqa: B018


def test_import_vfmaudit_loads_neither_numpy_nor_torch():
    code = "import sys, vfmaudit; print(sorted(m for m in ('numpy', 'torch', 'onnx') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("name", list(metrics()))
def test_every_metric_computes_per_image_values_in_its_range(name):
    m = metrics()[name]
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(5, 12))
    clean /= np.linalg.norm(clean, axis=1, keepdims=True)
    variants = clean[:, None, :] + 0.3 * rng.normal(size=(5, 4, 12))
    variants /= np.linalg.norm(variants, axis=2, keepdims=True)
    per_image, per_level = m.compute(clean, variants)
    assert per_image.shape == (5,)
    lo, hi = m.range
    assert np.all(per_image >= lo - 1e-9) and np.all(per_image <= hi + 1e-9)
    if m.per_level is not None:
        assert per_level.shape == (5, 4)
    # unchanged variants are the best value any drift can reach: nothing is better than no drift
    still, _ = m.compute(clean, np.repeat(clean[:, None, :], 4, axis=1))
    assert all(m.worse_by(new, best) >= -1e-9 for new, best in zip(per_image, still))
    assert m.label and m.short and m.description


def test_headline_metrics_lead_the_reports():
    ranked = headline_metrics()
    assert ranked and [m.headline for m in ranked] == sorted(m.headline for m in ranked)
    assert primary_metric() is ranked[0] and primary_metric().name == "divergence_radius"
    assert per_variant_metric().per_level is not None and per_variant_metric().name == "cosine"


def test_every_engine_runs_every_workload_that_has_an_engine_option():
    from vfmaudit.attack.engines import ATTACK_ENGINES
    from vfmaudit.audit import AUDIT_ENGINES
    from vfmaudit.downstream.runner import VARIANT_ENGINES

    assert list(AUDIT_ENGINES) == list(engines()) == list(VARIANT_ENGINES) == list(ATTACK_ENGINES)
    for engine in engines().values():
        assert engine.description


@pytest.mark.parametrize("name", list(backends()))
def test_every_backend_declares_what_it_takes_and_runs(name):
    b = backends()[name]
    assert {"model", "device", "batch_size"} <= set(b.options)
    assert all(s == s.lower() and s.startswith(".") for s in b.suffixes)
    assert b.precisions and b.description
    if b.suffixes:  # an artefact carries its metadata: the backend reads it without running anything
        assert b.read_info is not None and not b.takes("seed")
    else:  # a model spec: the backend reads the model's preprocessing itself
        assert b.read_preprocess is not None


def test_help_of_every_command_imports_no_torch():
    """`vfmaudit --help` and every command's --help in a fresh interpreter: torch stays unimported."""
    code = """
import contextlib, io, sys
from vfmaudit.cli import app, main
import typer
commands = [[]]
for name, group in typer.main.get_command(app).commands.items():
    subs = getattr(group, "commands", None)
    commands += [[name, sub] for sub in subs] if subs else [[name]]
for argv in commands:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main([*argv, "--help"])
        except SystemExit as e:
            assert e.code in (0, None), (argv, e.code)
print(len(commands), "torch" in sys.modules)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    n, torch_loaded = res.stdout.split()
    assert int(n) >= 20 and torch_loaded == "False"
