"""The lean install (issue 27): `pip install vfmaudit` without the torch extra, in a fresh virtual
environment, audits an exported artefact, checks it against golden data and gates it; a command
that needs torch says what to install, exit 2. In the full install, `import vfmaudit` and every
artefact-only command run without importing torch (checked in fresh interpreters).

The lean venv is made from a copy of the package sources (pip would otherwise write build/ into
the checkout) by pip from the same index and cache the README's install used; how long it took
is printed and kept as a property of the test (in CI it counts against the suite's budget).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_runner import run_cli
from helpers import noisy_photos, rows

ROOT = Path(__file__).parent.parent
TORCH_MODULES = ("torch", "torchvision", "open_clip", "timm")


def _pyproject() -> dict:
    try:
        import tomllib
    except ImportError:
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def artefact(tmp_path_factory, photo_batch):
    """An ONNX export, its golden data, a few photos, the full install's audit of them and a gate policy."""
    from vfmaudit.export import export_onnx

    root = tmp_path_factory.mktemp("artefact")
    onnx = export_onnx("timm:test_vit", root / "tv.onnx", exporter="torchscript", seed=0).path
    res = run_cli("export", "check", onnx, "--save-golden", root / "g.npz", "--json", root / "torch.json", "-q")
    assert res.returncode == 0, res.stderr
    (root / "photos").mkdir()
    noisy_photos(root / "photos", photo_batch, 3)
    res = run_cli("audit", root / "photos", "--model", onnx, "-p", "jpeg,brightness", "--levels", "2",
                  "--out", root / "full_audit", "-q")
    assert res.returncode == 0, res.stderr
    (root / "policy.toml").write_text(
        f'model = "{onnx}"\nimages = ["photos"]\n\n[audit]\nperturbations = "jpeg"\nlevels = 2\n\n'
        f'[parity]\ngolden = "g.npz"\n\n[[check]]\nmetric = "audit.jpeg.divergence_radius.p95"\nmax = 0.9\n\n'
        f'[[check]]\nmetric = "parity.cosine.min"\nmin = 0.9999\n')
    return root, onnx


@pytest.fixture(scope="module")
def lean(tmp_path_factory) -> Path:
    """A fresh venv with `pip install vfmaudit` (no extras): the path of its bin/ folder."""
    root = tmp_path_factory.mktemp("lean")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "vfmaudit", src / "vfmaudit", ignore=shutil.ignore_patterns("__pycache__"))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    bin_dir = root / "venv" / "bin"
    res = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "--no-compile", str(src)], capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    print(f"lean install: {time.perf_counter() - start:.0f} s")  # shown with -s, and in --durations
    return bin_dir


def _lean_run(bin_dir: Path, *args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(bin_dir / "vfmaudit"), *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd)


