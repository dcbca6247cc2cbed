"""The public entry points that write every output of a job: one function per CLI command.

Each runs the job through the layers below and renders what people read (report.html); each
returns a result object whose `to_json()` is exactly what the CLI's `--json` writes. The CLI
calls one of these per command and only renders the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vfmaudit.audit import AuditConfig, AuditResult, measure_audit
from vfmaudit.audit.runner import ProgressFn
from vfmaudit.calibration import CalibrationResult, calibrate_int8
from vfmaudit.export import EngineBuild, ExportResult, ParityReport, build_engine, check_parity, export_onnx
from vfmaudit.export.cpu_optimize import CpuOptimized, optimize_for_cpu
from vfmaudit.files import lock_output_file, write_json
from vfmaudit.gate import GateResult
from vfmaudit.gate import run_gate as gate_run
from vfmaudit.report import write_audit_html, write_calibration_html
from vfmaudit.report.junit import write_gate_junit
from vfmaudit.report.markdown import write_gate_markdown
from vfmaudit.runtime import Encoder


def run_audit(config: AuditConfig, progress: ProgressFn | None = None, encoder: Encoder | None = None) -> AuditResult:
    """Audit a model: per_image.csv, per_level.csv, report.json and report.html in config.out."""
    return measure_audit(config, progress=progress, encoder=encoder, on_complete=write_audit_html)


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
                     optimize_cpu: bool = False, check: bool = True, images: list[str] | None = None) -> ExportRun:
    """Export to ONNX, optionally write the CPU-optimised file, and check each against torch."""
    res = export_onnx(model, out, pretrained=pretrained, seed=seed, bake_preprocess=bake_preprocess,
                      opset=opset, exporter=exporter)
    run = ExportRun(export=res)
    artefacts = [res.path]
    if optimize_cpu:
        run.optimized = optimize_for_cpu(res.path)
        artefacts.append(run.optimized.path)
    if check:
        run.checks = [check_parity(path, images=images) for path in artefacts]
    return run


def export_tensorrt(onnx_path: str | Path, out: str | Path, fp16: bool = False, int8: bool = False,
                    calib_images: list[str] | None = None, calib_method: str = "entropy",
                    calib_cache: str | Path | None = None, min_batch: int = 1, opt_batch: int = 8,
                    max_batch: int = 32, workspace_gb: float = 4.0,
                    timing_cache: str | Path | None = None) -> EngineBuild:
    """Build a TensorRT engine; with int8, calibrated on clean + perturbed images."""
    from vfmaudit.calibration.trt_calibrator import calibrator_for_onnx

    calibrator = None
    if int8:
        calibrator = calibrator_for_onnx(onnx_path, calib_images, calib_method,
                                         calib_cache or Path(str(out) + ".calib"))
    return build_engine(onnx_path, out, fp16=fp16, int8=int8, calibrator=calibrator, min_batch=min_batch,
                        opt_batch=opt_batch, max_batch=max_batch, workspace_gb=workspace_gb,
                        timing_cache=timing_cache)


def calibrate(onnx_path: str | Path, out: str | Path, images: list[str] | None = None, method: str = "minmax",
              perturbed: bool = True, size: int = 256, seed: int = 0, cache_dir: str | Path | None = None,
              min_median_cosine: float = 0.98, html: str | Path | None = None) -> CalibrationResult:
    """Quantize to INT8, audit it against fp32 on held-out images, write the HTML page next to `out`."""
    with lock_output_file(out):  # a second calibration into the same file stops with one line
        result = calibrate_int8(onnx_path, out, images=images, method=method, perturbed=perturbed, size=size,
                                seed=seed, cache_dir=cache_dir, min_median_cosine=min_median_cosine)
        html_path = Path(html) if html else Path(out).with_suffix(".html")
        result.html_path = write_calibration_html(result.report, html_path)
    return result


def run_gate(policy: str | Path, baseline: str | Path | None = None, out: str | Path | None = None,
             junit: str | Path | None = None, markdown: str | Path | None = None, json_path: str | Path | None = None,
             dry_run: bool = False) -> GateResult:
    """Check a model against an acceptance policy; gate.json, junit.xml and summary.md land in `out`.

    junit / markdown / json_path: further copies where CI wants them (the Markdown is appended
    when the file exists, as $GITHUB_STEP_SUMMARY expects).
    """
    result = gate_run(policy, baseline=baseline, out=out, dry_run=dry_run)
    if dry_run:
        return result
    write_gate_junit(result, result.out_dir / "junit.xml")
    write_gate_markdown(result, result.out_dir / "summary.md")
    if junit:
        write_gate_junit(result, junit)
    if markdown:
        write_gate_markdown(result, markdown, append=True)
    if json_path:
        write_json(result.to_json(), json_path)
    return result
