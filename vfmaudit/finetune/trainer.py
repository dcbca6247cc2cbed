"""The training loop: L = -mean cos(f'(x), f'(P(x,k))) - lam * mean cos(f(x), f'(x)); with
`adversarial`, FARE's L = mean ||f'(x_adv) - f(x)||^2 - lam * mean cos(f(x), f'(x)), x_adv found by PGD
on f' for each batch (finetune/adversarial.py).

AdamW with a linear warm-up then cosine decay, gradient clipping, mixed precision on CUDA. A
checkpoint (trainable parameters, optimizer, schedule, step) is written atomically every epoch,
so `resume` continues an interrupted run; batches are a function of (seed, step), so the
continued run is the one that would have happened.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vfmaudit.errors import ResumeMismatch, VfmauditError
from vfmaudit.finetune.batches import produce
from vfmaudit.finetune.config import FinetuneConfig

CHECKPOINT = "checkpoint.pt"
TRAIN_LOG = "train_log.csv"
LOG_COLUMNS = ["step", "epoch", "loss", "robustness", "utility", "lr", "grad_norm"]
# progress(step_done, total_steps, row) after every step
ProgressFn = Callable[[int, int, dict], None]


@dataclass
class TrainStats:
    steps: int
    resumed_from: int
    seconds: float
    images_per_s: float  # clean training images per second (each also runs perturbed)
    first: dict
    last: dict


def _to_tensor(images: np.ndarray, preprocess, device) -> torch.Tensor:
    return torch.from_numpy(preprocess.normalize(images)).to(device)


def schedule(step: int, total: int, warmup_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(model: torch.nn.Module, trainable: list[tuple[str, torch.nn.Parameter]], reference: torch.Tensor,
          images: np.ndarray, preprocess_fn, config: FinetuneConfig, out: Path, device: torch.device,
          progress: ProgressFn | None = None) -> TrainStats:
    """Train `model` in place; `reference` holds f(x) of every training image (the frozen original)."""
    plans = config.plan()
    spe = max(1, len(images) // config.batch_size)
    total = config.steps or spe * (config.epochs or 3)
    warmup_steps = max(1, int(round(config.warmup * total)))
    params = [p for _, p in trainable]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: schedule(s, total, warmup_steps))
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if amp else None
    start = 0
    ckpt_path, log_path = out / CHECKPOINT, out / TRAIN_LOG
    if config.resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ckpt.get("fingerprint") != config.fingerprint():
            prev = ckpt.get("fingerprint") or {}
            changed = sorted(k for k in set(prev) | set(config.fingerprint()) if prev.get(k) != config.fingerprint().get(k))
            raise ResumeMismatch(f"cannot resume: the checkpoint in {out} was trained with other {', '.join(changed)}; "
                                 f"pass the same options, or overwrite to start again", param="overwrite")
        named = dict(trainable)
        with torch.no_grad():
            for name, value in ckpt["trainable"].items():
                named[name].copy_(value)
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        if scaler and ckpt.get("scaler"):  # fp16's loss scale and its growth tracker: the run goes on as it was
            scaler.load_state_dict(ckpt["scaler"])
        start = int(ckpt["step"])
        _truncate_log(log_path, start)
    else:
        with open(log_path, "w", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_COLUMNS).writeheader()

    threat = config.adversarial_budget()
    adversary = None
    if threat:
        from vfmaudit.finetune.adversarial import Adversary

        adversary = Adversary(*threat, config.attack_steps, preprocess_fn, device)
    first = last = {}
    t0 = time.perf_counter()
    done = 0
    with open(log_path, "a", newline="") as log:
        writer = csv.DictWriter(log, fieldnames=LOG_COLUMNS)
        for batch in produce(images, plans, config.batch_size, config.seed, start, total, spe,
                             with_edits=adversary is None):
            x = _to_tensor(batch.clean, preprocess_fn, device)
            ref = reference[torch.from_numpy(batch.index).to(device)]
            if adversary is not None:  # the batch's PGD examples against the model as it is now
                xp = adversary.normalize(adversary.examples(model, batch.clean, ref,
                                                            config.seed * 1_000_003 + batch.step))
            else:
                xp = _to_tensor(batch.perturbed, preprocess_fn, device)
            try:
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    emb = model(torch.cat([x, xp]))
                e, ep = emb[: len(x)].float(), emb[len(x):].float()
                utility = (ref * e).sum(-1).mean()
                if adversary is not None:  # FARE: the adversarial embedding held at the original's clean one
                    robust = (ref * ep).sum(-1).mean()
                    loss = ((ep - ref) ** 2).sum(-1).mean() - config.lam * utility
                else:
                    robust = (e * ep).sum(-1).mean()
                    loss = -robust - config.lam * utility
                opt.zero_grad(set_to_none=True)
                if scaler:
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                else:
                    loss.backward()
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.clip_grad))
                if scaler:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                sched.step()
            except torch.cuda.OutOfMemoryError:
                raise VfmauditError(f"out of memory on {device} at batch_size {config.batch_size}: lower batch_size, "
                                    f"or train fewer parameters (train last:1 or norm)",
                                    param=("batch_size", "train")) from None
            row = {"step": batch.step + 1, "epoch": batch.step // spe + 1, "loss": f"{loss.item():.6f}",
                   "robustness": f"{robust.item():.6f}", "utility": f"{utility.item():.6f}",
                   "lr": f"{sched.get_last_lr()[0]:.3e}", "grad_norm": f"{grad_norm:.6g}"}
            writer.writerow(row)
            first = first or row
            last = row
            done += 1
            step_done = batch.step + 1
            if step_done % spe == 0 or step_done == total:
                log.flush()
                _save_atomic({"fingerprint": config.fingerprint(), "step": step_done,
                              "trainable": {n: p.detach().cpu() for n, p in trainable},
                              "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                              "scaler": scaler.state_dict() if scaler else None}, ckpt_path)
            if progress:
                progress(step_done, total, row)
    seconds = time.perf_counter() - t0
    return TrainStats(steps=total, resumed_from=start, seconds=seconds,
                      images_per_s=done * config.batch_size / seconds if seconds > 0 else 0.0, first=first, last=last)


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log rows of the steps the checkpoint holds (the others are redone)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if None not in r.values() and int(r["step"]) <= step]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
        w.writeheader()
        w.writerows(rows)
