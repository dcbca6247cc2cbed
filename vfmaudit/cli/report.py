"""`vfmaudit report compare A [B]`: one call of vfmaudit.compare_reports, rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfmaudit.cli.common import JsonOpt, OverwriteFileOpt, err, out, user_errors, write_result_json

app = typer.Typer(help="Pages for people from results on disk: compare two runs.", no_args_is_help=True)


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


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="report")
