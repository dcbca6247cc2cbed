"""`vfmaudit finetune`: one call of vfmaudit.run_finetune, rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.cli.common import (MaxImagesOpt, MlflowOpt, ImageKeyOpt, StorageOptionOpt, use_sources, DeviceOpt, JsonOpt, PretrainedOpt, QuietOpt, Stages, TorchModelOpt, err, out,
                                 user_errors, write_result_json)
from vfmaudit.cli.tracked import record_run, tracked
from vfmaudit.tracking.metrics import training_series
from vfmaudit.finetune.config import DEFAULT_OUT


@user_errors
@tracked("finetune")
def finetune(
    images: Annotated[Optional[List[str]], typer.Argument(
        help="Training images: files and folders, WebDataset shards, Parquet/Arrow files, local or behind s3://, "
             "gs://, https:// (see vfmaudit audit --help). None: crops of the built-in sample photographs.",
        show_default=False)] = None,
    model: TorchModelOpt = DEFAULT_MODEL,
    pretrained: PretrainedOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for weights, logs and reports.")] = Path(DEFAULT_OUT),
    perturbations: Annotated[str, typer.Option(
        "--perturbations", "-p", help="Families to train for, each optionally with a sub-domain NAME:LO:HI "
                                      "(e.g. jpeg,gaussian_blur:0:2), 'all', or a preset.")] = "jpeg,gaussian_blur",
    lam: Annotated[float, typer.Option(help="Weight of the utility term cos(f(x), f'(x)) in the loss.")] = 1.0,
    epochs: Annotated[Optional[int], typer.Option(help="Passes over the training images (default 3).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimiser steps (overrides --epochs).")] = None,
    batch_size: Annotated[int, typer.Option(help="Clean images per step (each also runs perturbed).")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW; linear warm-up, cosine decay).")] = 1e-5,
    clip_grad: Annotated[float, typer.Option(
        help="Clip the total gradient norm of the trained parameters to this before each step.")] = 1.0,
    train: Annotated[str, typer.Option(
        help="What trains: last:N (the last N blocks and what follows them), norm (normalisation layers), all.")]
        = "last:2",
    held_out: Annotated[float, typer.Option(help="Share of the images (by source photograph) held out to measure "
                                                 "before and after.")] = 0.25,
    seed: Annotated[int, typer.Option(help="Seed of random weights, the split, the batches and the edits.")] = 0,
    device: DeviceOpt = "cpu",
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Discard an earlier run in --out and start again.")] = False,
    export: Annotated[Optional[str], typer.Option(
        help="onnx: also export the fine-tuned encoder to OUT/model.onnx and check its parity.")] = None,
    gate: Annotated[Optional[Path], typer.Option(
        help="Run this acceptance policy on the result (the exported file when --export onnx).")] = None,
    eval_perturbations: Annotated[str, typer.Option(
        help="Families compared before and after on held-out images (trained and not trained).")] = "everyday",
    adversarial: Annotated[Optional[str], typer.Option(
        help="linf:EPS (EPS in 1/255) or l2:EPS: train against PGD examples made on the fly for each batch, with "
             "FARE's loss ||f'(x_adv) - f(x)||^2 to the original's clean embedding (instead of -p's edits); the "
             "report adds the held-out worst case before and after.")] = None,
    attack_steps: Annotated[int, typer.Option(help="PGD steps per batch with --adversarial (RobustVLM: 10).")] = 10,
    json_out: JsonOpt = None,
    mlflow: MlflowOpt = None,
    quiet: QuietOpt = False,
    max_images: MaxImagesOpt = None,
    image_key: ImageKeyOpt = None,
    storage_option: StorageOptionOpt = None,
) -> None:
    """Fine-tune an encoder to be robust to chosen edits while it stays close to the original:
    L = -mean cos(f'(x), f'(P(x,k))) - lam * mean cos(f(x), f'(x)); with --adversarial linf:4,
    L = mean ||f'(x_adv) - f(x)||^2 - lam * mean cos(f(x), f'(x)), x_adv by PGD on f' for each batch.

    Writes weights.safetensors (usable with --pretrained everywhere), train_log.csv, report.json and
    report.html (before/after on held-out images) to --out.
    """
    use_sources(image_key, None, storage_option)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from vfmaudit import FinetuneConfig, run_finetune
    from vfmaudit.report.console import print_finetune

    config = FinetuneConfig(inputs=[str(p) for p in images or []], model=model, pretrained=pretrained,
                            out=str(out_dir), perturbations=perturbations, lam=lam, epochs=epochs, steps=steps,
                            batch_size=batch_size, lr=lr, clip_grad=clip_grad, train=train, held_out=held_out,
                            seed=seed, device=device, resume=resume, overwrite=overwrite,
                            eval_perturbations=eval_perturbations, adversarial=adversarial,
                            attack_steps=attack_steps, max_images=max_images)
    config.validate()
    stages = Stages(quiet)
    # the step bar on a terminal; in a log the steps are stage lines like the rest (every tenth of the way)
    bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                   TextColumn("{task.fields[terms]}"), TimeRemainingColumn(), console=err)
    task = None

    def progress(step: int, total: int, row: dict) -> None:
        nonlocal task
        if quiet or not err.is_terminal:
            stages(f"training ({total} steps)", step, total)
            return
        if task is None:
            stages.suspend()
            bar.start()
            task = bar.add_task("train", total=total, completed=step - 1, terms="")
        bar.update(task, completed=step, terms=f"loss {row['loss']} robust {row['robustness']} "
                                               f"utility {row['utility']}")
        if step >= total:
            stop_bar()

    def stop_bar() -> None:  # once, and only if it ran: rich's stop prints a blank line off a terminal
        if bar.live.is_started:
            bar.stop()

    try:
        with stages:
            result = run_finetune(config, progress=progress, export=export, gate=str(gate) if gate else None,
                                  stage=stages)
    finally:
        stop_bar()
    print_finetune(result.report, str(out_dir), out)
    write_result_json(result, json_out, announce=not quiet)
    gated = result.report.get("gate")
    record_run(result.report, [out_dir], verdict="done" if not gated else ("passed" if gated["passed"] else "failed"),
               series=training_series(out_dir / "train_log.csv"))
    if "gate" in result.report and not result.report["gate"]["passed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(finetune)
