"""What vfmaudit's attack loop costs per step against the PGD loop a user would write, and torchattacks' PGD.

    python benchmarks/bench_attack_loop.py [--model openclip:ViT-S-32] [--batch 8] [--steps 10] [--rounds 5]
    pip download --no-deps torchattacks && unzip it; VFMAUDIT_TORCHATTACKS_PATH=<unpacked wheel> adds its row

All sides attack the same model (seeded random weights), the same batch of built-in photographs, with
the same differentiable normalisation and the same loss (1 - cosine to the clean embedding), L-inf
eps 4/255, the same number of steps, in alternated rounds (best of each), on every core of this machine:

- plain loop: x + delta, forward, loss, backward, delta += alpha * sign(grad), clamp to the ball and to
  [0, 1] (no random start, no momentum, no best-so-far: the least a loop can do);
- vfmaudit pgd(): the loop `vfmaudit attack --method pgd` runs (random start, momentum 0.9 on unit
  steps, best delta kept per image, projections);
- vfmaudit apgd(): the APGD loop of `--method apgd` with the same number of gradient steps (step-size
  schedule, momentum 0.75, the best point kept and returned to at each halving): its per-step cost
  against the plain loop's (issue 41's target: within 10 %);
- vfmaudit attack end to end: run_attack's batch (the model's clean embedding, the attack, the rounding
  to uint8 and the encoding of every adversarial image through the ordinary encode path);
- torchattacks.PGD (when importable) with a wrapper whose logits are (cos, 0) for label 0: its
  cross-entropy is a monotone function of the cosine per image, so its sign steps are those of -cos.
The figure that matters is the ratio per step: what the framework adds to the forward and backward.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path


from _common import machine, table

EPS = 4 / 255


def load_torchattacks():
    extra = os.environ.get("VFMAUDIT_TORCHATTACKS_PATH")
    if extra and extra not in sys.path:
        sys.path.insert(0, extra)
    if importlib.util.find_spec("torchattacks") is None:
        return None
    import torchattacks

    return torchattacks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="openclip:ViT-S-32")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    from vfmaudit.attack import AttackConfig
    from vfmaudit.attack.attacker import Attacker
    from vfmaudit.attack.threat import Normalize, default_step, unit_images
    from vfmaudit.attack.whitebox import apgd, embedding_loss, pgd
    from vfmaudit.data.sources import sample_items
    from vfmaudit.models.preprocess import prepare_batch

    config = AttackConfig(model=args.model, eps=(4.0,), steps=args.steps, batch_size=args.batch, method="pgd")
    attacker = Attacker(config)
    module, spec = attacker.encoder.module, attacker.built.preprocess
    for p in module.parameters():
        p.requires_grad_(False)
    items = sample_items(args.batch)
    images = prepare_batch(spec, [it.load() for it in items])
    normalize = Normalize(spec, torch.device("cpu"), torch.float32)
    fn = lambda x01: module(normalize(x01))  # noqa: E731 - the attacked function every side uses
    x01 = unit_images(images, torch.device("cpu"))
    with torch.no_grad():
        e0 = fn(x01)
    loss = embedding_loss("cosine")
    alpha = default_step("linf", EPS)

    def plain() -> None:
        delta = torch.zeros_like(x01)
        for _ in range(args.steps):
            delta.requires_grad_(True)
            values = 1.0 - torch.nn.functional.cosine_similarity(fn((x01 + delta).clamp(0, 1)), e0, dim=1)
            grad, = torch.autograd.grad(values.sum(), delta)
            delta = (delta.detach() + alpha * grad.sign()).clamp(-EPS, EPS)
            delta = (x01 + delta).clamp(0, 1) - x01

    def ours() -> None:
        pgd(fn, x01, e0, loss, "linf", EPS, args.steps, alpha, 1, torch.Generator().manual_seed(0))

    def ours_apgd() -> None:
        apgd(fn, x01, e0, loss, "linf", EPS, args.steps, 1, torch.Generator().manual_seed(0))

    e_clean = e0.numpy()

    def end_to_end() -> None:
        attacker.encoder.encode(images)  # the clean embeddings run_attack computes first
        adv = attacker.attack_batch(images, e_clean, 0)
        attacker.encoder.encode(adv[0])

    sides = [("plain torch loop", plain), ("vfmaudit pgd()", ours), ("vfmaudit apgd()", ours_apgd),
             ("vfmaudit attack (end to end)", end_to_end)]
    ta = load_torchattacks()
    if ta is not None:
        class CosineLogits(torch.nn.Module):
            def forward(self, x01):
                cos = torch.nn.functional.cosine_similarity(fn(x01), e0, dim=1)
                return torch.stack([cos, torch.zeros_like(cos)], dim=1)

        attack = ta.PGD(CosineLogits(), eps=EPS, alpha=alpha, steps=args.steps, random_start=True)
        labels = torch.zeros(args.batch, dtype=torch.long)
        sides.append(("torchattacks PGD", lambda: attack(x01, labels)))
    best = {name: float("inf") for name, _ in sides}
    for name, run in sides:
        run()  # warm-up
    for _ in range(args.rounds):
        for name, run in sides:
            t0 = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - t0)
    base = best["plain torch loop"]
    rows, records = [], []
    for name, _ in sides:
        per_step = best[name] / args.steps / args.batch * 1000
        rows.append([name, f"{per_step:.2f}", f"{best[name] / base:.3f}x"])
        records.append({"side": name, "seconds": best[name], "ms_per_image_step": per_step, "vs_plain": best[name] / base})
    print(f"Attack loop, {args.model}, batch {args.batch}, {args.steps} steps, L-inf 4/255, all cores "
          f"({torch.get_num_threads()} threads; {machine()})"
          + ("" if ta is not None else "; torchattacks not importable: row left out") + "\n")
    print(table(["side", "ms per image per step", "time / plain loop"], rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": records}, indent=2))


if __name__ == "__main__":
    main()
