"""What an audit is asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field

from vfmaudit import perturb
from vfmaudit.data.decode import DEFAULT_MAX_PIXELS
from vfmaudit.errors import VfmauditError
from vfmaudit.metrics import metrics

DEFAULT_MODEL = "openclip:ViT-S-32"
DEFAULT_OUT = "vfmaudit-out"
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class FamilyPlan:
    name: str
    levels: tuple[float, ...]


@dataclass
class AuditConfig:
    inputs: list[str] = field(default_factory=list)  # empty: the built-in sample photographs
    model: str = DEFAULT_MODEL
    pretrained: str | None = None
    backend: str = "auto"  # by --model: .onnx -> onnx, .engine -> tensorrt, else torch
    device: str = "cpu"
    perturbations: str = "all"  # "all" or "jpeg,brightness:0.5:1.5,..."
    levels: int = 5
    batch_size: int = 32
    seed: int = 0
    out: str = DEFAULT_OUT
    resume: bool = False
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    # where it runs (not part of the fingerprint: results do not depend on it)
    engine: str = "local"  # local | ray
    ray_address: str | None = None  # None: start a local Ray instance; "auto" or ray://host:10001
    workers: int = 2  # encoder actors (ray)
    gpus_per_worker: float = 0.0
    shard_size: int = 256  # images per shard (ray): the unit of work, of resume and of retry

    def plan(self) -> list[FamilyPlan]:
        if self.engine not in ENGINES:
            raise VfmauditError(f"unknown engine '{self.engine}'; choose from {', '.join(ENGINES)}", param="engine")
        if self.workers < 1 or self.shard_size < 1 or self.gpus_per_worker < 0:
            raise VfmauditError("workers and shard_size must be >= 1, gpus_per_worker >= 0",
                                param=("workers", "shard_size", "gpus_per_worker"))
        return parse_perturbations(self.perturbations, self.levels)

    def fingerprint(self) -> dict:
        """What must match for --resume to continue a run."""
        return {
            "inputs": sorted(self.inputs), "model": self.model, "pretrained": self.pretrained,
            "backend": self.backend, "seed": self.seed, "metrics": list(metrics()),
            "plan": [{"family": p.name, "levels": list(p.levels)} for p in self.plan()],
        }


def parse_perturbations(text: str, n_levels: int) -> list[FamilyPlan]:
    """'all', a preset name, or a comma list of NAME or NAME:LO:HI (a sub-domain) -> one plan per family."""
    if n_levels < 1:
        raise VfmauditError(f"levels must be >= 1, got {n_levels}", param="levels")
    text = (text or "all").strip()
    if text.lower() == "all":
        return [FamilyPlan(n, tuple(perturb.levels(n, n_levels))) for n in perturb.families()]
    tokens: list[tuple[str, float | None, float | None]] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        name, *bounds = token.split(":")
        if not bounds and name in perturb.presets() and name not in perturb.families():
            tokens += [(e.family, *e.bounds()) for e in perturb.get_preset(name).entries]
            continue
        if bounds and len(bounds) != 2:
            raise VfmauditError(f"'{token}': write a sub-domain as NAME:LO:HI, e.g. brightness:0.5:1.5",
                                param="perturbations")
        try:
            lo, hi = (float(bounds[0]), float(bounds[1])) if bounds else (None, None)
        except ValueError:
            raise VfmauditError(f"'{token}': LO and HI must be numbers", param="perturbations") from None
        tokens.append((name, lo, hi))
    plans: list[FamilyPlan] = []
    for name, lo, hi in tokens:
        if any(p.name == name for p in plans):
            raise VfmauditError(f"perturbation '{name}' is listed twice", param="perturbations")
        plans.append(FamilyPlan(name, tuple(float(v) for v in perturb.levels(name, n_levels, lo, hi))))
    if not plans:
        raise VfmauditError("perturbations is empty; pass 'all' or names such as jpeg,brightness",
                            param="perturbations")
    return plans
