"""`vfmaudit export onnx|check|tensorrt`: each one API call, rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfmaudit.errors import VfmauditError
from vfmaudit.export.parity import PARITY_IMAGES
from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.cli.common import (ParityImagesOpt, ImageKeyOpt, StorageOptionOpt, use_sources, DeviceOpt, ImagesOpt, JsonOpt, OverwriteFileOpt, PretrainedOpt, QuietOpt, Stages, err,
                                 out, paths, user_errors, write_result_json)

CheckOpt = Annotated[bool, typer.Option(help="Run `export check` on the result (exit 1 if it fails).")]

app = typer.Typer(help="Export encoders to ONNX or TensorRT, and check that an artefact is still the same model "
                       "as its torch original.", no_args_is_help=True)


def fp16_clamp_note(clamps: int) -> str:
    """What the converter's clamping means for the user (it counts once per weight tensor and sign)."""
    if not clamps:
        return ": every weight fits fp16's range"
    return (f": {clamps} weight tensor(s) held values fp16 cannot represent (magnitudes under 1e-7 or over 65504), "
            f"set to its nearest limit; the parity check measures whether that moved the embeddings")


@app.command("onnx")
@user_errors
def export_onnx_cmd(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    spec: Annotated[Optional[str], typer.Argument(
        metavar="SPEC", help="The model to export, as -m says it (either form).", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help=f"openclip:ARCH or timm:NAME (default {DEFAULT_MODEL}).", show_default=False)] = None,
    pretrained: PretrainedOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of random weights.")] = 0,
    bake_preprocess: Annotated[bool, typer.Option(
        help="Graph takes uint8 NHWC images at the model's input size and normalises them itself.")] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 17; the dynamo exporter uses at least 18).")] = 17,
    exporter: Annotated[str, typer.Option(
        help="auto (dynamo, TorchScript if dynamo fails, with a warning), dynamo or torchscript.")] = "auto",
    precision: Annotated[str, typer.Option(
        help="fp32, fp16 or bf16: weights and compute in that type inside the graph (normalisations, reductions "
             "and softmax kept in float32; float32 inputs and outputs), checked at that precision's threshold. "
             "bf16 needs opset 22 (the graph is converted) and runs on the CPU as a float32 emulation of its "
             "rounding (onnxruntime has no bf16 CPU kernels).")]
        = "fp32",
    optimize_cpu: Annotated[bool, typer.Option("--optimize-cpu", help="Also write FILE.cpu.onnx: fused and "
                                               "optimised for the onnxruntime CPU provider (see README).")] = False,
    check: CheckOpt = True,
    images: ImagesOpt = None,
    max_images: ParityImagesOpt = PARITY_IMAGES,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the check's JSON report here.")] = None,
    overwrite: OverwriteFileOpt = False,
    quiet: QuietOpt = False,
    image_key: ImageKeyOpt = None,
    storage_option: StorageOptionOpt = None,
) -> None:
    """Export an encoder to ONNX (dynamic batch, metadata, checker), then check parity with torch.

    The model is SPEC or -m SPEC: `export onnx timm:vit_small_patch16_224 -o m.onnx` and
    `export onnx -m timm:vit_small_patch16_224 -o m.onnx` are the same command."""
    if spec and model and spec != model:
        raise VfmauditError(f"two models given: SPEC {spec} and --model {model}; pass one of them", param="model")
    model = spec or model or DEFAULT_MODEL
    use_sources(image_key, None, storage_option)
    from vfmaudit import export_and_check
    from vfmaudit.report.console import print_export, print_parity

    with Stages(quiet) as progress:
        run = export_and_check(model, out_file, pretrained=pretrained, seed=seed, bake_preprocess=bake_preprocess,
                               opset=opset, exporter=exporter, optimize_cpu=optimize_cpu, check=check,
                               images=paths(images), precision=precision, overwrite=overwrite, progress=progress,
                               max_images=max_images)
    print_export(run.export, out, err)
    if run.optimized:
        out.print(f"wrote {run.optimized.path} ({run.optimized.describe()})", highlight=False, markup=False)
    for report in run.checks:
        print_parity(report, out)
    if run.checks:
        write_result_json(run, json_out)
    if not run.passed:
        raise typer.Exit(1)


