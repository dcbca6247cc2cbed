"""`vfmaudit calibrate`: one call of vfmaudit.calibrate, rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from vfmaudit.calibration.settings import METHODS, MIN_MEDIAN_COSINE
from vfmaudit.cli.common import MaxImagesOpt, MlflowOpt, ImageKeyOpt, StorageOptionOpt, use_sources, OverwriteFileOpt, QuietOpt, Stages, out, paths, user_errors, write_result_json
from vfmaudit.cli.tracked import record_run, tracked


@user_errors
@tracked("calibrate")
def calibrate(
    onnx_file: Annotated[Path, typer.Argument(help="fp32 ONNX file exported by `vfmaudit export onnx`.")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The INT8 .onnx file to write.")],
    images: Annotated[Optional[List[str]], typer.Option(
        "--images", help="Calibration images (files or folders, WebDataset shards, Parquet/Arrow files, local or "
                         "behind a URL; default: the built-in samples). A quarter is "
                         "held out for acceptance.")] = None,
    method: Annotated[str, typer.Option(help=f"{', '.join(METHODS)}.")] = "minmax",
    perturbed: Annotated[bool, typer.Option(
        "--perturbed/--clean-only",
        help="Add perturbed variants (the 'calibration' preset: JPEG, brightness, blur, noise, ...) to the set.")] = True,
    perturbations: Annotated[str, typer.Option(
        "--perturbations", "-p", help="The edits of the perturbed variants: a preset (default calibration; e.g. "
                                      "imagenet-c) or families, as audit's --perturbations.")] = "calibration",
    size: Annotated[int, typer.Option(help="At most this many calibration images (memory and time stay bounded).")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the set's shuffling and perturbations.")] = 0,
    cache_dir: Annotated[Optional[Path], typer.Option(
        help="Where calibration sets and ranges are cached (default ~/.cache/vfmaudit/calibration).")] = None,
    min_median_cosine: Annotated[float, typer.Option(
        help="Acceptance: median cosine to fp32 on held-out images.")] = MIN_MEDIAN_COSINE,
    target: Annotated[Optional[str], typer.Option(
        help="Mixed precision to a target, e.g. 'cosine.p5>=0.999' (acceptance metrics: cosine[.all|.clean|.perturbed]"
             ".min|p5|median|mean, radius.*, agreement.top1|overlap@k): keep the fewest most sensitive nodes in "
             "float that meet it on held-out images; exit 1 with the best found when none does.")] = None,
    sensitivity: Annotated[bool, typer.Option(
        "--sensitivity", help="Rank the quantizable nodes by the error each introduces alone (implied by --target).")]
        = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full report as JSON here.")] = None,
    html_out: Annotated[Optional[Path], typer.Option(
        "--html", help="Write an HTML report here (default: next to --out).")] = None,
    overwrite: OverwriteFileOpt = False,
    mlflow: MlflowOpt = None,
    quiet: QuietOpt = False,
    max_images: MaxImagesOpt = None,
    image_key: ImageKeyOpt = None,
    storage_option: StorageOptionOpt = None,
) -> None:
    """Calibrate and quantize to INT8 (QDQ, per-channel), then audit the INT8 model against its fp32 parent.

    Exit 0 when the median cosine to fp32 on held-out images reaches --min-median-cosine (with
    --target: when the target is met), 1 when it does not, 2 on unusable input.
    """
    use_sources(image_key, None, storage_option, max_images=max_images)
    from vfmaudit import calibrate as run_calibration
    from vfmaudit.report.console import print_calibration

    with Stages(quiet) as progress:
        result = run_calibration(onnx_file, out_file, images=paths(images), method=method, perturbed=perturbed,
                                 size=size, seed=seed, cache_dir=cache_dir, min_median_cosine=min_median_cosine,
                                 html=html_out, target=target, sensitivity=sensitivity, overwrite=overwrite,
                                 progress=progress, perturbations=perturbations)
    print_calibration(result, result.html_path, out)
    write_result_json(result, json_out)
    record_run(result.to_json(), [result.html_path], verdict="passed" if result.passed else "failed")
    if not result.passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
