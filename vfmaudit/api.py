"""The public entry points that write every output of a job: one function per CLI command.

Each runs the job through the layers below and renders what people read (report.html); each
returns a result object whose `to_json()` is exactly what the CLI's `--json` writes. The CLI
calls one of these per command and only renders the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vfmaudit.audit import AuditConfig, AuditResult, measure_audit
from vfmaudit.audit.result import ProgressFn
from vfmaudit.downstream import DownstreamConfig, DownstreamResult
from vfmaudit.downstream import run_downstream as downstream_run
from vfmaudit.errors import VfmauditError, missing_dependency
from vfmaudit.export import PARITY_IMAGES, ExportResult, ParityReport, build_engine, check_parity, export_onnx
from vfmaudit.export.cpu_optimize import CpuOptimized, optimize_for_cpu, require_cpu_kernels
from vfmaudit.files import OutputInUse, check_output_file, check_output_folder, lock_output_file, write_json
from vfmaudit.gate import GateResult, Policy, load_policy
from vfmaudit.gate.runner import DEFAULT_OUT as GATE_DEFAULT_OUT
from vfmaudit.gate import run_gate as gate_run
from vfmaudit.progress import StageFn, no_stages
from vfmaudit.report import write_audit_html, write_calibration_html
from vfmaudit.report.compare import Comparison, compare_paths, write_compare
from vfmaudit.report.downstream_html import write_downstream_html
from vfmaudit.report.finetune_html import write_finetune_html
from vfmaudit.report.junit import write_gate_error_junit, write_gate_junit
from vfmaudit.report.markdown import write_gate_markdown
from vfmaudit.runtime import Encoder

if TYPE_CHECKING:  # loaded by the functions that run them: attacks and fine-tuning import torch, calibration
    # onnxruntime.quantization and onnx (a second of start-up that an audit does not need)
    from vfmaudit.attack import AttackConfig, AttackResult
    from vfmaudit.calibration import CalibrationResult
    from vfmaudit.finetune import FinetuneConfig, FinetuneResult
    from vfmaudit.tracking.history import History


def run_audit(config: AuditConfig, progress: ProgressFn | None = None, encoder: Encoder | None = None,
              report_thumbnails: int = 800) -> AuditResult:
    """Audit a model: per_image.csv, per_level.csv, report.json and report.html in config.out.

    report_thumbnails caps the images embedded in report.html (about 3 KB each; 0: none).
    """
    return measure_audit(config, progress=progress, encoder=encoder,
                         on_complete=lambda result: write_audit_html(result, max_thumbnails=report_thumbnails))


@dataclass
class ExportRun:
    """`export onnx`: the file written, its CPU-optimised twin if asked, and their parity checks."""

    export: ExportResult
    optimized: CpuOptimized | None = None
    checks: list[ParityReport] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_json(self) -> dict:
        # the parity report of the exported file: what `export onnx --json` has always written
        if self.checks:
            return self.checks[0].to_json()
        return self.export.to_json()


def export_and_check(model: str, out: str | Path, pretrained: str | None = None, seed: int = 0,
                     bake_preprocess: bool = False, opset: int = 17, exporter: str = "auto",
                     optimize_cpu: bool = False, check: bool = True, images: list[str] | None = None,
                     precision: str = "fp32", overwrite: bool = False, progress: StageFn | None = None,
                     max_images: int = PARITY_IMAGES) -> ExportRun:
    """Export to ONNX, optionally write the CPU-optimised file, and check each against torch (on the first
    max_images readable images).

    An existing `out` is replaced only with overwrite. progress(what, i, n) hears each stage."""
    stage = progress or _quiet
    check_output_file(out, overwrite)
    if optimize_cpu:
        require_cpu_kernels(precision)
    stage(f"exporting {model} to ONNX ({precision})")
    res = export_onnx(model, out, pretrained=pretrained, seed=seed, bake_preprocess=bake_preprocess,
                      opset=opset, exporter=exporter, precision=precision)
    run = ExportRun(export=res)
    artefacts = [res.path]
    if optimize_cpu:
        stage("writing the CPU-optimised file")
        run.optimized = optimize_for_cpu(res.path)
        artefacts.append(run.optimized.path)
    if check:
        n = len(artefacts) if len(artefacts) > 1 else 0  # one file: a plain stage, no count
        for k, path in enumerate(artefacts):
            stage(f"checking {Path(path).name} against torch", k + 1 if n else 0, n)
            run.checks.append(check_parity(path, images=images, max_images=max_images))
    return run


# progress(what, i, n): a stage (n = 0) or i of n steps of counted work


def _quiet(what: str, i: int = 0, n: int = 0) -> None:
    return None


@dataclass
class ConvertRun:
    """`export convert`: the fp16/bf16 file written from an fp32 one, what changed, and its parity check."""

    path: Path
    precision: str
    conversion: dict
    check: ParityReport | None = None

    @property
    def passed(self) -> bool:
        return self.check is None or self.check.passed

    def to_json(self) -> dict:
        return {"path": str(self.path), "precision": self.precision, "conversion": self.conversion,
                "parity": self.check.to_json() if self.check else None}


def convert_and_check(onnx_path: str | Path, out: str | Path, precision: str, check: bool = True,
                      images: list[str] | None = None, overwrite: bool = False,
                      progress: StageFn | None = None, max_images: int = PARITY_IMAGES) -> ConvertRun:
    """Rewrite an fp32 vfmaudit export in fp16 or bf16 (float32 I/O kept) as `out`, and check it against torch.

    An existing `out` is replaced only with overwrite."""
    from vfmaudit.artefact import read_onnx_info
    from vfmaudit.export.precision import PRECISIONS, convert_precision

    onnx_path, out = Path(onnx_path), Path(out)
    if out.resolve() == onnx_path.resolve():
        raise VfmauditError(f"out {out} should be a new .onnx file, not the fp32 one", param="out")
    check_output_file(out, overwrite)
    if not onnx_path.is_file():
        raise VfmauditError(f"ONNX file not found: {onnx_path}; check the path", param="onnx_path")
    if out.suffix != ".onnx":
        raise VfmauditError(f"out {out} should be a new .onnx file, not the fp32 one", param="out")
    reduced = [p for p in PRECISIONS if p != "fp32"]
    if precision not in reduced:
        raise VfmauditError(f"precision must be {' or '.join(reduced)}, got '{precision}'", param="precision")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = progress or _quiet
    with lock_output_file(out):
        stage(f"converting {onnx_path.name} to {precision}")
        convert_precision(onnx_path, precision, out)  # checks the file it writes
        run = ConvertRun(path=out, precision=precision,
                         conversion=read_onnx_info(out).extra.get("precision_conversion", {}))
        if check:
            stage(f"checking {out.name} against torch")
            run.check = check_parity(out, images=images, max_images=max_images)
    return run


def export_tensorrt(onnx_path: str | Path, out: str | Path, min_batch: int = 1, opt_batch: int = 8,
                    max_batch: int = 32, workspace_gb: float = 4.0, timing_cache: str | Path | None = None,
                    overwrite: bool = False, device: str = "cuda", tf32: bool = False):
    """`export tensorrt`: build_engine, after the output rule (the engine's precision is the ONNX file's)."""
    check_output_file(out, overwrite)
    return build_engine(onnx_path, out, min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch,
                        workspace_gb=workspace_gb, timing_cache=timing_cache, device=device, tf32=tf32)


def calibrate(onnx_path: str | Path, out: str | Path, images: list[str] | None = None, method: str = "minmax",
              perturbed: bool = True, size: int = 256, seed: int = 0, cache_dir: str | Path | None = None,
              min_median_cosine: float = 0.98, html: str | Path | None = None, target: str | None = None,
              sensitivity: bool = False, progress=None, overwrite: bool = False,
              perturbations: str = "calibration") -> "CalibrationResult":
    """Quantize to INT8, audit it against fp32 on held-out images, write the HTML page next to `out`.

    An existing `out` (or page) is replaced only with overwrite."""
    from vfmaudit.calibration import calibrate_int8

    check_output_file(out, overwrite)
    check_output_file(Path(html) if html else Path(out).with_suffix(".html"), overwrite, param="html")
    with lock_output_file(out):  # a second calibration into the same file stops with one line
        result = calibrate_int8(onnx_path, out, images=images, method=method, perturbed=perturbed, size=size,
                                seed=seed, cache_dir=cache_dir, min_median_cosine=min_median_cosine, target=target,
                                sensitivity=sensitivity, progress=progress, perturbations=perturbations)
        html_path = Path(html) if html else Path(out).with_suffix(".html")
        result.html_path = write_calibration_html(result.report, html_path)
    return result


def run_gate(policy: str | Path, baseline: str | Path | None = None, out: str | Path | None = None,
             junit: str | Path | None = None, markdown: str | Path | None = None, json_path: str | Path | None = None,
             dry_run: bool = False, model: str | None = None, pretrained: str | None = None,
             progress: StageFn | None = None, mlflow: str | None = None, register: str | None = None,
             promote: str | None = None) -> GateResult:
    """Check a model against an acceptance policy; gate.json, junit.xml and summary.md land in `out`.

    junit / markdown / json_path: further copies where CI wants them (the Markdown is appended
    when the file exists, as $GITHUB_STEP_SUMMARY expects).
    baseline: an earlier gate's folder or gate.json, or a registered version (models:/NAME@ALIAS,
    models:/NAME/VERSION) whose gate.json is read from MLflow.
    mlflow: log the gate as an MLflow run ('' or a URI; None with neither register nor a models:/ baseline: no
    MLflow); register: also register the candidate as a new version of that model; promote: then move this
    alias to it, only when every check passed (result.mlflow says what was done).
    """
    if mlflow is None and register is None and promote is None and not _is_model_uri(baseline):
        return _gate(policy, baseline, out, junit, markdown, json_path, dry_run, model, pretrained, progress)
    from vfmaudit.tracking.acceptance import gate_with_registry

    if out is not None:  # the output rules before the store is reached
        check_output_folder(out)
    try:
        return gate_with_registry(
            lambda loaded, base: _gate(loaded, base, out, junit, markdown, json_path, dry_run, model, pretrained,
                                       progress),
            policy, baseline, mlflow=mlflow, register=register, promote_alias=promote, dry_run=dry_run, model=model,
            pretrained=pretrained, progress=progress)
    except OutputInUse:
        raise
    except VfmauditError as e:  # refused by the registry (or its logging failed): CI's JUnit says why too
        if not dry_run and e.exit_code == 2:
            for path in [Path(out or GATE_DEFAULT_OUT) / "junit.xml", *([junit] if junit else [])]:
                write_gate_error_junit(str(policy), str(e), path)
        raise


def gate_history(source: str, mlflow: str | None = None) -> "History":
    """`report history`: every version of models:/NAME (or every gate run of an experiment) with its gate.json.

    mlflow: the tracking URI (None: $MLFLOW_TRACKING_URI, else MLflow's default store)."""
    from vfmaudit.tracking.client import connect, resolve_uri
    from vfmaudit.tracking.history import read_history

    return read_history(connect(resolve_uri(mlflow)), source)


def _is_model_uri(baseline) -> bool:
    return isinstance(baseline, str) and baseline.startswith("models:/")


def _gate(policy, baseline, out, junit, markdown, json_path, dry_run, model, pretrained, progress) -> GateResult:
    if out is not None:
        check_output_folder(out)
    for path, param in ((junit, "junit"), (json_path, "json_path"), (markdown, "markdown")):
        if path is not None:  # copies CI asks for: replaced (or appended) by design, never a folder
            check_output_file(path, overwrite=True, param=param)
    try:
        try:
            result = gate_run(policy, baseline=baseline, out=out, dry_run=dry_run, model=model, pretrained=pretrained,
                              progress=progress)
        except ModuleNotFoundError as e:  # a measurement that needs torch, on the lean install
            missing = missing_dependency(e, "this gate")
            if missing is None:
                raise
            raise missing from None
    except OutputInUse:
        raise  # another gate writes that folder: leave its files alone
    except VfmauditError as e:  # a gate that cannot run still leaves CI a JUnit file saying why
        if not dry_run:
            for path in [Path(out or GATE_DEFAULT_OUT) / "junit.xml", *([junit] if junit else [])]:
                write_gate_error_junit(policy.source if isinstance(policy, Policy) else str(policy), str(e), path)
        raise
    if dry_run:
        return result
    if "audit" in result.reports:  # the gate's audit gets its page too: people (and its MLflow run) look there
        report_path = Path(result.reports["audit"])
        write_audit_html(AuditResult(report=json.loads(report_path.read_text()), out_dir=report_path.parent),
                         max_thumbnails=200)
    if result.baseline_folder and "audit" in result.reports:
        base_audit = Path(result.baseline_folder) / "audit"
        if (base_audit / "report.json").is_file():
            result.compare_path = write_compare(compare_paths(base_audit, Path(result.reports["audit"]).parent),
                                                result.out_dir / "compare.html",
                                                title="Gate: baseline (A) against candidate (B)")
    write_gate_junit(result, result.out_dir / "junit.xml")
    write_gate_markdown(result, result.out_dir / "summary.md")
    if junit:
        write_gate_junit(result, junit)
    if markdown:
        write_gate_markdown(result, markdown, append=True)
    if json_path:
        write_json(result.to_json(), json_path)
    return result


def run_downstream(config: DownstreamConfig, progress: ProgressFn | None = None,
                   stage: StageFn | None = None) -> DownstreamResult:
    """Downstream tasks under perturbation: downstream.json, per_level.csv and report.html in config.out.

    progress(event, n) follows the encoding, stage(what, i, n) the set-up and the fitting around it."""
    return downstream_run(config, progress=progress, on_complete=write_downstream_html, stage=stage)


def run_finetune(config: "FinetuneConfig", progress=None, export: str | None = None,
                 gate: str | Path | None = None, stage: StageFn | None = None) -> "FinetuneResult":
    """Robust fine-tuning; then, if asked, export ONNX (checked against the fine-tuned torch model) and gate it.

    Writes weights.safetensors, train_log.csv, report.json and report.html (before/after on
    held-out images) in config.out; model.onnx and gate/ there too when exported and gated.
    progress(step, total, row) follows training; stage(what, i, n) the set-up and evaluation around it.
    """
    stage = stage or no_stages
    if export not in (None, "onnx"):
        raise VfmauditError(f"export must be onnx, got '{export}'", param="export")
    if gate is not None:
        load_policy(gate, model=config.model)  # a bad policy stops the run before any training
    from vfmaudit.finetune import run_finetune as finetune_run

    # inside the folder lock, as every command that writes a folder: no second run sees half of it
    return finetune_run(config, progress=progress, stage=stage,
                        on_complete=lambda result: _finish_finetune(result, export, gate, stage))


def _finish_finetune(result: "FinetuneResult", export: str | None, gate: str | Path | None, stage: StageFn) -> None:
    """Export (checked against the fine-tuned torch model) and gate, then report.json and report.html."""
    report = result.report
    candidate, candidate_weights = str(report["model"]["spec"]), str(result.weights)
    if export:
        stage("exporting the fine-tuned encoder to ONNX and checking its parity", 0, 0)
        onnx_path = result.out_dir / "model.onnx"
        run = export_and_check(report["model"]["spec"], onnx_path, pretrained=str(result.weights), overwrite=True)
        report["export"] = {"onnx": str(onnx_path), "exporter": run.export.exporter,
                            "parity": run.checks[0].summary(), "passed": run.passed,
                            "weights_sha256": run.export.info.weights.get("sha256")}
        candidate, candidate_weights = str(onnx_path), None
    if gate is not None:
        g = run_gate(gate, out=result.out_dir / "gate", model=candidate, pretrained=candidate_weights,
                     progress=stage)
        report["gate"] = {"policy": str(gate), "passed": g.passed, "failures": g.failures,
                          "result": str(result.out_dir / "gate" / "gate.json")}
    stage("writing report.json and report.html", 0, 0)
    write_json(report, result.report_path)
    write_finetune_html(result)


def compare_reports(a: str | Path, b: str | Path | None = None, out: str | Path = "compare.html",
                    overwrite: bool = False) -> Comparison:
    """Two runs side by side (audit folders or report.json files), or the two sides of one calibrate or
    finetune report: per-family deltas, per-image scatter, the images that moved most; HTML at `out`
    (an existing one is replaced only with overwrite)."""
    check_output_file(out, overwrite)
    comparison = compare_paths(a, b)
    comparison.path = write_compare(comparison, out, title="vfmaudit: A against B")
    return comparison


def run_attack(config: "AttackConfig", progress=None, warn=None) -> "AttackResult":
    """`vfmaudit attack`: the attack (vfmaudit.attack.run_attack), then, with config.out, report.html
    there (the budgets, the transfer table, the worst images with the change amplified)."""
    from vfmaudit.attack import run_attack as attack
    from vfmaudit.report.attack_html import write_attack_html, write_search_html

    def page(result: "AttackResult", out: Path) -> dict:
        (write_search_html if config.method == "search" else write_attack_html)(result, out / "report.html")
        return {"html": "report.html"}

    return attack(config, progress, on_complete=page, warn=warn)
