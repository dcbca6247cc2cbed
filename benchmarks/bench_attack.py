"""Worst case against average case, and attack throughput, on this machine's CPU (both cores).

    python benchmarks/bench_attack.py [--models openclip:ViT-S-32,timm:resnet18] [--images 2] [--json out.json]

For each model (seeded random weights: no network here, so the figures are about the method and
the architecture, not a released checkpoint), on the first --images built-in photographs:

- at eps = 1, 2, 4 / 255 (L-inf), the mean divergence radius of PGD-10's images (the worst case
  found, the ball over all budgets up to each one) beside the same radius for uniform random noise
  of the same budgets (an average case, on the same scale);
- images/s for PGD-10, APGD-100 and Square-1000, each image attacked once at eps 4/255;
- an estimate for one GPU from the FLOP count: PGD and APGD cost a forward and a backward (about 3
  forwards) per step, Square one forward per query, at an assumed sustained 100 TFLOP/s (TF32 on an
  H100/H200-class GPU, about a fifth of its dense peak): stated, not measured.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import machine, table

GPU_FLOPS = 100e12  # the stated assumption above
METHODS = (("pgd", {"steps": 10}, 3 * 10), ("apgd", {"steps": 100}, 3 * 100), ("square", {"queries": 1000}, 1000))


def forward_flops(model: str) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vfmaudit.models.factory import build_model

    built = build_model(model, seed=0)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        built.module(torch.zeros(1, 3, *built.preprocess.size))
    return float(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="openclip:ViT-S-32,timm:resnet18")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    from PIL import Image

    from vfmaudit.attack import AttackConfig, run_attack
    from vfmaudit.data.sources import sample_items

    folder = Path(tempfile.mkdtemp(prefix="bench_attack"))
    for i, item in enumerate(sample_items(args.images)):
        Image.fromarray(item.load()).save(folder / f"{i:02d}.png")
    radius_rows, speed_rows, records = [], [], []
    for model in args.models.split(","):
        worst = run_attack(AttackConfig(images=[str(folder)], model=model, eps=(1, 2, 4), steps=10,
                                        batch_size=args.images))
        for b in worst.budgets:  # the attack's own average case: one uniform random change of each budget
            w, average = b["divergence_radius"]["mean"], b["random"]["divergence_radius"]["mean"]
            radius_rows.append([model, f"{b['eps']:g}/255", f"{w:.4f}", f"{average:.5f}",
                                f"{w / max(average, 1e-12):,.0f}x"])
            records.append({"model": model, "eps": b["eps"], "worst_radius": w, "average_radius": average})
        flops = forward_flops(model)
        for method, extra, forwards in METHODS:
            t0 = time.perf_counter()
            run_attack(AttackConfig(images=[str(folder)], model=model, eps=(4,), method=method,
                                    batch_size=args.images, **extra))
            rate = args.images / (time.perf_counter() - t0)
            gpu = GPU_FLOPS / (forwards * flops)
            speed_rows.append([model, f"{method}-{next(iter(extra.values()))}", f"{rate:.3f}",
                               f"{flops / 1e9:.2f}", f"{gpu:,.0f}"])
            records.append({"model": model, "method": method, **extra, "cpu_images_per_s": rate,
                            "forward_gflop": flops / 1e9, "gpu_estimate_images_per_s": gpu})
    print(f"Attacks on {args.images} built-in photographs ({machine()})\n")
    print(table(["model", "eps", "worst-case radius (PGD-10)", "average-case radius (uniform noise)", "ratio"],
                radius_rows))
    print()
    print(table(["model", "attack", "CPU images/s (2 cores)", "forward GFLOP", "GPU estimate images/s"],
                speed_rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": records}, indent=2))


if __name__ == "__main__":
    main()
