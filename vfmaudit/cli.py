"""The `vfmaudit` command line: thin over the Python API."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from vfmaudit import __version__
from vfmaudit.audit.config import DEFAULT_MODEL, DEFAULT_OUT
from vfmaudit.errors import VfmauditError

app = typer.Typer(
    help="Audit and deploy vision encoders: how far embeddings drift under everyday image edits "
         "(audit), whether an exported ONNX/TensorRT artefact is still the same model (export), "
         "INT8 calibration audited against fp32 (calibrate), and how fast each runs (bench).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
)
err = Console(stderr=True)
out = Console()
if not out.is_terminal:  # piped or captured: wide enough that tables stay readable
    out = Console(width=160)


def user_errors(fn: Callable) -> Callable:
    """Bad input -> one line on stderr and exit 2; Ctrl-C -> a note that finished work is kept."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VfmauditError as e:
            err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted: finished work is on disk; rerun with --resume to continue",
                      markup=False, highlight=False)
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@user_errors
def audit(
    images: Optional[List[Path]] = typer.Argument(
        None, help="Image files and folders (searched recursively). None: the built-in sample photographs."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m",
                              help="openclip:ARCH (see open_clip.list_models()), timm:NAME, or an exported "
                                   "artefact (model.onnx, model.engine)."),
    pretrained: Optional[str] = typer.Option(
        None, help="Weights: a local file (.pt/.pth/.bin/.safetensors) or a pretrained tag (downloads where "
                   "a network exists). Default: seeded random weights, reported as such."),
    backend: str = typer.Option("auto", help="torch, onnx or tensorrt; auto: onnx for .onnx files, tensorrt "
                                             "for .engine/.plan, torch for model specs."),
    device: str = typer.Option("cpu", help="cpu or cuda (cuda:N)."),
    perturbations: str = typer.Option(
        "all", "--perturbations", "-p",
        help="'all' or a comma list of families, each optionally with a sub-domain NAME:LO:HI "
             "(e.g. jpeg,brightness:0.5:1.5). See `vfmaudit perturbations`."),
    levels: int = typer.Option(5, help="Levels per family, equally spaced over its domain."),
    batch_size: int = typer.Option(32, help="Images per encoder batch (and per streamed chunk)."),
    seed: int = typer.Option(0, help="Seed of random weights and of stochastic perturbations."),
    out_dir: Path = typer.Option(Path(DEFAULT_OUT), "--out", "-o", help="Folder for the results."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out without redoing finished images."),
    overwrite: bool = typer.Option(False, help="Discard an earlier run in --out and start again."),
    max_pixels: int = typer.Option(89_478_485, help="Larger images are skipped as decompression bombs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary table."),
) -> None:
    """Measure how far embeddings drift under each perturbation family.

    Writes report.json (summaries per family, skipped inputs, model, versions), per_image.csv
    (image x family: cosine, euclidean, divergence_radius), per_level.csv and report.html to --out.
    """
    from vfmaudit.audit import AuditConfig, run_audit
    from vfmaudit.report import print_summary

    config = AuditConfig(inputs=[str(p) for p in images or []], model=model, pretrained=pretrained,
                         backend=backend, device=device, perturbations=perturbations, levels=levels,
                         batch_size=batch_size, seed=seed, out=str(out_dir), resume=resume,
                         overwrite=overwrite, max_pixels=max_pixels)
    config.plan()  # validate families and levels before loading anything heavy
    with _progress(quiet) as progress:
        result = run_audit(config, progress=progress)
    if not quiet:
        print_summary(result.report, str(out_dir), out)


class _progress:
    """A rich progress bar fed by the audit's progress callback."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False)
        self.task = None

    def __enter__(self):
        return self

    def __call__(self, event: str, n: int) -> None:
        if self.quiet:
            return
        if event == "start":  # shown only once work starts, so early errors stay one line
            self.bar.start()
            self.task = self.bar.add_task("audit", total=n)
        elif self.task is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc):
        if self.task is not None:
            self.bar.stop()
        return False


export_app = typer.Typer(help="Export encoders to ONNX or TensorRT, and check that an artefact is still the "
                              "same model as its torch original.", no_args_is_help=True)
app.add_typer(export_app, name="export")


def _print_parity(report, json_out: Optional[Path]) -> None:
    s = report.summary()
    verdict = "PASS" if report.passed else "FAIL"
    out.print(f"parity {verdict}: {s['images']} embeddings ({len(report.rows) // 6} images x clean + 5 edits) "
              f"min cosine {s['min_cosine']:.6f} (needs >= {report.min_cosine_required:g}, {report.precision}), "
              f"mean {s['mean_cosine']:.6f}, max |diff| {s['max_abs_diff']:.2e}, max rel diff {s['max_rel_diff']:.2e}",
              highlight=False, markup=False)
    out.print(f"would have passed with: --min-cosine {s['would_pass']['min_cosine']:.6f} "
              f"(atol {s['would_pass']['atol']:.2e}, rtol {s['would_pass']['rtol']:.2e})", highlight=False, markup=False)
    providers = report.artefact_info.get("providers")
    if providers:
        out.print(f"artefact ran on: {', '.join(providers)}", highlight=False, markup=False)
    if json_out:
        from vfmaudit.report.json_report import write_json

        write_json(report.to_json(), json_out)
        out.print(f"wrote {json_out}")


@export_app.command("onnx")
@user_errors
def export_onnx_cmd(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="openclip:ARCH or timm:NAME."),
    out_file: Path = typer.Option(..., "--out", "-o", help="The .onnx file to write."),
    pretrained: Optional[str] = typer.Option(None, help="Weights file or tag (default: seeded random)."),
    seed: int = typer.Option(0, help="Seed of random weights."),
    bake_preprocess: bool = typer.Option(
        False, help="Graph takes uint8 NHWC images at the model's input size and normalises them itself."),
    opset: int = typer.Option(17, help="ONNX opset (>= 17; the dynamo exporter uses at least 18)."),
    exporter: str = typer.Option("auto", help="auto (dynamo, TorchScript if dynamo fails), dynamo or torchscript."),
    optimize_cpu: bool = typer.Option(False, "--optimize-cpu", help="Also write FILE.cpu.onnx: fused and "
                                      "optimised for the onnxruntime CPU provider (see README)."),
    check: bool = typer.Option(True, help="Run `export check` on the result (exit 1 if it fails)."),
    images: Optional[List[Path]] = typer.Option(None, "--images", help="Images for the check (default: samples)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the check's JSON report here."),
) -> None:
    """Export an encoder to ONNX (dynamic batch, metadata, checker), then check parity with torch."""
    from vfmaudit.export import check_parity, export_onnx

    res = export_onnx(model, out_file, pretrained=pretrained, seed=seed, bake_preprocess=bake_preprocess,
                      opset=opset, exporter=exporter)
    out.print(f"wrote {res.path} ({res.exporter} exporter, input {res.info.input_format}, "
              f"{res.info.embedding_dim}-d, weights {res.info.weights.get('label')})"
              + (", external data" if res.external_data else ""), highlight=False, markup=False)
    if exporter == "auto" and res.exporter != "dynamo":
        err.print(f"warning: the dynamo exporter failed, the file was written by the {res.exporter} exporter "
                  f"({'; '.join(res.info.extra.get('fallback_reasons', []))})", markup=False, highlight=False,
                  soft_wrap=True)
    artefacts = [res.path]
    if optimize_cpu:
        from vfmaudit.export.cpu_optimize import optimize_for_cpu

        opt = optimize_for_cpu(res.path)
        out.print(f"wrote {opt.path} ({opt.describe()})", highlight=False, markup=False)
        artefacts.append(opt.path)
    failed = False
    if check:
        for path in artefacts:
            report = check_parity(path, images=[str(p) for p in images] if images else None)
            _print_parity(report, json_out if path == res.path else None)
            failed |= not report.passed
    if failed:
        raise typer.Exit(1)


@export_app.command("check")
@user_errors
def export_check_cmd(
    artefact: Path = typer.Argument(..., help="The exported file (.onnx, .engine)."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="Reference torch model (default: the one named in the artefact)."),
    pretrained: Optional[str] = typer.Option(None, help="Reference weights (default: from the artefact)."),
    seed: Optional[int] = typer.Option(None, help="Seed of the reference's random weights (default: from the artefact)."),
    images: Optional[List[Path]] = typer.Option(None, "--images", help="Images to compare on (default: samples)."),
    precision: Optional[str] = typer.Option(None, help="fp32, fp16 or int8: picks the default threshold "
                                                       "(0.9999, 0.999, 0.99). Default: the artefact's."),
    min_cosine: Optional[float] = typer.Option(None, help="Override the cosine threshold."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    backend: Optional[str] = typer.Option(None, help="Backend for the artefact (default: by file suffix)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the JSON report here."),
) -> None:
    """Run the torch reference and the artefact on the same images (clean and perturbed) and compare.

    Exit 0: every embedding reaches the cosine threshold; 1: some do not; 2: unusable input.
    """
    from vfmaudit.export import check_parity

    report = check_parity(artefact, model=model, pretrained=pretrained, seed=seed,
                          images=[str(p) for p in images] if images else None, precision=precision,
                          min_cosine=min_cosine, device=device, backend=backend)
    _print_parity(report, json_out)
    if not report.passed:
        raise typer.Exit(1)


@export_app.command("tensorrt")
@user_errors
def export_tensorrt_cmd(
    onnx_file: Path = typer.Argument(..., help="ONNX file exported by `vfmaudit export onnx`."),
    out_file: Path = typer.Option(..., "--out", "-o", help="The .engine file to write (plus FILE.engine.json)."),
    fp16: bool = typer.Option(False, help="Allow FP16 kernels."),
    int8: bool = typer.Option(False, help="INT8, calibrated on --calib-images (clean + perturbed)."),
    calib_images: Optional[List[Path]] = typer.Option(None, "--calib-images",
                                                      help="INT8 calibration images (default: the built-in samples)."),
    calib_method: str = typer.Option("entropy", help="INT8 calibrator: entropy (IInt8EntropyCalibrator2) or minmax."),
    calib_cache: Optional[Path] = typer.Option(None, help="TensorRT calibration cache to reuse/write "
                                                          "(trtexec --calib reads it; default FILE.engine.calib)."),
    min_batch: int = typer.Option(1, help="Optimisation profile: smallest batch."),
    opt_batch: int = typer.Option(8, help="Optimisation profile: batch tuned for."),
    max_batch: int = typer.Option(32, help="Optimisation profile: largest batch."),
    workspace_gb: float = typer.Option(4.0, help="Builder workspace limit in GiB."),
    timing_cache: Optional[Path] = typer.Option(None, help="Timing cache to reuse and update "
                                                           "(default: next to the engine)."),
) -> None:
    """Build a TensorRT engine with a dynamic-batch profile; the side-car records TensorRT, GPU, source hash."""
    from vfmaudit.export.tensorrt_build import build_engine

    calibrator = None
    if int8:
        from vfmaudit.calibration.dataset import build_calibration_set
        from vfmaudit.calibration.trt_calibrator import make_trt_calibrator
        from vfmaudit.data.sources import collect_items, sample_items
        from vfmaudit.export.metadata import read_onnx_info

        info = read_onnx_info(onnx_file)
        items = collect_items([str(p) for p in calib_images]) if calib_images else sample_items()
        calib = build_calibration_set(items, info.preprocess)
        calibrator = make_trt_calibrator(calib, info, calib_cache or Path(str(out_file) + ".calib"), calib_method)
    res = build_engine(onnx_file, out_file, fp16=fp16, int8=int8, calibrator=calibrator, min_batch=min_batch,
                       opt_batch=opt_batch, max_batch=max_batch, workspace_gb=workspace_gb,
                       timing_cache=timing_cache)
    out.print(f"wrote {res.engine} ({res.precision}) and {res.sidecar}", highlight=False, markup=False)


bench_app = typer.Typer(help="Throughput and latency: encoders per backend, perturbations, enclosing balls, "
                             "whole audits. JSON/CSV results carry a hardware/software fingerprint.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise VfmauditError(f"{what} must be comma-separated integers, e.g. 1,8,32") from None
    if not values or min(values) < 1:
        raise VfmauditError(f"{what} must be positive integers, e.g. 1,8,32")
    return values


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@bench_app.command("encoder")
@user_errors
def bench_encoder_cmd(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model spec, or an exported .onnx/.engine."),
    backends: str = typer.Option("torch,onnx", help="Comma list of torch, onnx, tensorrt."),
    batch_sizes: str = typer.Option("1,8,32", help="Comma list of batch sizes."),
    precision: str = typer.Option("fp32", help="Comma list of fp32, fp16, int8."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    warmup: float = typer.Option(1.0, help="Warm-up seconds per configuration."),
    duration: Optional[float] = typer.Option(3.0, help="Timed seconds per configuration."),
    iterations: Optional[int] = typer.Option(None, help="Timed calls per configuration (overrides --duration)."),
    pretrained: Optional[str] = typer.Option(None, help="Weights file or tag (default: seeded random)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON here."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write the rows as CSV here."),
) -> None:
    """Throughput (img/s) and latency in ms (min, mean, median, p90, p95, p99) per backend, precision, batch.

    Latency is host wall time per batch, preprocessing included; on CUDA the torch backend also
    reports device time from CUDA events. A configuration that cannot run here is listed as
    skipped with its reason, never with speeds.
    """
    from vfmaudit.bench import bench_encoders
    from vfmaudit.bench.writers import write_encoder_csv, write_json

    with err.status("benchmarking..."):
        res = bench_encoders(model, _names(backends), _int_list(batch_sizes, "--batch-sizes"), _names(precision),
                             device=device, warmup_s=warmup, duration_s=duration, iterations=iterations,
                             pretrained=pretrained)
    t = Table(title=f"{model} on {device} ({res.fingerprint['cpu']}" +
              (f", {res.fingerprint['gpu']})" if res.fingerprint.get("gpu") else ")"))
    for col in ("backend", "precision", "batch", "img/s", "min", "mean", "median", "p90", "p95", "p99", "CV"):
        t.add_column(col, justify="left" if col in ("backend", "precision") else "right")
    noisy = []
    for r in res.rows:
        if r["status"] != "ok":
            t.add_row(r["backend"], r["precision"], str(r["batch_size"]), "skipped", *[""] * 7)
            continue
        lat = r["latency_ms"]
        t.add_row(r["backend"], r["precision"], str(r["batch_size"]), f"{r['throughput']:.1f}",
                  *[f"{lat[k]:.2f}" for k in ("min", "mean", "median", "p90", "p95", "p99")], f"{r['cv']:.2f}")
        if r["noisy"]:
            noisy.append(f"{r['backend']}/{r['precision']}/b{r['batch_size']}")
    out.print(t)
    out.print("latency in ms per batch (host wall time)")
    for r in res.rows:
        if r["status"] != "ok":
            out.print(f"skipped {r['backend']}/{r['precision']}/b{r['batch_size']}: {r['reason']}", highlight=False, markup=False)
    if noisy:
        err.print(f"warning: noisy runs (coefficient of variation > 0.10): {', '.join(noisy)}; "
                  f"the machine was busy: rerun with a longer --duration", markup=False)
    if json_out:
        write_json(res.to_json(), json_out)
    if csv_out:
        write_encoder_csv(res, csv_out)


@bench_app.command("perturb")
@user_errors
def bench_perturb_cmd(
    families: str = typer.Option("all", help="'all' or a comma list of families."),
    threads: Optional[str] = typer.Option(None, help="Comma list of thread counts (default: 1 and all cores)."),
    batch: int = typer.Option(64, help="Images per call."),
    size: int = typer.Option(224, help="Image side in pixels."),
    duration: float = typer.Option(1.0, help="Seconds per measurement."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON here."),
) -> None:
    """Images per second of each perturbation family at a typical level, for 1..N threads."""
    from vfmaudit.bench import bench_perturb
    from vfmaudit.bench.writers import write_json

    fams = None if families.strip().lower() == "all" else _names(families)
    with err.status("benchmarking perturbations..."):
        res = bench_perturb(fams, _int_list(threads, "--threads") if threads else None, batch, size, duration)
    thread_counts = sorted({r["threads"] for r in res["rows"]})
    t = Table(title=f"Perturbations, images/s, {size}x{size}, batch {batch}")
    t.add_column("family")
    t.add_column("level", justify="right")
    for n in thread_counts:
        t.add_column(f"{n} thread{'s' if n > 1 else ''}", justify="right")
    by_family: dict = {}
    for r in res["rows"]:
        by_family.setdefault((r["family"], r["level"]), {})[r["threads"]] = r["images_per_s"]
    for (fam, level), rates in by_family.items():
        t.add_row(fam, f"{level:g}", *[f"{rates[n]:,.0f}" for n in thread_counts])
    out.print(t)
    if json_out:
        write_json(res, json_out)


@bench_app.command("meb")
@user_errors
def bench_meb_cmd(
    sets: int = typer.Option(10_000, help="Number of point sets."),
    n: int = typer.Option(11, help="Points per set (clean embedding + levels)."),
    dim: int = typer.Option(768, help="Embedding dimension."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the result as JSON here."),
) -> None:
    """Sets per second of the exact divergence radius (inner products included)."""
    from vfmaudit.bench import bench_meb
    from vfmaudit.bench.writers import write_json

    res = bench_meb(sets, n, dim)
    out.print(f"{sets:,} sets of {n} points in {dim}-d: {res['seconds']:.3f} s, {res['sets_per_s']:,.0f} sets/s "
              f"({res['fingerprint']['cpu']}, {res['fingerprint']['cpu_cores']} cores)", highlight=False, markup=False)
    if json_out:
        write_json(res, json_out)


@bench_app.command("audit")
@user_errors
def bench_audit_cmd(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model spec, or an exported .onnx/.engine."),
    images: Optional[List[Path]] = typer.Argument(None, help="Images (default: the built-in samples)."),
    batch_size: int = typer.Option(32, help="Encoder batch size (the same for both measurements)."),
    perturbations: str = typer.Option("all", "--perturbations", "-p", help="As for `vfmaudit audit`."),
    levels: int = typer.Option(5, help="Levels per family."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the result as JSON here."),
) -> None:
    """End-to-end audit throughput against encoder-only throughput: efficiency = audit / encoder img/s."""
    from vfmaudit.bench import bench_audit
    from vfmaudit.bench.writers import write_json

    with err.status("benchmarking the audit..."):
        res = bench_audit(model, [str(p) for p in images or []], batch_size, perturbations, levels, device)
    out.print(f"audit: {res['encoded_images']} images through the encoder in {res['audit_seconds']:.1f} s = "
              f"{res['audit_images_per_s']:.1f} img/s; encoder alone: {res['encoder_images_per_s']:.1f} img/s; "
              f"efficiency {res['efficiency']:.2f}", highlight=False, markup=False)
    if json_out:
        write_json(res, json_out)


@app.command()
@user_errors
def calibrate(
    onnx_file: Path = typer.Argument(..., help="fp32 ONNX file exported by `vfmaudit export onnx`."),
    out_file: Path = typer.Option(..., "--out", "-o", help="The INT8 .onnx file to write."),
    images: Optional[List[Path]] = typer.Option(None, "--images", help="Calibration images (files or folders; "
                                                "default: the built-in samples). A quarter is held out for acceptance."),
    method: str = typer.Option("minmax", help="minmax, entropy or percentile."),
    perturbed: bool = typer.Option(True, "--perturbed/--clean-only",
                                   help="Add perturbed variants (JPEG, brightness, blur, noise, ...) to the set."),
    size: int = typer.Option(256, help="At most this many calibration images (memory and time stay bounded)."),
    seed: int = typer.Option(0, help="Seed of the set's shuffling and perturbations."),
    cache_dir: Optional[Path] = typer.Option(None, help="Where calibration sets and ranges are cached "
                                                        "(default ~/.cache/vfmaudit/calibration)."),
    min_median_cosine: float = typer.Option(0.98, help="Acceptance: median cosine to fp32 on held-out images."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the full report as JSON here."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Write an HTML report here "
                                                                 "(default: next to --out)."),
) -> None:
    """Calibrate and quantize to INT8 (QDQ, per-channel), then audit the INT8 model against its fp32 parent.

    Exit 0 when the median cosine to fp32 on held-out images reaches --min-median-cosine, 1 when
    it does not, 2 on unusable input.
    """
    from vfmaudit.calibration import calibrate as run_calibration
    from vfmaudit.calibration.html import write_calibration_html

    with err.status("calibrating..."):
        report = run_calibration(onnx_file, out_file, images=[str(p) for p in images] if images else None,
                                 method=method, perturbed=perturbed, size=size, seed=seed, cache_dir=cache_dir,
                                 min_median_cosine=min_median_cosine)
    acc = report["acceptance"]
    c = acc["cosine_to_fp32"]
    cal = report["calibration"]
    out.print(f"wrote {report['int8_model']}: {method} calibration on {cal['images']} images "
              f"({'cached set' if cal['cached'] else 'new set'}; {', '.join(f'{k} {v}' for k, v in cal['edits'].items())}), "
              f"{sum(report['quantized_ops'].values())} Q/DQ nodes, peak memory {report['peak_memory_mb']:.0f} MB",
              highlight=False, markup=False)
    for part in ("all", "clean", "perturbed"):
        d = c[part]
        out.print(f"cosine to fp32 ({part}, {d['n']}): min {d['min']:.5f}  p5 {d['p5']:.5f}  median {d['median']:.5f}  "
                  f"mean {d['mean']:.5f}", highlight=False, markup=False)
    sp = acc["speed"]
    out.print(f"speed on this machine: INT8/fp32 = {sp['int8_over_fp32']:.2f}x "
              f"({sp['int8_img_per_s']:.1f} vs {sp['fp32_img_per_s']:.1f} img/s)", highlight=False, markup=False)
    verdict = "PASS" if report["passed"] else "FAIL"
    out.print(f"acceptance {verdict}: median cosine {c['all']['median']:.5f} (needs >= {min_median_cosine:g})",
              highlight=False, markup=False)
    html_path = html_out or out_file.with_suffix(".html")
    write_calibration_html(report, html_path)
    out.print(f"wrote {html_path}", highlight=False, markup=False)
    if json_out:
        from vfmaudit.report.json_report import write_json

        write_json(report, json_out)
        out.print(f"wrote {json_out}", highlight=False, markup=False)
    if not report["passed"]:
        raise typer.Exit(1)


@app.command("perturbations")
def list_perturbations() -> None:
    """List the perturbation families: domain, identity, units and what each does."""
    from vfmaudit import perturb

    t = Table(title="Perturbation families")
    for col in ("name", "domain", "identity", "units", "description"):
        t.add_column(col)
    for name, f in perturb.families().items():
        t.add_row(name, f"[{f.lo:g}, {f.hi:g}]", f"{f.identity:g}", f.units, f.description)
    out.print(t)


@app.command()
def version() -> None:
    """Print the vfmaudit version."""
    out.print(__version__)


def main(argv: list[str] | None = None) -> None:
    # typer may vendor its own click, so its exceptions are recognised by interface, not class
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="vfmaudit", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - last resort: one line, never a traceback
        name = type(e).__name__
        if name == "NoArgsIsHelpError":
            e.show()
            sys.exit(2)
        if name == "Abort":
            err.print("interrupted", markup=False)
            sys.exit(130)
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click's usage errors
            ctx = getattr(e, "ctx", None)
            where = f"vfmaudit {ctx.info_name}" if ctx is not None and ctx.parent is not None else "vfmaudit"
            err.print(f"error: {e.format_message()} (see {where} --help)", markup=False, highlight=False,
                      soft_wrap=True)
            sys.exit(e.exit_code)
        if os.environ.get("VFMAUDIT_DEBUG"):
            raise
        err.print(f"internal error: {name}: {e} (set VFMAUDIT_DEBUG=1 for the traceback)",
                  markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