@app.command("convert")
@user_errors
def export_convert_cmd(
    onnx_file: Annotated[Path, typer.Argument(help="An fp32 ONNX file written by `vfmaudit export onnx`.")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    precision: Annotated[str, typer.Option(
        help="fp16 (onnxconverter-common) or bf16 (vfmaudit's converter, opset 22): normalisations, reductions "
             "and softmax stay float32, inputs and outputs stay float32.")] = "bf16",
    check: CheckOpt = True,
    images: ImagesOpt = None,
    max_images: ParityImagesOpt = PARITY_IMAGES,
    json_out: Annotated[Optional[Path], typer.Option(
        "--json", help="Write {path, precision, conversion, parity} here.")] = None,
    overwrite: OverwriteFileOpt = False,
    quiet: QuietOpt = False,
    image_key: ImageKeyOpt = None,
    storage_option: StorageOptionOpt = None,
) -> None:
    """Convert an fp32 export to fp16 or bf16 without exporting again, then check parity with torch.

    bf16 runs on the CPU as a float32 emulation of its rounding (onnxruntime has no bf16 CPU kernels).
    """
    use_sources(image_key, None, storage_option)
    from vfmaudit import convert_and_check
    from vfmaudit.report.console import print_parity

    with Stages(quiet) as progress:
        run = convert_and_check(onnx_file, out_file, precision, check=check, images=paths(images),
                                overwrite=overwrite, progress=progress, max_images=max_images)
    c = run.conversion
    nodes = f": {c['bf16_nodes']} nodes in bf16, {c['float32_nodes']} in float32" if "bf16_nodes" in c else \
        fp16_clamp_note(c.get("fp16_range_clamps", 0))
    out.print(f"wrote {run.path} ({run.precision}{nodes})", highlight=False, markup=False)
    if run.check:
        print_parity(run.check, out)
    write_result_json(run, json_out)
    if not run.passed:
        raise typer.Exit(1)


@app.command("check")
@user_errors
def export_check_cmd(
    artefact: Annotated[Path, typer.Argument(help="The exported file (.onnx, .engine).")],
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Reference torch model (default: the one named in the artefact).")] = None,
    pretrained: Annotated[Optional[str], typer.Option(help="Reference weights (default: from the artefact).")] = None,
    seed: Annotated[Optional[int], typer.Option(
        help="Seed of the reference's random weights (default: from the artefact).")] = None,
    images: ImagesOpt = None,
    max_images: ParityImagesOpt = PARITY_IMAGES,
    precision: Annotated[Optional[str], typer.Option(
        help="fp32, fp16, bf16 or int8: picks the default threshold (0.9999, 0.999, 0.995, 0.99). "
             "Default: the artefact's.")] = None,
    min_cosine: Annotated[Optional[float], typer.Option(help="Override the cosine threshold.")] = None,
    device: DeviceOpt = "cpu",
    backend: Annotated[Optional[str], typer.Option(help="Backend for the artefact (default: by file suffix).")] = None,
    save_golden: Annotated[Optional[Path], typer.Option(
        help="Also write golden data here (.npz): the reference's embeddings of the check images, clean and "
             "edited, the images and their hashes, the preprocessing and the model, for --golden on a device.")]
        = None,
    golden: Annotated[Optional[Path], typer.Option(
        "--golden", "--reference",
        help="Check against golden data from --save-golden instead of the torch reference (no torch, no model, "
             "no images needed); refused in one line when it was made for another model. --reference FILE.npz "
             "is the same option.")] = None,
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
    image_key: ImageKeyOpt = None,
    storage_option: StorageOptionOpt = None,
) -> None:
    """Run the torch reference (or --golden data) and the artefact on the same images (clean and
    perturbed) and compare.

    Exit 0: every embedding reaches the cosine threshold; 1: some do not; 2: unusable input.
    """
    use_sources(image_key, None, storage_option)
    from vfmaudit import check_parity
    from vfmaudit.report.console import print_parity

    with Stages(quiet) as progress:
        progress(f"checking {artefact.name} against " + (f"golden data {golden.name}" if golden else
                                                         "its torch reference"))
        report = check_parity(artefact, model=model, pretrained=pretrained, seed=seed, images=paths(images),
                              precision=precision, min_cosine=min_cosine, device=device, backend=backend,
                              save_golden=save_golden, golden=golden, max_images=max_images)
    print_parity(report, out)
    write_result_json(report, json_out)
    if not report.passed:
        raise typer.Exit(1)


@app.command("tensorrt")
@user_errors
def export_tensorrt_cmd(
    onnx_file: Annotated[Path, typer.Argument(help="ONNX file exported by `vfmaudit export onnx`.")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The .engine file to write (plus FILE.engine.json).")],
    min_batch: Annotated[int, typer.Option(help="Optimisation profile: smallest batch.")] = 1,
    opt_batch: Annotated[int, typer.Option(help="Optimisation profile: batch tuned for.")] = 8,
    max_batch: Annotated[int, typer.Option(help="Optimisation profile: largest batch.")] = 32,
    workspace_gb: Annotated[float, typer.Option(help="Builder workspace limit in GiB.")] = 4.0,
    timing_cache: Annotated[Optional[Path], typer.Option(
        help="Timing cache to reuse and update (default: next to the engine).")] = None,
    device: Annotated[str, typer.Option(help="The GPU to build on, cuda or cuda:N (an engine runs on that GPU model).")]
        = "cuda",
    tf32: Annotated[bool, typer.Option(
        help="Let float32 layers use TF32 tensor cores (Ampere and newer; about 10 mantissa bits). Off: float32.")]
        = False,
    json_out: JsonOpt = None,
    overwrite: OverwriteFileOpt = False,
) -> None:
    """Build a strongly typed TensorRT engine with a dynamic-batch profile (TensorRT 10 or 11).

    The engine's precision is the ONNX file's: export with --precision fp16 or bf16 for FP16/BF16,
    calibrate for INT8 (Q/DQ); float32 layers compute in float32 unless --tf32. The side-car records
    TensorRT, the GPU and its index, TF32, the source's hash and precision.
    """
    from vfmaudit import export_tensorrt
    from vfmaudit.report.console import print_engine

    build = export_tensorrt(onnx_file, out_file, min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch,
                            workspace_gb=workspace_gb, timing_cache=timing_cache, device=device, tf32=tf32,
                            overwrite=overwrite)
    print_engine(build, out)
    write_result_json(build, json_out)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="export")
