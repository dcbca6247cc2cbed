"""Golden data for `export check` on a device (issue 27): the round trip equals the check against
the torch model, it runs with torch made unimportable, and a golden file for another model or a
damaged one is refused in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cli_runner import run_cli


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from vfmaudit.export import export_onnx

    root = tmp_path_factory.mktemp("golden")
    onnx = export_onnx("timm:test_vit", root / "tv.onnx", exporter="torchscript", seed=0).path
    res = run_cli("export", "check", onnx, "--save-golden", root / "g.npz", "--json", root / "torch.json", "-q")
    assert res.returncode == 0, res.stderr
    return root, onnx, json.loads((root / "torch.json").read_text())


def test_the_golden_round_trip_equals_the_check_against_the_torch_model(exported):
    root, onnx, torch_report = exported
    res = run_cli("export", "check", onnx, "--golden", root / "g.npz", "--json", root / "golden.json", "-q")
    assert res.returncode == 0, res.stderr
    golden = json.loads((root / "golden.json").read_text())
    assert torch_report["golden"] == {"saved": str(root / "g.npz")} and golden["golden"] == {"read": str(root / "g.npz")}
    assert len(golden["per_image"]) == len(torch_report["per_image"]) > 12  # clean and every parity edit
    for a, b in zip(torch_report["per_image"], golden["per_image"]):
        assert (a["image"], a["variant"]) == (b["image"], b["variant"])
        for key in ("cosine", "max_abs_diff", "max_rel_diff"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a, b)
    assert golden["passed"] and golden["min_cosine_required"] == torch_report["min_cosine_required"]
    res = run_cli("export", "check", onnx, "--reference", root / "g.npz", "--json", root / "ref.json", "-q")
    assert res.returncode == 0 and json.loads((root / "ref.json").read_text())["per_image"] == golden["per_image"]


def test_the_golden_check_runs_with_torch_unimportable(exported, tmp_path):
    root, onnx, _ = exported
    code = ("import sys; sys.modules['torch'] = None; sys.modules['timm'] = None; sys.modules['open_clip'] = None\n"
            "from vfmaudit.cli import main\n"
            f"main(['export', 'check', {str(onnx)!r}, '--golden', {str(root / 'g.npz')!r}, '-q', '--json', "
            f"{str(tmp_path / 'c.json')!r}])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "c.json").read_text())["passed"]


def test_a_golden_file_for_another_model_or_a_damaged_one_is_refused(exported, tmp_path):
    from vfmaudit.export import export_onnx

    root, onnx, _ = exported
    other = export_onnx("timm:test_resnet", tmp_path / "tr.onnx", exporter="torchscript", seed=0).path
    res = run_cli("export", "check", other, "--golden", root / "g.npz", "-q")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "was made for spec 'timm:test_vit'" in lines[0], res.stderr
    with np.load(root / "g.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["images"] = arrays["images"].copy()
    arrays["images"][0, 0, 0, 0] ^= 1
    np.savez_compressed(tmp_path / "bad.npz", **arrays)
    res = run_cli("export", "check", onnx, "--golden", tmp_path / "bad.npz", "-q")
    assert res.returncode == 2 and "do not match their recorded hashes" in res.stderr
    res = run_cli("export", "check", onnx, "--golden", root / "g.npz", "--model", "timm:test_vit", "-q")
    assert res.returncode == 2 and "pass it without --save-golden, --model or --images" in res.stderr


def test_a_gate_checks_parity_against_golden_data_and_refuses_it_beside_a_reference(exported, tmp_path):
    root, onnx, torch_report = exported
    shutil.copy(root / "g.npz", tmp_path / "g.npz")  # the policy names it relative to its own folder
    policy = tmp_path / "policy.toml"
    checks = '[[check]]\nmetric = "parity.cosine.min"\nmin = 0.9999\n'
    policy.write_text(f'model = "{onnx}"\n\n[parity]\ngolden = "g.npz"\n\n{checks}')
    res = run_cli("gate", policy, "--out", tmp_path / "gate")
    assert res.returncode == 0, res.stdout + res.stderr
    gate = json.loads((tmp_path / "gate" / "gate.json").read_text())
    value = next(c["value"] for c in gate["checks"] if c["metric"] == "parity.cosine.min")
    assert value == pytest.approx(torch_report["summary"]["min_cosine"], abs=1e-6)  # the torch check's number
    policy.write_text(f'model = "{onnx}"\nreference = "timm:test_vit"\n\n[parity]\ngolden = "g.npz"\n\n{checks}')
    res = run_cli("gate", policy, "--out", tmp_path / "gate2")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "parity.golden stands for the reference" in lines[0], res.stderr


def test_a_golden_file_whose_edit_images_no_longer_match_their_hashes_is_refused(exported, tmp_path):
    """The parity edits are made again where the file is checked; one whose images differ from the ones the
    golden file's reference encoded (its images_sha256, the name unchanged) is refused, exit 2."""
    root, onnx, _ = exported
    with np.load(root / "g.npz") as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    edited = meta["variants"][1]
    edited["images_sha256"] = "0" * 64
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(tmp_path / "stale.npz", **arrays)
    res = run_cli("export", "check", onnx, "--golden", tmp_path / "stale.npz", "-q")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert f"the parity edit {edited['name']} gives other images here" in lines[0], lines[0]
