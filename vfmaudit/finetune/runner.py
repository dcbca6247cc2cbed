"""Robust fine-tuning end to end: data, split, train, weights, before/after evaluation on held-out images."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit import perturb
from vfmaudit.artefact.provenance import package_versions, report_header
from vfmaudit.perturb.plan import parse_perturbations
from vfmaudit.data.source import default_options, read_items
from vfmaudit.data.sources import ImageItem, sample_crops
from vfmaudit.errors import ImageDecodeError, VfmauditError
from vfmaudit.files import check_output_folder, default_permissions, FolderResult, file_sha256, lock_folder, write_json
from vfmaudit.finetune.config import FinetuneConfig, trainable_spec
from vfmaudit.finetune.trainable import image_tower, select_trainable
from vfmaudit.finetune.trainer import CHECKPOINT, ProgressFn, train
from vfmaudit.progress import StageFn, no_stages
from vfmaudit.metrics import drift_metrics
from vfmaudit.metrics.agreement import neighbour_agreement

SCHEMA = "vfmaudit.finetune"
WEIGHTS = "weights.safetensors"
REPORT_JSON = "report.json"


class FinetuneResult(FolderResult):
    @property
    def weights(self) -> Path:
        return self.out_dir / WEIGHTS


def _group(item_id: str) -> str:
    """Crops of one photograph stay together on one side of the split."""
    return item_id.split("#", 1)[0]


def split_items(items: list[ImageItem], held_out: float, seed: int) -> tuple[list[ImageItem], list[ImageItem]]:
    groups: dict[str, list[ImageItem]] = defaultdict(list)
    for it in items:
        groups[_group(it.id)].append(it)
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    n_held = max(1, int(round(len(names) * held_out)))
    if len(names) < 2:
        raise VfmauditError("fine-tuning needs at least 2 images (some are held out to measure the result)",
                            param="inputs")
    held = {names[i] for i in order[:n_held]}
    return ([it for n in names if n not in held for it in groups[n]],
            [it for n in names if n in held for it in groups[n]])


def _prepare(items: list[ImageItem], preprocess) -> tuple[np.ndarray, list[str], list[dict]]:
    images, ids, skipped = [], [], []
    for it in items:
        try:
            images.append(preprocess.prepare(it.load()))
            ids.append(it.id)
        except (ImageDecodeError, OSError, ValueError) as e:
            skipped.append({"input": it.id, "reason": str(e)})
    h, w = preprocess.size
    return (np.stack(images) if images else np.empty((0, h, w, 3), np.uint8)), ids, skipped


def _embed(module, images: np.ndarray, preprocess, device, batch: int = 32) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = torch.from_numpy(preprocess.normalize(images[s:s + batch])).to(device)
            out.append(module(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)


def _flops_per_image(module, preprocess) -> float | None:
    """Forward FLOPs of one image (torch's counter), for the GPU estimate."""
    import torch

    try:
        from torch.utils.flop_counter import FlopCounterMode

        x = torch.zeros(1, 3, *preprocess.size)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            module(x)
        return float(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - an estimate only
        return None


def evaluate(before, after, images: np.ndarray, preprocess, device, eval_plans, trained: set[str],
             seed: int, stage: StageFn = no_stages) -> dict:
    """Robustness of the original and the fine-tuned model on the held-out images, and their agreement."""
    what = f"evaluating before and after on {len(images)} held-out images (families)"
    stage(what, 0, len(eval_plans))
    clean_b, clean_a = _embed(before, images, preprocess, device), _embed(after, images, preprocess, device)
    utility = np.sum(clean_b * clean_a, axis=1)
    families = {}
    for i, plan in enumerate(eval_plans):
        stage(what, i, len(eval_plans))
        fam = perturb.get(plan.name)
        variants = np.concatenate([perturb.apply(images, plan.name, lv, seed=seed) for lv in plan.levels])
        vb = _embed(before, variants, preprocess, device).reshape(len(plan.levels), len(images), -1).transpose(1, 0, 2)
        va = _embed(after, variants, preprocess, device).reshape(len(plan.levels), len(images), -1).transpose(1, 0, 2)
        mb, ma = drift_metrics(clean_b, vb), drift_metrics(clean_a, va)
        entry = {"trained": plan.name in trained, "levels": list(plan.levels), "units": fam.units}
        for name in mb:
            b, a = float(np.mean(mb[name])), float(np.mean(ma[name]))
            entry[name] = {"before": b, "after": a, "change": a - b, "relative_change": (a - b) / b if b else None}
        families[plan.name] = entry
    return {"images": int(len(images)), "utility_cosine": {"mean": float(utility.mean()), "min": float(utility.min())},
            "agreement": neighbour_agreement(clean_b, clean_a), "families": families}


def worst_case(config: FinetuneConfig, before, after, images: np.ndarray, preprocess, device,
               stage: StageFn = no_stages) -> dict:
    """The held-out worst case at the training budget, before and after: PGD (attack_steps, 1 - cos) on
    each model, the rounded images encoded by the same model."""
    from vfmaudit.finetune.adversarial import Adversary

    norm, eps = config.adversarial_budget()
    stage(f"the worst case at {norm} {eps:g} before and after (PGD-{config.attack_steps}, held-out images)", 0, 0)
    adversary = Adversary(norm, eps, config.attack_steps, preprocess, device)
    cos = {name: adversary.worst_case(m, images, lambda x, m=m: _embed(m, x, preprocess, device), config.seed)
           for name, m in (("before", before), ("after", after))}
    entry = {"norm": norm, "eps": eps, "method": "pgd", "steps": config.attack_steps, "loss": "cosine"}
    for stat, fn in (("cosine_mean", np.mean), ("cosine_worst", np.min)):
        b, a = float(fn(cos["before"])), float(fn(cos["after"]))
        entry[stat] = {"before": b, "after": a, "change": a - b}
    return entry


def _check_one_batch(n_train: int, n_held: int, batch_size: int) -> None:
    if n_train < batch_size:
        raise VfmauditError(f"{n_train} training images (after holding out {n_held}) are fewer than one batch of "
                            f"{batch_size}; pass more images or lower batch_size", param="batch_size")


def run_finetune(config: FinetuneConfig, progress: ProgressFn | None = None,
                 on_complete: Callable[[FinetuneResult], object] | None = None,
                 stage: StageFn | None = None) -> FinetuneResult:
    """Fine-tune `config.model` for robustness to `config.perturbations`; results in config.out.

    progress(step, total, row) follows training, stage(what, i, n) the set-up and the evaluation.
    """
    import torch

    from vfmaudit.models import build_model
    from vfmaudit.runtime.torch_backend import resolve_device

    stage = stage or no_stages
    config.validate()
    device = resolve_device(config.device)
    stage("listing the images", 0, 0)
    if config.inputs:
        capped = dataclasses.replace(default_options(), max_images=config.max_images or default_options().max_images)
        items = read_items(config.inputs, capped)
    else:
        items = sample_crops(config.crops_per_image, config.seed)[:config.max_images]
    train_items, held_items = split_items(items, config.held_out, config.seed)
    _check_one_batch(len(train_items), len(held_items), config.batch_size)  # before the model is built
    stage(f"building {config.model}", 0, 0)
    built = build_model(config.model, pretrained=config.pretrained, seed=config.seed)
    out = Path(config.out)
    check_output_folder(out)
    with lock_folder(out):
        if (out / CHECKPOINT).exists() and not (config.resume or config.overwrite):
            raise VfmauditError(f"{out} already holds a fine-tuning run; pass resume to continue it, overwrite to "
                                f"start again, or out to write elsewhere", param=("resume", "overwrite", "out"))
        if config.overwrite:
            for name in (CHECKPOINT, WEIGHTS, "train_log.csv", REPORT_JSON, "report.html"):
                (out / name).unlink(missing_ok=True)
        stage(f"reading {len(train_items)} training and {len(held_items)} held-out images", 0, 0)
        train_images, _, skipped = _prepare(train_items, built.preprocess)
        held_images, held_ids, skipped_held = _prepare(held_items, built.preprocess)
        _check_one_batch(len(train_images), len(held_items), config.batch_size)  # again: some may be unreadable
        if len(held_images) == 0:
            raise VfmauditError("no held-out image could be read; pass more images", param="inputs")
        frozen = copy.deepcopy(built.module).eval().to(device)
        model = built.module.to(device).eval()  # eval: no dropout, normalisation statistics frozen
        mode, n = trainable_spec(config.train)
        names = select_trainable(model, mode, n)
        tower = image_tower(model)
        trainable = [(name, tower.get_parameter(name)) for name in names]
        stage(f"embedding {len(train_images)} training images with the original model", 0, 0)
        reference = torch.from_numpy(_embed(frozen, train_images, built.preprocess, device)).to(device)
        flops = _flops_per_image(frozen, built.preprocess)
        stats = train(model, trainable, reference, train_images, built.preprocess, config, out, device, progress)
        stage("saving weights.safetensors", 0, 0)
        weights_path = _save_weights(built.module.model, out / WEIGHTS)
        # adversarial training replaces -p's edits: no family was trained
        trained = set() if config.adversarial_budget() else {p.name for p in config.plan()}
        eval_plans = parse_perturbations(config.eval_perturbations, config.eval_levels)
        t0 = time.perf_counter()
        held = evaluate(frozen, model, held_images, built.preprocess, device, eval_plans, trained, config.seed,
                        stage=stage)
        if config.adversarial_budget():
            held["worst_case"] = worst_case(config, frozen, model, held_images, built.preprocess, device, stage)
        report = {
            **report_header(SCHEMA, 1), "model": {"spec": str(built.spec), "weights": built.weights.describe(),
                                                  "embedding_dim": built.embed_dim},
            "random_weights": built.weights.kind == "random",
            "weights_file": {"path": str(weights_path), "sha256": file_sha256(weights_path),
                             "use_with": f"--model {built.spec} --pretrained {weights_path}"},
            "config": {**config.fingerprint(), "device": str(device)},
            "trained_families": sorted(trained), "trainable_parameters": int(sum(p.numel() for _, p in trainable)),
            "trainable_tensors": len(names),
            "training": {"steps": stats.steps, "resumed_from_step": stats.resumed_from, "seconds": stats.seconds,
                         "images_per_s": stats.images_per_s, "first_step": stats.first, "last_step": stats.last,
                         "train_images": int(len(train_images)), "forward_gflops_per_image":
                             flops / 1e9 if flops else None},
            "held_out": {**held, "ids": held_ids, "evaluation_seconds": time.perf_counter() - t0},
            "skipped": skipped + skipped_held, "versions": package_versions(),
        }
        write_json(report, out / REPORT_JSON)
        result = FinetuneResult(report, out)
        if on_complete:
            on_complete(result)
    return result


def _save_weights(model, path: Path) -> Path:
    """The whole model's state dict as safetensors, written under a temporary name then renamed."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp))
    default_permissions(tmp)  # as readable as any file the user writes (not a temporary file's 0600)
    tmp.replace(path)
    return path
