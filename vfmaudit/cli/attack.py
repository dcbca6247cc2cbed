"""`vfmaudit attack`: one call of vfmaudit.attack.run_attack, rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from vfmaudit.data.source import sources_help
from vfmaudit.cli.common import (MlflowOpt, ImageKeyOpt, StorageOptionOpt, use_sources, DeviceOpt, GpusPerWorkerOpt, JsonOpt, LevelsOpt, PerturbationsOpt, PretrainedOpt,
                                 QuietOpt, RayAddressOpt, Stages, WorkersOpt, err, out, paths, user_errors,
                                 write_result_json)
from vfmaudit.cli.tracked import record_run, tracked
from vfmaudit.errors import VfmauditError
from vfmaudit.models.spec import DEFAULT_MODEL


@user_errors
@tracked("attack")
def attack(
    images: Annotated[Optional[List[str]], typer.Argument(
        help=f"Images: {sources_help()} Default: the built-in sample photographs.", show_default=False)] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="openclip:ARCH or timm:NAME (a torch model: pgd and apgd "
                                       "need its gradients), or for square also an artefact (model.onnx, "
                                       "model.engine).")] = DEFAULT_MODEL,
    pretrained: PretrainedOpt = None,
    norm: Annotated[str, typer.Option(help="linf or l2.")] = "linf",
    eps: Annotated[str, typer.Option(
        help="Budgets, comma-separated: units of 1/255 for linf (4 = 4/255), the L2 norm of the change on the "
             "[0, 1] image for l2; at the model's input size, after its resize and crop.")] = "1,2,4",
    method: Annotated[str, typer.Option(
        help="pgd (random start, momentum 0.9, as RobustVLM) or apgd (AutoAttack's step-size rule): white-box, on "
             "a torch model; square (the score-based Square attack, L-inf or L2): black-box, on any model or artefact "
             "(.onnx, INT8, .engine); search: the oracle-gated edit search (composes catalogue edits, each step "
             "the one that most raises the tested model's loss, while --oracle still gives the image its label; "
             "on --dataset reports SA, PA and FMR = PA / SA), on any model or artefact.")] = "pgd",
    loss: Annotated[str, typer.Option(
        help="cosine (1 - cos to the clean embedding) or l2 (FARE's squared distance).")] = "cosine",
    steps: Annotated[int, typer.Option(help="Iterations per restart (RobustVLM: 10 for PGD, 100 for APGD).")] = 10,
    restarts: Annotated[int, typer.Option(help="Random restarts; the best per image is kept.")] = 1,
    step_size: Annotated[Optional[float], typer.Option(
        help="PGD's step as a fraction of eps (default: eps / 4, at least 1/255 for linf).")] = None,
    queries: Annotated[int, typer.Option(help="square: encodes per image and restart (AutoAttack: 5,000); search: "
                                              "encodes of the tested model per image.")] = 1000,
    backend: Annotated[str, typer.Option(help="square: the backend that runs the model (auto: by the file suffix).")]
        = "auto",
    transfer_to: Annotated[Optional[List[Path]], typer.Option(
        "--transfer-to", help="Artefacts (.onnx, INT8 .onnx, .engine) to replay the images found on: per artefact "
                              "and eps the worst-case cosine and radius and the gap to the attacked model. "
                              "Repeat the flag for several.")] = None,
    oracle: Annotated[Optional[str], typer.Option(
        help="search: the oracle model (openclip:ARCH, timm:NAME or an artefact) that must keep giving each image "
             "its label.")] = None,
    oracle_pretrained: Annotated[Optional[str], typer.Option(help="search: the oracle's weights (as --pretrained).")]
        = None,
    oracle_mode: Annotated[str, typer.Option(
        help="search: zero-shot (an OpenCLIP oracle over the class names, prompt 'an image of {class}', as the "
             "paper), nearest (the label of the oracle's nearest clean training image; without --dataset the "
             "image must stay its own nearest clean image), or auto (zero-shot where it can).")] = "auto",
    dataset: Annotated[Optional[str], typer.Option(
        help="search: labelled images (a folder of class folders, a CSV of path,label, or builtin:textures|"
             "shapes|digits, as downstream): the test split is searched, the training split fits the classifier.")]
        = None,
    max_per_class: Annotated[Optional[int], typer.Option(help="search: at most this many images per class.")] = None,
    classifier: Annotated[str, typer.Option(
        help="search on --dataset: the tested model's classifier whose cross-entropy the search raises: zero-shot, "
             "linear-probe or knn (k = 20), as downstream builds them; auto: zero-shot for OpenCLIP models, else "
             "linear-probe. Without --dataset the loss is 1 - cos to the clean embedding.")] = "auto",
    perturbations: PerturbationsOpt = "everyday",
    levels: LevelsOpt = 5,
    max_edits: Annotated[int, typer.Option(help="search: at most this many edits per chain (each family once).")] = 3,
    max_images: Annotated[Optional[int], typer.Option(
        help="Attack only the first this many readable images (default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random weights and of the random starts.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Images attacked together.")] = 8,
    device: DeviceOpt = "cpu",
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for attack.json, per_image.csv, report.html and (--save-images) the images.")]
        = None,
    save_images: Annotated[bool, typer.Option(
        "--save-images", help="Write the clean and adversarial images (PNG, the exact bytes encoded) under --out.")]
        = False,
    resume: Annotated[bool, typer.Option(
        help="Continue an interrupted run in --out without redoing its finished shards (the same options).")]
        = False,
    overwrite: Annotated[bool, typer.Option(help="Discard an earlier attack in --out and start again.")] = False,
    engine: Annotated[str, typer.Option(
        help="local, or ray: the shards attacked by Ray actors, one model each (pip install 'vfmaudit[ray]'; "
             "needs --out, on a filesystem the cluster shares).")] = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 2,
    gpus_per_worker: GpusPerWorkerOpt = 0.0,
    shard_size: Annotated[int, typer.Option(
        help="Images per shard (rounded up to a multiple of --batch-size): the unit of work, retry and resume.")]
        = 64,
    json_out: JsonOpt = None,
    mlflow: MlflowOpt = None,
    quiet: QuietOpt = False,
    image_key: ImageKeyOpt = None,
    storage_option: StorageOptionOpt = None,
) -> None:
    """Worst-case drift within a budget: embedding attacks, white-box (PGD, APGD) on a torch model or
    black-box (Square) on any model or exported artefact; or the oracle-gated edit search (--method
    search --oracle SPEC) over the catalogue's edits, with FMR on labelled data.

    Each image is attacked at its model input size; the adversarial image is rounded to uint8
    inside the budget, and every number (cosine to the clean embedding, the divergence radius over
    the clean and adversarial embeddings at every budget up to each one) comes from encoding that
    uint8 image through the ordinary encode path. Exit 0 on success, 2 on unusable input.
    """
    use_sources(image_key, None, storage_option)
    from vfmaudit.api import run_attack
    from vfmaudit.attack import AttackConfig
    from vfmaudit.attack.threat import parse_budgets
    from vfmaudit.report.console import print_attack, print_search

    if save_images and out_dir is None:
        raise VfmauditError("save_images writes under out: pass --out DIR too", param=("save_images", "out"))
    config = AttackConfig(images=paths(images), model=model, pretrained=pretrained, seed=seed, norm=norm,
                          eps=parse_budgets(eps), method=method, loss=loss, steps=steps, restarts=restarts,
                          step_size=step_size, batch_size=batch_size, device=device, queries=queries, backend=backend,
                          transfer_to=paths(transfer_to) or [], max_images=max_images,
                          out=str(out_dir) if out_dir else None, save_images=save_images, oracle=oracle,
                          oracle_pretrained=oracle_pretrained, oracle_mode=oracle_mode, dataset=dataset,
                          max_per_class=max_per_class, classifier=classifier, perturbations=perturbations,
                          levels=levels, max_edits=max_edits, resume=resume, overwrite=overwrite, engine=engine,
                          ray_address=ray_address,
                          workers=workers, gpus_per_worker=gpus_per_worker, shard_size=shard_size)
    with Stages(quiet) as progress:  # warnings said before the minutes the attack takes
        result = run_attack(config, progress=progress, warn=lambda text: err.print(
            f"warning: {text}", markup=False, highlight=False, soft_wrap=True))
    (print_search if method == "search" else print_attack)(result, out)
    write_result_json(result, json_out)
    record_run(result.to_json(), [out_dir])


def register(app: typer.Typer) -> None:
    app.command()(attack)
