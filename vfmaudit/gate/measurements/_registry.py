"""The catalogue of gate measurements: options, the dotted metric paths each produces, how to run it.

A measurement declares its options (type, default), the dotted metric paths it produces with
their direction and range, and how to read those values from its own JSON report. The gate
runs only the measurements its checks need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vfmaudit.catalogue import Catalogue

INF = math.inf


@dataclass(frozen=True)
class MetricInfo:
    higher_is_better: bool
    range: tuple[float, float] = (-INF, INF)

    def worse_by(self, new: float, old: float) -> float:
        return old - new if self.higher_is_better else new - old


@dataclass(frozen=True)
class Option:
    type: type | tuple[type, ...]
    default: object
    help: str


@dataclass(frozen=True, kw_only=True)
class Measurement:
    name: str
    description: str
    options: dict[str, Option] = field(default_factory=dict)
    # (policy, options) -> {metric path: MetricInfo}; computed without running anything
    metric_paths: Callable[..., dict[str, MetricInfo]]
    # (policy, options, out_dir) -> its JSON report
    run: Callable[..., dict]
    # report -> {metric path: value or None}
    values: Callable[[dict], dict[str, float | None]]
    # where the report lands, relative to the gate's folder: a measurement that writes a folder of
    # its own (audit, downstream) names its report there; None: the gate writes NAME.json
    own_report: str | None = None
    available: bool = True
    unavailable_reason: str = ""
    # (policy, options) -> None: the option values checked as the run would check them (raises
    # VfmauditError naming the parameter), without loading a model; None: the types are all there is
    validate: Callable[..., None] | None = None

    def defaults(self) -> dict:
        return {k: o.default for k, o in self.options.items()}


_MEASUREMENTS: Catalogue[Measurement] = Catalogue("measurement")


def register_measurement(m: Measurement) -> Measurement:
    return _MEASUREMENTS.add(m.name, m)


def unregister_measurement(name: str) -> None:
    """Remove a measurement (for tests and plugins that register temporary ones)."""
    _MEASUREMENTS.remove(name)


def measurements() -> dict[str, Measurement]:
    return _MEASUREMENTS.all()


def get_measurement(name: str) -> Measurement:
    return _MEASUREMENTS.get(name)


def as_float(v) -> float | None:
    return None if v is None else float(v)


def policy_path(policy, item: str) -> str:
    """A file or folder named in the policy, read from the policy's folder where it is there; anything else
    (builtin:NAME, a weights tag such as openai, an absolute path) as it is."""
    if not item or Path(item).expanduser().is_absolute():
        return item
    there = Path(policy.source).parent / item
    return str(there) if there.exists() else item
