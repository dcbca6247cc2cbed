"""One severity table type for all ImageNet-C corruptions: the original parameters at severities
1..5, an identity row at 0, and interpolation in between (continuous severity in [0, 5])."""

from __future__ import annotations

import math
from dataclasses import dataclass

# How a parameter moves between two table rows.
LINEAR = "linear"  # a + t (b - a)
ROUND = "round"  # linear, then rounded half up to an integer (offsets, iterations, JPEG quality)
RECIPROCAL = "reciprocal"  # linear in 1/value (shot noise: the Poisson rate, whose noise variance is 1/rate)


@dataclass(frozen=True)
class Param:
    name: str
    identity: float  # the value at severity 0 (math.inf allowed for RECIPROCAL)
    values: tuple[float, ...]  # severities 1..5, as in make_imagenet_c.py
    kind: str = LINEAR
    pixels: bool = False  # a length in pixels: scaled by short side / 224 in the `scale` pixel mode
    meaning: str = ""

    def __post_init__(self) -> None:
        if len(self.values) != 5:
            raise ValueError(f"{self.name}: a severity table has 5 values, got {len(self.values)}")

    def row(self, k: int) -> float:
        return self.identity if k == 0 else self.values[k - 1]

    def at(self, severity: float) -> float:
        lo = min(int(math.floor(severity)), 4)
        t = severity - lo
        a, b = self.row(lo), self.row(lo + 1)
        if t == 0.0:
            return a  # the table itself at integer severities: no arithmetic on it
        if t == 1.0:
            return b
        if self.kind == RECIPROCAL:
            ia, ib = (0.0 if math.isinf(a) else 1.0 / a), 1.0 / b
            return 1.0 / (ia + t * (ib - ia))
        v = a + t * (b - a)
        return float(math.floor(v + 0.5)) if self.kind == ROUND else v


@dataclass(frozen=True)
class SeverityTable:
    params: tuple[Param, ...]

    def at(self, severity: float, pixel_scale: float = 1.0) -> dict[str, float]:
        """The parameters at a severity in [0, 5]; pixel-unit ones multiplied by `pixel_scale`."""
        s = min(max(float(severity), 0.0), 5.0)
        out = {}
        for p in self.params:
            v = p.at(s)
            if p.pixels and pixel_scale != 1.0:
                v = v * pixel_scale
                if p.kind == ROUND:
                    v = float(math.floor(v + 0.5))
            out[p.name] = v
        return out

    def names(self) -> list[str]:
        return [p.name for p in self.params]


def table(*params: Param) -> SeverityTable:
    return SeverityTable(tuple(params))
