"""The catalogue of perturbation families: name, parameter domain, identity, units, apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from vfmaudit.catalogue import Catalogue
from vfmaudit.errors import LevelOutOfDomain, UnknownPerturbation

# apply(batch uint8 (N,H,W,3) C-contiguous, level, seeds uint64 (N,)) -> uint8 (N,H,W,3)
ApplyFn = Callable[[np.ndarray, float, np.ndarray], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class Family:
    name: str
    lo: float
    hi: float
    identity: float
    units: str
    description: str
    apply_batch: ApplyFn = field(repr=False)
    # True when apply at the identity level returns the input unchanged (a no-op we can skip).
    exact_identity: bool = True
    # Whether the edit draws random numbers (then the seed matters).
    stochastic: bool = False
    # Levels closer than this give the same image (JPEG quality is a whole number: 1); 0 = continuous.
    resolution: float = 0.0

    def is_identity(self, level: float) -> bool:
        """True when apply at `level` returns the input unchanged (so it can be skipped)."""
        return self.exact_identity and level == self.identity

    @property
    def domain(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def check_level(self, level: float) -> float:
        level = float(level)
        span = self.hi - self.lo
        tol = 1e-9 * max(1.0, abs(span))
        if not np.isfinite(level) or level < self.lo - tol or level > self.hi + tol:
            raise LevelOutOfDomain(
                f"level {level:g} is outside the domain of '{self.name}' "
                f"[{self.lo:g}, {self.hi:g}] ({self.units}); pass a level inside it"
            )
        return min(max(level, self.lo), self.hi)


_FAMILIES: Catalogue[Family] = Catalogue("perturbation family", UnknownPerturbation)


def register(family: Family) -> Family:
    return _FAMILIES.add(family.name, family)


def unregister(name: str) -> None:
    """Remove a family (for tests and plugins that register temporary ones)."""
    _FAMILIES.remove(name)


def get(name: str) -> Family:
    return _FAMILIES.get(name)


def all_families() -> dict[str, Family]:
    """Every family by name, in registration order (the catalogue order)."""
    return _FAMILIES.all()
