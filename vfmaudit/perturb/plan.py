"""Plans of families and levels: what every command that perturbs (audit, downstream, fine-tuning,
gate, attack) reads from `--perturbations` and `--levels`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.perturb.presets import get_preset, presets
from vfmaudit.perturb.registry import all_families, get


@dataclass(frozen=True)
class FamilyPlan:
    name: str
    levels: tuple[float, ...]


def levels(name: str, n: int, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """n equally spaced levels over the family's domain, or over [lo, hi] inside it.

    n = 1 is the strongest level: the end of the range farthest from the identity (JPEG quality 10,
    not 100, which would leave the image as it is); the top end when both are as far."""
    fam = get(name)
    if int(n) != n or n < 1:
        raise VfmauditError(f"number of levels must be a positive integer, got {n}", param="levels")
    lo = fam.lo if lo is None else fam.check_level(lo)
    hi = fam.hi if hi is None else fam.check_level(hi)
    if lo > hi:
        raise VfmauditError(f"sub-domain [{lo:g}, {hi:g}] of '{name}' is empty; pass lo <= hi")
    if n == 1:
        return np.array([lo if abs(lo - fam.identity) > abs(hi - fam.identity) else hi], dtype=np.float64)
    return np.linspace(lo, hi, int(n))


def parse_perturbations(text: str, n_levels: int) -> list[FamilyPlan]:
    """'all', a preset name, or a comma list of NAME, NAME:LO:HI (a sub-domain) or preset names -> one plan
    per family. Preset entries with explicit levels (ImageNet-C's severities 1..5) keep them; the
    others get n_levels levels."""
    if n_levels < 1:
        raise VfmauditError(f"levels must be >= 1, got {n_levels}", param="levels")
    text = (text or "all").strip()
    if text.lower() == "all":
        return [FamilyPlan(n, tuple(levels(n, n_levels))) for n in all_families()]
    tokens: list[tuple[str, float | None, float | None, tuple[float, ...] | None]] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        name, *bounds = token.split(":")
        if not bounds and name in presets() and name not in all_families():
            tokens += [(e.family, *e.bounds(), e.levels) for e in get_preset(name).entries]
            continue
        if bounds and len(bounds) != 2:
            raise VfmauditError(f"'{token}': write a sub-domain as NAME:LO:HI, e.g. brightness:0.5:1.5",
                                param="perturbations")
        try:
            lo, hi = (float(bounds[0]), float(bounds[1])) if bounds else (None, None)
        except ValueError:
            raise VfmauditError(f"'{token}': LO and HI must be numbers", param="perturbations") from None
        tokens.append((name, lo, hi, None))
    plans: list[FamilyPlan] = []
    for name, lo, hi, fixed in tokens:
        if any(p.name == name for p in plans):
            raise VfmauditError(f"perturbation '{name}' is listed twice", param="perturbations")
        chosen = fixed if fixed is not None else levels(name, n_levels, lo, hi)
        plan = FamilyPlan(name, tuple(float(v) for v in chosen))
        if all(get(name).is_identity(lv) for lv in plan.levels):
            raise VfmauditError(f"'{name}' at {plan.levels[0]:g} is its identity (the image unchanged): nothing to "
                                f"measure; pass a sub-domain that holds other levels", param="perturbations")
        plans.append(plan)
    if not plans:
        raise VfmauditError("perturbations is empty; pass 'all' or names such as jpeg,brightness",
                            param="perturbations")
    return plans


# More levels than this per family rarely show anything new, and each is one more encoded variant per image.
SANE_LEVELS = 32


def plan_warnings(plans: list[FamilyPlan]) -> list[str]:
    """Plans that cost more than they can tell: more levels than SANE_LEVELS, or than a discrete family has."""
    warnings = []
    for p in plans:
        n, fam = len(p.levels), get(p.name)
        lo, hi = min(p.levels), max(p.levels)
        distinct = int(round((hi - lo) / fam.resolution)) + 1 if fam.resolution else None
        if distinct is not None and n > distinct:
            warnings.append(f"{p.name}: {n} levels in [{lo:g}, {hi:g}] but only {distinct} distinct values "
                            f"({fam.units} steps by {fam.resolution:g}): levels repeat; pass --levels {distinct} "
                            f"or fewer")
        elif n > SANE_LEVELS:
            warnings.append(f"{p.name}: {n} levels (more than {SANE_LEVELS} rarely show anything new, and each is "
                            f"one more encoded variant per image); 5 to 10 are usual")
    return warnings


def plan_json(plans: list[FamilyPlan]) -> list[dict]:
    """The plan as it goes into fingerprints and reports."""
    return [{"family": p.name, "levels": list(p.levels)} for p in plans]
