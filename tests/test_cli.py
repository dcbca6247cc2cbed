"""The CLI layer itself: library parameters shown as flags, help derived from the registries, --json."""

import json
import re

import pytest

from cli_runner import run_cli
from vfmaudit import perturb
from vfmaudit.cli.common import cli_message
from vfmaudit.errors import VfmauditError
from vfmaudit.runtime import backends


def test_library_parameters_become_this_commands_flags():
    flags = {"out_dir": "--out", "batch_size": "--batch-size", "images": "IMAGES", "resume": "--resume"}
    e = VfmauditError("x already holds an audit; pass resume to continue it, or out to write elsewhere",
                      param=("resume", "out"))
    assert cli_message(e, flags) == "x already holds an audit; pass --resume to continue it, or --out to write elsewhere"
    # only the named parameter changes, and only as a whole word
    e = VfmauditError("batch_size must be >= 1 (batch_sizes are elsewhere)", param="batch_size")
    assert cli_message(e, flags) == "--batch-size must be >= 1 (batch_sizes are elsewhere)"
    assert cli_message(VfmauditError("model is odd"), flags) == "model is odd"  # no param: untouched


def test_help_lists_what_the_registries_hold():
    audit_help = run_cli("audit", "--help").stdout
    for name, b in backends().items():
        assert name in audit_help
        for suffix in b.suffixes:
            assert suffix in audit_help
    unwrapped = re.sub(r"-\n\s+", "-", audit_help)  # the help wraps long names at their hyphens
    for preset in perturb.presets():
        assert preset in unwrapped
    bench_help = run_cli("bench", "encoder", "--help").stdout
    assert all(name in bench_help for name in backends())


def test_catalogue_commands_list_every_entry():
    listing = run_cli("perturbations").stdout
    assert all(name in listing for name in perturb.families())
    presets = run_cli("presets").stdout
    assert "jpeg@30" in presets and "jpeg:30:90" in presets
    assert "imagenet_c_fog@1,2,3,4,5" in re.sub(r"\s+", "", presets)  # explicit severities are shown


def test_json_is_the_result_objects_to_json(tmp_path):
    res = run_cli("bench", "meb", "--sets", "20", "--n", "4", "--dim", "8", "--json", tmp_path / "m.json")
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["schema"] == "vfmaudit.bench.meb" and data["sets"] == 20 and data["vfmaudit_version"]


def test_bad_option_values_name_the_flag(tmp_path):
    res = run_cli("bench", "meb", "--sets", "0")
    assert res.returncode == 2 and "error: --sets, --n and --dim must be >= 1" in res.stderr


@pytest.mark.parametrize("argv,where", [(["bench", "audit", "--nope"], "vfmaudit bench audit --help"),
                                        (["audit", "--nope"], "vfmaudit audit --help"),
                                        (["--nope"], "vfmaudit --help")])
def test_a_usage_error_points_to_the_help_of_the_command_it_was_in(argv, where):
    res = run_cli(*argv)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and f"(see {where})" in res.stderr, res.stderr
