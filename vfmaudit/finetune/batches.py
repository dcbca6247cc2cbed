"""Training batches made in a background thread: clean images and one perturbed copy each.

Every step draws, per image, a family of the plan and a level uniformly from its (sub-)domain,
from a stream keyed on (seed, step): the same run gives the same batches, and a resumed run
continues with exactly the batches the interrupted one would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from vfmaudit import perturb
from vfmaudit.perturb.plan import FamilyPlan
from vfmaudit.prefetch import prefetched


@dataclass
class Batch:
    step: int
    index: np.ndarray  # rows of the training images
    clean: np.ndarray  # uint8 (B, H, W, 3)
    perturbed: np.ndarray | None  # uint8 (B, H, W, 3); None when the run asked for no edits
    edits: list[tuple[str, float]]


def make_batch(images: np.ndarray, plans: list[FamilyPlan], batch_size: int, seed: int, step: int,
               steps_per_epoch: int, with_edits: bool = True) -> Batch:
    epoch, within = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(len(images))
    index = order[(within * batch_size + np.arange(batch_size)) % len(images)]
    rng = np.random.default_rng([seed, 1_000_003, step])
    clean = np.ascontiguousarray(images[index])
    if not with_edits:  # adversarial training makes its own second copy
        return Batch(step, index, clean, None, [])
    perturbed = np.empty_like(clean)
    edits = []
    for i in range(len(index)):
        plan = plans[int(rng.integers(len(plans)))]
        lo, hi = min(plan.levels), max(plan.levels)
        level = float(rng.uniform(lo, hi))
        perturbed[i] = perturb.apply(clean[i], plan.name, level, seed=seed + step)
        edits.append((plan.name, level))
    return Batch(step, index, clean, perturbed, edits)


def produce(images: np.ndarray, plans: list[FamilyPlan], batch_size: int, seed: int, start: int, stop: int,
            steps_per_epoch: int, prefetch: int = 2, with_edits: bool = True) -> Iterator[Batch]:
    """Batches for steps [start, stop), prepared ahead in a worker thread (Numba kernels release the GIL);
    with_edits=False: clean images only."""
    return prefetched(lambda: (make_batch(images, plans, batch_size, seed, step, steps_per_epoch, with_edits)
                               for step in range(start, stop)), prefetch, "vfmaudit-finetune-batches")
