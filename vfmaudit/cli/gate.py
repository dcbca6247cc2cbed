"""`vfmaudit gate POLICY.toml`: one call of vfmaudit.run_gate, rendered; exit 0 pass, 1 fail, 2 cannot run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfmaudit.cli.common import QuietOpt, Stages, out, user_errors


@user_errors
def gate(
    policy: Annotated[Path, typer.Argument(help="The policy file (TOML): model, measurements, [[check]]s.")],
    baseline: Annotated[Optional[Path], typer.Option(
        help="An earlier gate's --out folder or gate.json: max_drop / max_relative_drop compare with it.")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="Also write the JUnit XML here (one testcase per check).")] = None,
    markdown: Annotated[Optional[Path], typer.Option(
        help="Also write the Markdown summary here (appended if it exists, e.g. $GITHUB_STEP_SUMMARY).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write gate.json here.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for gate.json, junit.xml, summary.md and every measurement's report "
                            "(default vfmaudit-gate).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate the policy and print the plan; run nothing.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Check a model against an acceptance policy: exit 0 when every check passes, 1 when any fails,
    2 when the gate cannot run (bad policy, missing model or images, unknown metric).

    Metrics are dotted paths such as audit.jpeg.divergence_radius.p95, parity.cosine.min,
    int8.agreement.overlap@5, bench.latency_ms.p95 (README, 'Acceptance gates').
    """
    from vfmaudit import run_gate
    from vfmaudit.report.console import print_gate, print_gate_plan

    if dry_run:
        result = run_gate(policy, baseline=baseline, dry_run=True)
        print_gate_plan(result, out)
        return
    with Stages(quiet) as progress:
        result = run_gate(policy, baseline=baseline, out=out_dir, junit=junit, markdown=markdown,
                          json_path=json_out, progress=progress)
    print_gate(result, out)
    if not result.passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(gate)
