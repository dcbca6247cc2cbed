"""The `vfmaudit` command line: one module per command group, each command one API call.

`main(argv)` runs it in-process (the tests use that); the console script calls `main()`.
"""

from __future__ import annotations

import os
import sys

import typer

from vfmaudit.cli import attack, audit, bench, calibrate, catalogue, downstream, export, finetune, gate, report
from vfmaudit.cli.common import err
from vfmaudit.errors import missing_dependency, one_line

# the exit-code contract CI reads (README, "Exit codes"): a distinct code for our own failures, so a
# crash is never read as a failed check (1) or as unusable input (2)
SUCCESS, CHECK_FAILED, UNUSABLE_INPUT, INTERNAL_ERROR = 0, 1, 2, 3

app = typer.Typer(
    help="Audit and deploy vision encoders: how far embeddings drift under everyday image edits "
         "(audit), in the worst case within a budget (attack), and what that costs downstream (downstream), whether an exported ONNX/TensorRT artefact is still the same model (export), "
         "INT8 calibration audited against fp32 (calibrate), how fast each runs (bench), and whether it passes "
         "an acceptance policy in CI (gate); robust fine-tuning to ship again (finetune).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
)
for _group in (audit, attack, downstream, finetune, export, calibrate, bench, gate, report, catalogue):
    _group.register(app)


# what a command that needed torch can do without it (the lean install)
WITHOUT_TORCH = {
    "vfmaudit audit": "audit an exported artefact: --model model.onnx (or model.engine)",
    "vfmaudit export check": "check against golden data made where torch is (export check --save-golden FILE): "
                             "--golden FILE",
    "vfmaudit export convert": "convert with --no-check, then check the new file against golden data: "
                               "export check FILE --golden golden.npz",
    "vfmaudit bench encoder": "benchmark an exported artefact: --model model.onnx --backends onnx",
    "vfmaudit attack": "attack an exported artefact black-box: --model model.onnx --method square",
    "vfmaudit downstream": "evaluate an exported artefact with --tasks linear-probe,knn,retrieval",
}


def _command_path(group, argv: list[str]) -> str:
    """'vfmaudit export onnx' from the arguments: the words that name a command, from the top."""
    words = ["vfmaudit"]
    for arg in argv:
        sub = getattr(group, "commands", {}).get(arg)
        if sub is None:
            break
        words.append(arg)
        group = sub
    return " ".join(words)


# what can follow --mlflow as its URI; anything else (another option, the policy file) means --mlflow alone
_URI_STARTS = ("file:", "sqlite:", "postgresql", "mysql", "mssql", "databricks", "uc:", "http:", "https:")


def _bare_mlflow(args: list[str]) -> list[str]:
    """`--mlflow` without a URI -> `--mlflow=` (the default store): click has no optional option values."""
    rewritten = []
    for i, arg in enumerate(args):
        if arg == "--":
            return rewritten + args[i:]
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg == "--mlflow" and not (following.startswith(_URI_STARTS) or "://" in following):
            arg = "--mlflow="
        rewritten.append(arg)
    return rewritten


def main(argv: list[str] | None = None) -> None:
    # typer vendors its own click, so its exceptions are recognised by interface, not class
    command = typer.main.get_command(app)
    argv = _bare_mlflow(sys.argv[1:] if argv is None else list(argv))
    try:
        code = command.main(args=argv, prog_name="vfmaudit", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - last resort: one line, never a traceback
        path = _command_path(command, argv)
        missing = missing_dependency(e, path, WITHOUT_TORCH.get(path, ""))
        if missing is not None:  # torch & co. on the lean install: what to install, exit 2
            err.print(f"error: {missing}", markup=False, highlight=False, soft_wrap=True)
            sys.exit(missing.exit_code)
        name = type(e).__name__
        if name == "NoArgsIsHelpError":
            e.show()
            sys.exit(2)
        if name == "Abort":
            err.print("interrupted", markup=False)
            sys.exit(130)
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click's usage errors
            ctx, names = getattr(e, "ctx", None), []
            while ctx is not None and ctx.parent is not None:  # the whole path: vfmaudit bench audit
                names.append(ctx.info_name)
                ctx = ctx.parent
            where = " ".join(["vfmaudit", *reversed(names)])
            err.print(f"error: {e.format_message()} (see {where} --help)", markup=False, highlight=False,
                      soft_wrap=True)
            sys.exit(e.exit_code)
        if os.environ.get("VFMAUDIT_DEBUG"):
            import traceback

            traceback.print_exc()
        else:
            err.print(f"internal error: {one_line(e, 2000)} -- a bug in vfmaudit: please report it with the output of "
                      f"the same command run with VFMAUDIT_DEBUG=1 (which shows the traceback)",
                      markup=False, highlight=False, soft_wrap=True)
        sys.exit(INTERNAL_ERROR)


__all__ = ["app", "main", "SUCCESS", "CHECK_FAILED", "UNUSABLE_INPUT", "INTERNAL_ERROR"]
