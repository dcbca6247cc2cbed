"""The catalogue of embedding metrics: name, direction, range, description, how to compute it.

The audit runner, its CSV tables, report.json, report.html, the console table and (later) the
gate all iterate over this registry; adding a metric is one `register_metric` call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from vfmaudit.catalogue import Catalogue

# (clean (B, D), variants (B, L, D)), both L2-normalised -> values
PerLevelFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # -> (B, L)
PerImageFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # -> (B,)


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str
    higher_is_better: bool
    range: tuple[float, float]
    description: str
    # value per (image, level); the per-image value is then its mean over levels unless per_image is given
    per_level: PerLevelFn | None = field(default=None, repr=False)
    # value per image from all its variants at once (e.g. the enclosing ball)
    per_image: PerImageFn | None = field(default=None, repr=False)
    # headline metrics are the ones reports lead with, by rank (1 first: the metric images are ranked
    # by and whose distribution is plotted); 0: reported in tables only
    headline: int = 0
    display_name: str = ""  # how people read it ("divergence radius"); default: the name
    symbol: str = ""  # a few letters under a thumbnail ("cos"); default: the display name

    @property
    def label(self) -> str:
        return self.display_name or self.name

    @property
    def short(self) -> str:
        return self.symbol or self.label

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def compute(self, clean: np.ndarray, variants: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(per-image (B,), per-level (B, L) or None) from unit clean (B, D) and variants (B, L, D)."""
        levels = self.per_level(clean, variants) if self.per_level else None
        image = self.per_image(clean, variants) if self.per_image else levels.mean(axis=1)
        return np.asarray(image, dtype=np.float64), levels

    def worst(self, values: np.ndarray) -> float:
        return float(np.min(values) if self.higher_is_better else np.max(values))

    def worse_by(self, new: float, old: float) -> float:
        """How much worse `new` is than `old` in this metric's bad direction (negative: better)."""
        return float(old - new) if self.higher_is_better else float(new - old)

    def to_json(self) -> dict:
        return {"description": self.description, "direction": self.direction,
                "higher_is_better": self.higher_is_better, "range": list(self.range), "label": self.label,
                "headline": self.headline}


_METRICS: Catalogue[Metric] = Catalogue("metric")


def register_metric(metric: Metric) -> Metric:
    if metric.per_level is None and metric.per_image is None:
        raise ValueError(f"metric '{metric.name}' needs per_level or per_image")
    return _METRICS.add(metric.name, metric)


def unregister_metric(name: str) -> None:
    """Remove a metric (for tests and plugins that register temporary ones)."""
    _METRICS.remove(name)


def metrics() -> dict[str, Metric]:
    """Every metric by name, in registration order (the column order of tables and reports)."""
    return _METRICS.all()


def get_metric(name: str) -> Metric:
    return _METRICS.get(name)


def headline_metrics() -> list[Metric]:
    """The headline metrics, by rank."""
    return sorted((m for m in _METRICS.values() if m.headline), key=lambda m: m.headline)


def primary_metric() -> Metric:
    """The metric reports rank images by and plot the distribution of (the first headline metric)."""
    ranked = headline_metrics()
    return ranked[0] if ranked else next(iter(_METRICS.values()))


def per_variant_metric() -> Metric:
    """The headline metric that has a value per variant (shown under each perturbed image)."""
    return next((m for m in headline_metrics() if m.per_level is not None),
                next(m for m in _METRICS.values() if m.per_level is not None))


def per_level_metrics() -> list[str]:
    return [m.name for m in _METRICS.values() if m.per_level is not None]
