"""`vfmaudit audit`: one call of vfmaudit.run_audit, rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from vfmaudit.audit.config import DEFAULT_OUT
from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.cli.common import (MaxImagesOpt, MlflowOpt, AuditProgress, DeviceOpt, FrostDirOpt, ImagenetCPixelsOpt, JsonOpt, LevelsOpt,
                                 ImageKeyOpt, ModelSpecOpt, PerturbationsOpt, PretrainedOpt, GpusPerWorkerOpt, RayAddressOpt,
                                 StorageOptionOpt, WorkersOpt, backend_help, err, out, use_sources, user_errors,
                                 write_result_json)
from vfmaudit.cli.tracked import record_run, tracked
from vfmaudit.data.source import sources_help
from vfmaudit.data.decode import DEFAULT_MAX_PIXELS


@user_errors
@tracked("audit")
def audit(
    images: Annotated[Optional[List[str]], typer.Argument(
        help=f"Images: {sources_help()} None: the built-in sample photographs.", show_default=False)] = None,
    model: ModelSpecOpt = DEFAULT_MODEL,
    pretrained: PretrainedOpt = None,
    backend: Annotated[str, typer.Option(help=backend_help())] = "auto",
    device: DeviceOpt = "cpu",
    perturbations: PerturbationsOpt = "everyday",
    levels: LevelsOpt = 5,
    batch_size: Annotated[int, typer.Option(help="Images per encoder batch (and per streamed chunk).")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of random weights and of stochastic perturbations.")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")] = Path(DEFAULT_OUT),
    resume: Annotated[bool, typer.Option(
        help="Continue an interrupted run in --out without redoing finished images.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Discard an earlier run in --out and start again.")] = False,
    max_pixels: Annotated[int, typer.Option(help="Larger images are skipped as decompression bombs.")] = DEFAULT_MAX_PIXELS,
    max_images: MaxImagesOpt = None,
    image_key: ImageKeyOpt = None,
    storage_option: StorageOptionOpt = None,
    tables: Annotated[str, typer.Option(
        help="Formats of the per-image and per-level tables: csv, parquet (per_image.parquet, per_level.parquet; "
             "the CSV files removed at the end) or both. Parquet needs pyarrow (the data extra).")] = "csv",
    engine: Annotated[str, typer.Option(
        help="local, or ray: the same audit on a Ray cluster (pip install 'vfmaudit[ray]'; docs/scale-out.md).")]
        = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 2,
    gpus_per_worker: GpusPerWorkerOpt = 0.0,
    shard_size: Annotated[int, typer.Option(
        help="Images per shard with --engine ray: the unit of work, retry and resume.")] = 256,
    protocol: Annotated[Optional[str], typer.Option(
        help="imagenet-c: the released ImageNet-C dataset's protocol: every input Resize(256) + CenterCrop(224) "
             "first, each ImageNet-C variant re-encoded as JPEG quality 85 (how the published images were made).")]
        = None,
    imagenet_c_pixels: ImagenetCPixelsOpt = None,
    frost_dir: FrostDirOpt = None,
    reference_report: Annotated[Optional[Path], typer.Option(
        help="An earlier audit (its --out folder or report.json): the ImageNet-C summary is also given relative "
             "to it, per corruption and as the mean ratio over the 15.")] = None,
    report_thumbnails: Annotated[int, typer.Option(
        help="At most this many thumbnails in report.html (about 3 KB each: 800 is about 2.5 MB; 0: none).")] = 800,
    json_out: JsonOpt = None,
    mlflow: MlflowOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary table.")] = False,
) -> None:
    """Measure how far embeddings drift under each perturbation family.

    Writes report.json (summaries per family and metric, skipped inputs, model, versions),
    per_image.csv (image x family: one column per metric), per_level.csv and report.html to --out
    (--tables parquet: per_image.parquet and per_level.parquet instead of the CSV files). Images
    stream from folders, WebDataset shards and Parquet files, local or behind s3://, gs://, https://.
    """
    from vfmaudit import AuditConfig, run_audit
    from vfmaudit.perturb.plan import plan_warnings
    from vfmaudit.report.console import print_audit_summary

    sources = use_sources(image_key, None, storage_option, max_pixels)
    config = AuditConfig(inputs=list(images or []), model=model, pretrained=pretrained,
                         backend=backend, device=device, perturbations=perturbations, levels=levels,
                         batch_size=batch_size, seed=seed, out=str(out_dir), resume=resume,
                         overwrite=overwrite, max_pixels=max_pixels, max_images=max_images, engine=engine, ray_address=ray_address,
                         workers=workers, gpus_per_worker=gpus_per_worker, shard_size=shard_size,
                         reference_report=str(reference_report) if reference_report else None, protocol=protocol,
                         imagenet_c_pixels=imagenet_c_pixels, frost_dir=str(frost_dir) if frost_dir else None,
                         image_key=image_key, storage_options=sources.storage_options, tables=tables)
    early = plan_warnings(config.plan())  # validates families and levels before loading anything heavy
    for warning in early:  # said before the minutes they cost, and again in report.json
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    with AuditProgress(quiet) as progress:
        result = run_audit(config, progress=progress, report_thumbnails=report_thumbnails)
    if not quiet:
        print_audit_summary(result.report, str(out_dir), out)
    for warning in result.report.get("warnings", []):
        if warning not in early:
            err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    write_result_json(result, json_out, announce=not quiet)
    record_run(result.report, [out_dir])


def register(app: typer.Typer) -> None:
    app.command()(audit)
