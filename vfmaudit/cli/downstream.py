"""`vfmaudit downstream DATASET`: one call of vfmaudit.run_downstream, rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.cli.common import (MlflowOpt, ImageKeyOpt, LabelKeyOpt, StorageOptionOpt, use_sources, AuditProgress, DeviceOpt, FrostDirOpt, ImagenetCPixelsOpt, JsonOpt, ModelSpecOpt,
                                 PerturbationsOpt, PretrainedOpt, Stages, GpusPerWorkerOpt, RayAddressOpt,
                                 WorkersOpt, backend_help, out, user_errors, write_result_json)
from vfmaudit.cli.tracked import record_run, tracked
from vfmaudit.downstream.config import DEFAULT_OUT, DEFAULT_PROMPTS, TASKS


@user_errors
@tracked("downstream")
def downstream(
    dataset: Annotated[str, typer.Argument(
        help="A folder with one sub-folder per class (optionally under train/ and test/), a CSV of path,label, "
             "WebDataset or Parquet shards with labels (--label-key; local or s3://, gs://, https://), or "
             "builtin:textures / shapes / digits / textures-sketch (made here or from installed packages, no "
             "download).")] = "builtin:textures",
    train: Annotated[Optional[str], typer.Option(
        help="The training images, with --test: a given split (DATASET is not read): a class-per-folder tree or "
             "labelled shards.")] = None,
    test: Annotated[Optional[str], typer.Option(
        help="The test images, with --train: a class-per-folder tree or labelled shards.")] = None,
    model: ModelSpecOpt = DEFAULT_MODEL,
    pretrained: PretrainedOpt = None,
    backend: Annotated[str, typer.Option(help=backend_help())] = "auto",
    device: DeviceOpt = "cpu",
    tasks: Annotated[str, typer.Option(
        help=f"auto, or a comma list of {', '.join(TASKS)} (auto: all, zero-shot only for OpenCLIP models).")] = "auto",
    perturbations: PerturbationsOpt = "everyday",
    levels: Annotated[int, typer.Option(help="Levels per family, equally spaced over its domain.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Images per encoder batch.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the split, random weights and stochastic perturbations.")] = 0,
    test_fraction: Annotated[float, typer.Option(
        help="Share of each class held out for testing (when the data set has no train/ and test/).")] = 0.3,
    max_per_class: Annotated[Optional[int], typer.Option(help="Use at most this many images per class.")] = None,
    prompts: Annotated[str, typer.Option(help="Zero-shot templates, '|'-separated, {} = class name "
                                              "(class names come from the folder names).")] = DEFAULT_PROMPTS,
    baseline_report: Annotated[Optional[Path], typer.Option(
        help="An earlier downstream run (its --out folder or downstream.json): ImageNet-C CE and mCE per task "
             "normalised by its errors (beside the AlexNet-normalised ones).")] = None,
    imagenet_c_pixels: ImagenetCPixelsOpt = None,
    frost_dir: FrostDirOpt = None,
    ood: Annotated[Optional[List[str]], typer.Option(
        "--ood", help="Out-of-distribution images (no training class): NAME=FOLDER or FOLDER (also a file list, "
                      "a CSV or builtin:NAME); repeat for several. Per set: AUROC, FPR at 95 % TPR and AUPR-In of "
                      "max softmax (probe, zero-shot), energy, max cosine to the class prototypes and kNN "
                      "distance, clean and with the test images perturbed.")] = None,
    shift: Annotated[Optional[List[str]], typer.Option(
        "--shift", help="A shifted set of the training classes (ImageNet-R / -Sketch style): NAME=FOLDER or FOLDER "
                        "(class sub-folders, a CSV or builtin:NAME); repeat for several. Classified by the clean "
                        "training split's classifiers: accuracy, ECE and the drop from the clean test images; a "
                        "set holding a subset of the classes has its predictions restricted to that subset.")] = None,
    class_map: Annotated[Optional[Path], typer.Option(
        help="Folder name -> class name for --shift sets (a JSON object, or a CSV/TSV of folder,class), e.g. "
             "WordNet ids to the training classes' names.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")] = Path(DEFAULT_OUT),
    resume: Annotated[bool, typer.Option(help="Reuse the embeddings an interrupted run left in --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Discard an earlier run in --out and start again.")] = False,
    engine: Annotated[str, typer.Option(
        help="local, or ray: the perturbed variants encoded by Ray actors (pip install 'vfmaudit[ray]').")] = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 2,
    gpus_per_worker: GpusPerWorkerOpt = 0.0,
    json_out: JsonOpt = None,
    mlflow: MlflowOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output or summary.")] = False,
    image_key: ImageKeyOpt = None,
    label_key: LabelKeyOpt = None,
    storage_option: StorageOptionOpt = None,
) -> None:
    """Linear probe, kNN, retrieval and zero-shot accuracy on clean and perturbed test images, and how well
    the divergence radius predicts the accuracy lost (linear fit, per-image AUROC).

    Writes downstream.json, per_level.csv and report.html to --out.
    """
    use_sources(image_key, label_key, storage_option)
    from vfmaudit import DownstreamConfig, run_downstream
    from vfmaudit.report.console import print_downstream

    config = DownstreamConfig(dataset=dataset, train=str(train) if train else None, test=str(test) if test else None,
                              model=model, pretrained=pretrained, backend=backend, device=device,
                              tasks=tasks, perturbations=perturbations, levels=levels, batch_size=batch_size,
                              seed=seed, test_fraction=test_fraction, max_per_class=max_per_class, prompts=prompts,
                              out=str(out_dir), resume=resume, overwrite=overwrite, engine=engine,
                              ray_address=ray_address, workers=workers, gpus_per_worker=gpus_per_worker,
                              baseline_report=str(baseline_report) if baseline_report else None,
                              imagenet_c_pixels=imagenet_c_pixels, frost_dir=str(frost_dir) if frost_dir else None,
                              ood=tuple(ood or ()), shift=tuple(shift or ()),
                              class_map=str(class_map) if class_map else None)
    config.plan(), config.task_list(), config.ood_sets(), config.shift_sets()  # validate before anything heavy
    stages = Stages(quiet)
    with stages, AuditProgress(quiet, label="encoding", unit="variants") as bar:
        def encoding(event: str, n: int) -> None:
            if event == "start":
                stages.suspend()  # the bar has the terminal while the variants are encoded
            bar(event, n)

        def stage(what: str, i: int, n: int) -> None:
            bar.finish()
            stages(what, i, n)

        result = run_downstream(config, progress=encoding, stage=stage)
    if not quiet:
        print_downstream(result.report, str(out_dir), out)
    write_result_json(result, json_out, announce=not quiet)
    record_run(result.report, [out_dir])


def register(app: typer.Typer) -> None:
    app.command()(downstream)