def test_the_lean_install_has_no_torch_and_audits_checks_and_gates_an_artefact(lean, artefact, tmp_path):
    root, onnx = artefact
    probe = subprocess.run([str(lean / "python"), "-c", "import importlib.util as u, sys; "
                            f"print([m for m in {TORCH_MODULES!r} if u.find_spec(m)])"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr

    res = _lean_run(lean, "audit", root / "photos", "--model", onnx, "-p", "jpeg,brightness", "--levels", "2",
                    "--out", tmp_path / "audit", "-q")
    assert res.returncode == 0, res.stderr
    lean_rows, full_rows = rows(tmp_path / "audit" / "per_image.csv"), rows(root / "full_audit" / "per_image.csv")
    assert len(lean_rows) == len(full_rows) == 3 * 2
    for a, b in zip(lean_rows, full_rows):  # the same numbers as the full install's audit of the same files
        assert a["image"] == b["image"] and a["family"] == b["family"]
        assert float(a["divergence_radius"]) == pytest.approx(float(b["divergence_radius"]), abs=1e-6)

    res = _lean_run(lean, "export", "check", onnx, "--golden", root / "g.npz", "--json", tmp_path / "c.json", "-q")
    assert res.returncode == 0, res.stderr
    lean_check, torch_check = json.loads((tmp_path / "c.json").read_text()), json.loads((root / "torch.json").read_text())
    assert lean_check["passed"] and len(lean_check["per_image"]) == len(torch_check["per_image"]) > 12
    for a, b in zip(lean_check["per_image"], torch_check["per_image"]):  # as against the torch model itself
        assert (a["image"], a["variant"]) == (b["image"], b["variant"])
        assert a["cosine"] == pytest.approx(b["cosine"], abs=1e-6)

    listing = _lean_run(lean, "backends").stdout
    torch_row = next(line for line in listing.splitlines() if line.strip("│ ").startswith("torch "))
    assert "not installed: torch" in torch_row, listing  # the listing says what this install lacks

    res = _lean_run(lean, "gate", root / "policy.toml", "--out", tmp_path / "gate")
    assert res.returncode == 0, res.stdout + res.stderr
    gate = json.loads((tmp_path / "gate" / "gate.json").read_text())
    assert gate["passed"] and len(gate["checks"]) == 2, gate

    # MLflow is an extra too: --mlflow on the lean install is one line naming it, before any work
    res = _lean_run(lean, "gate", root / "policy.toml", "--out", tmp_path / "gate-mlflow", "--mlflow")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "pip install 'vfmaudit[mlflow]'" in lines[0] and not (tmp_path / "gate-mlflow" / "gate.json").exists()


@pytest.mark.parametrize("argv", [["audit", "-q"], ["export", "onnx", "-o", "x.onnx", "-q"]],
                         ids=["default-audit", "export-onnx"])
def test_a_command_that_needs_torch_says_what_to_install_on_the_lean_install(lean, tmp_path, argv):
    res = _lean_run(lean, *argv, cwd=tmp_path)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert f"vfmaudit {' '.join(a for a in argv if not a.startswith('-') and a != 'x.onnx')} needs torch" in lines[0]
    assert "pip install 'vfmaudit[torch]'" in lines[0] and "Traceback" not in res.stderr


# Runs vfmaudit commands one after the other in one fresh interpreter and records, after each, the
# torch modules loaded so far: a module once imported stays, so the first command that imports torch
# is the one named (one interpreter instead of one per command: the suite has a time budget).
_RECORD_TORCH = """
import json, sys
from vfmaudit.cli import main
report = {"import vfmaudit": sorted(m for m in MODULES if m in sys.modules)}
for what, argv in json.loads(open(sys.argv[1]).read()):
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    report[what] = [code, sorted(m for m in MODULES if m in sys.modules)]
open(sys.argv[2], "w").write(json.dumps(report))
"""


def _modules_after_each(tmp_path: Path, commands: dict[str, tuple]) -> tuple[dict, subprocess.CompletedProcess]:
    todo, done = tmp_path / "commands.json", tmp_path / "modules.json"
    todo.write_text(json.dumps([[what, [str(a) for a in argv]] for what, argv in commands.items()]))
    code = _RECORD_TORCH.replace("MODULES", repr(TORCH_MODULES))
    res = subprocess.run([sys.executable, "-c", code, str(todo), str(done)], capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0 and done.is_file(), res.stderr[-3000:]
    return json.loads(done.read_text()), res


def test_import_vfmaudit_and_artefact_only_commands_import_no_torch_in_the_full_install(artefact, tmp_path):
    root, onnx = artefact
    (tmp_path / "missing.engine").write_bytes(b"not an engine")
    (tmp_path / "artefacts.toml").write_text(
        f'model = "{tmp_path / "int8.onnx"}"\nreference = "{onnx}"\nimages = ["{root / "photos"}"]\n\n'
        f'[int8]\nlevels = 2\n\n[agreement]\nperturbations = "jpeg"\nlevels = 2\n\n'
        f'[bench]\nprecision = "int8"\nbatch_size = 1\nduration = 0.2\n\n[[check]]\nmetric = "int8.cosine.all.min"\n'
        f'min = 0.5\n\n[[check]]\nmetric = "agreement.jpeg.top1.min"\nmin = 0.0\n\n[[check]]\n'
        f'metric = "bench.throughput"\nmin = 1\n')
    commands = {  # what each must exit with
        "audit": (("audit", root / "photos", "--model", onnx, "-p", "jpeg", "--levels", "2", "--out",
                   tmp_path / "a", "-q"), 0),
        "audit an engine": (("audit", "--model", tmp_path / "missing.engine", "-q"), 2),  # no TensorRT here
        "export check --golden": (("export", "check", onnx, "--golden", root / "g.npz", "-q"), 0),
        "bench encoder": (("bench", "encoder", "--model", onnx, "--backends", "onnx", "--batch-sizes", "1",
                           "--iterations", "3", "--warmup", "0", "--rounds", "1"), 0),
        "report compare": (("report", "compare", root / "full_audit", tmp_path / "a", "--out", tmp_path / "cmp"), 0),
        "gate": (("gate", root / "policy.toml", "--out", tmp_path / "g"), 0),
        "calibrate": (("calibrate", onnx, "--out", tmp_path / "int8.onnx", "--size", "8", "-q"), 0),
        "gate int8, agreement, bench": (("gate", tmp_path / "artefacts.toml", "--out", tmp_path / "g2"), 0),
        "downstream": (("downstream", "--model", onnx, "--tasks", "knn,linear-probe", "--max-per-class", "4",
                        "--out", tmp_path / "d", "-q"), 0),
        "attack square": (("attack", "--model", onnx, "--method", "square", "--eps", "4", "--steps", "3",
                           "--max-images", "2", "-q"), 0),
        "export convert --no-check": (("export", "convert", onnx, "-o", tmp_path / "bf16.onnx", "--precision", "bf16",
                                       "--no-check"), 0),
        "bench audit": (("bench", "audit", "-m", onnx, "-p", "jpeg", "--levels", "2"), 0),
        "backends": (("backends",), 0),
        # last: the check can fail, a torch command run the same way does import torch
        "export check against torch": (("export", "check", onnx, "-q"), 0),
    }
    report, res = _modules_after_each(tmp_path, {what: argv for what, (argv, _) in commands.items()})
    assert report["import vfmaudit"] == []
    for what, (_, code) in commands.items():
        assert report[what][0] == code, (what, report[what], res.stderr[-3000:])
        if what != "export check against torch":
            assert report[what][1] == [], f"{what} imported {report[what][1]}"
    assert "torch" in report["export check against torch"][1]


def test_the_missing_dependency_table_is_the_torch_and_data_extras():
    """errors.EXTRA_OF_MODULE names the import names of exactly what the torch and data extras install."""
    from importlib import metadata

    from packaging.requirements import Requirement

    from vfmaudit.errors import EXTRA_OF_MODULE

    extras = _pyproject()["project"]["optional-dependencies"]
    imports = {}
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            imports.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    for extra, beside in (("torch", {"torchvision"}), ("data", {"aiohttp"})):  # beside: what they pull in
        dists = {Requirement(r).name.lower().replace("_", "-") for r in extras[extra]}
        declared = set().union(*(imports[d] for d in dists)) & set(EXTRA_OF_MODULE)
        assert {m for m, e in EXTRA_OF_MODULE.items() if e == extra} - beside == declared, extra
    base = {Requirement(r).name.lower() for r in _pyproject()["project"]["dependencies"]}
    assert not base & {"torch", "open-clip-torch", "timm"}, base
    assert not base & {"pyarrow", "fsspec", "s3fs", "gcsfs"}, base  # the lean install stays lean
    assert not base & {"mlflow", "mlflow-skinny", "sqlalchemy", "alembic"}, base
    assert {"vfmaudit[torch]", "vfmaudit[data]", "vfmaudit[mlflow]"} <= set(extras["dev"])  # the README's set-up installs everything


def test_only_a_missing_extra_becomes_a_one_line_install_hint():
    from vfmaudit.errors import missing_dependency

    hint = missing_dependency(ModuleNotFoundError("No module named 'timm.layers'", name="timm.layers"), "vfmaudit x")
    assert str(hint).startswith("vfmaudit x needs torch, open_clip and timm (no module named 'timm' here): "
                                "pip install 'vfmaudit[torch]'") and hint.exit_code == 2
    assert missing_dependency(ModuleNotFoundError("No module named 'numpy'", name="numpy")) is None  # a broken base
    assert missing_dependency(ImportError("cannot import name 'x' from 'torch'", name="torch")) is None  # not missing


def test_onnx_metadata_is_read_from_the_wire_format_as_onnx_reads_it(artefact, tmp_path):
    """The onnx backend reads an artefact's metadata without importing onnx (its import costs about a
    second of start-up here): the same props as onnx.load, non-ONNX files refused in one line."""
    import onnx

    from vfmaudit.artefact.metadata import read_onnx_props
    from vfmaudit.errors import VfmauditError

    root, onnx_path = artefact
    model = onnx.load(str(onnx_path), load_external_data=False)
    assert read_onnx_props(onnx_path) == {p.key: p.value for p in model.metadata_props} != {}
    model.metadata_props.add(key="other.tool", value="ünïcode")  # a foreign key, non-ASCII
    onnx.save(model, str(tmp_path / "more.onnx"))
    assert read_onnx_props(tmp_path / "more.onnx")["other.tool"] == "ünïcode"
    data = onnx_path.read_bytes()
    (tmp_path / "half.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.onnx").write_text("not a model\n")
    (tmp_path / "empty.onnx").write_bytes(b"")
    for bad in ("half.onnx", "text.onnx", "empty.onnx"):
        with pytest.raises(VfmauditError, match="is not a readable ONNX file"):
            read_onnx_props(tmp_path / bad)
    code = ("import sys, numpy as np; from vfmaudit.runtime import create_encoder; "
            f"e = create_encoder('onnx', model={str(onnx_path)!r}); "
            "e.encode(np.zeros((1, 64, 64, 3), np.uint8)); print('onnx' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "False", res.stderr
