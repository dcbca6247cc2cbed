"""`vfmaudit gate POLICY.toml`: one call of vfmaudit.run_gate, rendered; exit 0 pass, 1 fail, 2 cannot run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfmaudit.cli.common import MlflowOpt, QuietOpt, Stages, out, user_errors


@user_errors
def gate(
    policy: Annotated[Path, typer.Argument(help="The policy file (TOML): model, measurements, [[check]]s.")],
    baseline: Annotated[Optional[str], typer.Option(
        help="What max_drop / max_relative_drop compare with: an earlier gate's --out folder or gate.json, or a "
             "registered version, models:/NAME@ALIAS (e.g. models:/encoder@champion) or models:/NAME/VERSION, "
             "whose gate.json is read from MLflow.")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="Also write the JUnit XML here (one testcase per check).")] = None,
    markdown: Annotated[Optional[Path], typer.Option(
        help="Also write the Markdown summary here (appended if it exists, e.g. $GITHUB_STEP_SUMMARY).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write gate.json here.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for gate.json, junit.xml, summary.md and every measurement's report "
                            "(default vfmaudit-gate).")] = None,
    mlflow: MlflowOpt = None,
    register: Annotated[Optional[str], typer.Option(
        metavar="NAME", help="Register the candidate (the .onnx / .engine file, the weights file, or a spec.json "
                             "for a spec without weights) as a new version of this registered model, with the "
                             "gate's run attached; a failing candidate too (tagged vfmaudit.gate=failed). Logs to "
                             "MLflow as --mlflow does.")] = None,
    promote: Annotated[Optional[str], typer.Option(
        metavar="ALIAS", help="Then move this alias (e.g. champion) to the new version, only when every check "
                              "passed; never on exit 1 or 2. Needs --register.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate the policy (and reach MLflow, resolve a "
                                          "models:/ baseline) and print the plan; run nothing.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Check a model against an acceptance policy: exit 0 when every check passes, 1 when any fails,
    2 when the gate cannot run (bad policy, missing model or images, unknown metric, MLflow unreachable,
    unknown registered model or alias).

    Metrics are dotted paths such as audit.jpeg.divergence_radius.p95, parity.cosine.min,
    int8.agreement.overlap@5, bench.latency_ms.p95 (README, 'Acceptance gates'). With the registry:
    gate POLICY --baseline models:/NAME@champion --register NAME --promote champion gates the candidate
    against the version in production, registers it, and promotes it only if it passed.
    """
    from vfmaudit import run_gate
    from vfmaudit.report.console import print_gate, print_gate_plan, print_gate_mlflow

    loop = {"mlflow": mlflow, "register": register, "promote": promote}
    if dry_run:
        result = run_gate(policy, baseline=baseline, dry_run=True, **loop)
        print_gate_plan(result, out)
        return
    with Stages(quiet) as progress:
        result = run_gate(policy, baseline=baseline, out=out_dir, junit=junit, markdown=markdown,
                          json_path=json_out, progress=progress, **loop)
    print_gate(result, out)
    if result.mlflow is not None:
        print_gate_mlflow(result.mlflow, out)
    if not result.passed or (result.mlflow is not None and result.mlflow.not_promoted):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(gate)
