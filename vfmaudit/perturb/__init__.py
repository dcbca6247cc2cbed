"""The perturbation engine: families x levels on uint8 NHWC RGB batches, deterministic by seed.

    >>> import numpy as np
    >>> from vfmaudit import perturb
    >>> img = np.zeros((32, 32, 3), np.uint8)
    >>> perturb.apply(img, "brightness", 1.5).shape
    (32, 32, 3)
"""

from __future__ import annotations

import numpy as np

from vfmaudit.plugins import load_plugins as _load_plugins
from vfmaudit.perturb import families as _families  # noqa: F401  (imports every family module: registers them)
from vfmaudit.perturb._batch import as_batch, get_num_threads, image_seeds, set_num_threads
from vfmaudit.perturb.plan import FamilyPlan, levels, parse_perturbations, plan_json
from vfmaudit.perturb.presets import Preset, PresetEntry, get_preset, presets, register_preset
from vfmaudit.perturb.registry import Family, all_families, get, register, unregister

__all__ = ["apply", "families", "levels", "get", "Family", "register", "unregister", "set_num_threads",
           "get_num_threads", "Preset", "PresetEntry", "presets", "get_preset", "register_preset", "FamilyPlan",
           "parse_perturbations", "plan_json"]


def families() -> dict[str, Family]:
    """All registered families by name, in catalogue (registration) order."""
    return all_families()


def apply(images: np.ndarray, name: str, level: float, seed: int = 0) -> np.ndarray:
    """Apply family `name` at `level` to uint8 RGB images (H,W,3) or (N,H,W,3); same shape and dtype out.

    Stochastic families draw from a stream keyed on (seed, family, level, image content), so an
    image gets the same bytes alone or in any batch, on any number of threads.
    """
    fam = get(name)
    level = fam.check_level(level)
    batch, single = as_batch(images)
    if batch.shape[0] == 0:
        return images.copy()
    if fam.is_identity(level):
        out = batch.copy()
    else:
        seeds = image_seeds(batch, seed, name, level) if fam.stochastic else np.zeros(batch.shape[0], np.uint64)
        out = fam.apply_batch(batch, level, seeds)
    return out[0] if single else out

# last: plugins from outside the repository register into this registry (and the others) now
_load_plugins()
