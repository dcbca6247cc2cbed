"""`vfmaudit report compare A [B]` and `vfmaudit report shift RUN...`: results on disk, rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfmaudit.errors import VfmauditError
from vfmaudit.cli.common import JsonOpt, OverwriteFileOpt, err, out, user_errors, write_result_json

app = typer.Typer(help="Pages for people from results on disk: compare two runs; effective robustness over "
                       "several downstream runs; a registered model's history from MLflow.", no_args_is_help=True)


@app.command("compare")
@user_errors
def compare_cmd(
    a: Annotated[Path, typer.Argument(help="Run A: an audit, calibrate or finetune output folder, or its report.json.")],
    b: Annotated[Optional[Path], typer.Argument(
        help="Run B (an audit). Omit it for a calibrate or finetune report, which holds both sides.")] = None,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The HTML page to write.")] = Path("compare.html"),
    json_out: JsonOpt = None,
    overwrite: OverwriteFileOpt = False,
) -> None:
    """Per-family deltas (coloured by each metric's direction), a per-image scatter of the radius in A
    against B, and the images that moved most."""
    from vfmaudit import compare_reports

    comparison = compare_reports(a, b, out_file, overwrite=overwrite)
    worse = [f"{fam} ({m})" for fam, e in comparison.families.items() for m, d in e.items() if d["verdict"] == "worse"]
    out.print(f"wrote {comparison.path}: {len(comparison.families)} families; B worse in "
              f"{len(worse)} family x metric pairs" + (f": {', '.join(worse[:8])}" if worse else ""),
              markup=False, highlight=False, soft_wrap=True)
    n = comparison.images
    if n["shared"] is not None:
        out.print(f"images: {n['a']} in A, {n['b']} in B, {n['shared']} in both", markup=False, highlight=False)
    if comparison.note:
        err.print(f"warning: {comparison.note}", markup=False, highlight=False, soft_wrap=True)
    write_result_json(comparison, json_out)


@app.command("shift")
@user_errors
def shift_cmd(
    runs: Annotated[list[Path], typer.Argument(
        help="Two or more downstream runs (output folders or downstream.json) that measured the same --shift sets, "
             "one per model.")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The HTML page to write.")] = Path("shift.html"),
    json_out: JsonOpt = None,
    overwrite: OverwriteFileOpt = False,
) -> None:
    """Effective robustness: per shift set and task, shift accuracy against clean accuracy across the
    models, a line fitted in logit space, and each model's distance above or below it."""
    from vfmaudit.downstream.effective import effective_robustness
    from vfmaudit.files import check_output_file
    from vfmaudit.report.shift_html import write_shift_html

    check_output_file(out_file, overwrite)
    result = effective_robustness(runs)
    write_shift_html(result, out_file)
    for key, pair in result.pairs.items():
        er = ", ".join(f"{result.runs[p['run']]['model']} {p['effective_robustness']:+.3f}"
                       for p in pair["points"] if p["effective_robustness"] is not None)
        out.print(f"{key}: effective robustness {er or '– (no spread in clean accuracy)'}", markup=False,
                  highlight=False, soft_wrap=True)
    for note in result.notes:
        err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"wrote {out_file}", markup=False, highlight=False)
    write_result_json(result, json_out)


@app.command("history")
@user_errors
def history_cmd(
    source: Annotated[str, typer.Argument(
        help="models:/NAME: every version of a registered model; or an experiment's name: its gate runs.")],
    mlflow: Annotated[Optional[str], typer.Option(
        "--mlflow", metavar="URI", help="The tracking store (default: $MLFLOW_TRACKING_URI, else MLflow's default "
                                        "store, sqlite:///mlflow.db here).")] = None,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The HTML page to write.")] = Path("history.html"),
    json_out: JsonOpt = None,
    overwrite: OverwriteFileOpt = False,
) -> None:
    """Every version's gate in one page: the verdicts, a line per checked metric across the versions, and
    every gate metric in a table (read from the gate.json each version's gate run logged)."""
    from vfmaudit import gate_history
    from vfmaudit.files import check_output_file
    from vfmaudit.report.history_html import write_history_html

    check_output_file(out_file, overwrite)
    history = gate_history(source, mlflow=mlflow)
    if not history.entries:
        raise VfmauditError(f"{history.source} has no {'versions' if source.startswith('models:/') else 'gate runs'} "
                            f"at {history.tracking}: nothing to show", param="source")
    write_history_html(history, out_file)
    for e in history.entries:
        verdict = "no gate.json" if e.passed is None else ("passed" if e.passed else "failed")
        aliases = f" [{', '.join(e.aliases)}]" if e.aliases else ""
        out.print(f"{e.label}{aliases}: {verdict}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"wrote {out_file}", markup=False, highlight=False)
    write_result_json(history, json_out)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="report")
