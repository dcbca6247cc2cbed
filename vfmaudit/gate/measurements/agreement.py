"""agreement.FAMILY.KEY.STAT: label-free neighbour agreement of perturbed queries against the clean index."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.gate.measurements._registry import Measurement, MetricInfo, Option, as_float, register_measurement
from vfmaudit.metrics import AGREEMENT_KEYS
from vfmaudit.perturb import parse_perturbations

STATS = ("mean", "min")


def _paths(policy, options) -> dict[str, MetricInfo]:
    return {f"agreement.{p.name}.{k}.{s}": MetricInfo(True, (0, 1))
            for p in parse_perturbations(options["perturbations"], options["levels"])
            for k in AGREEMENT_KEYS for s in STATS}


def _run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.audit.agreement import measure_agreement

    return measure_agreement(policy.images, policy.model, policy.pretrained, device=policy.device, seed=policy.seed,
                             perturbations=options["perturbations"], levels=options["levels"],
                             max_images=options["max_images"]).to_json()


def _values(report: dict) -> dict:
    return {f"agreement.{fam}.{k}.{s}": as_float(stats[s]) for fam, entry in report["families"].items()
            for k, stats in entry.items() for s in STATS}


register_measurement(Measurement(
    name="agreement", description="label-free neighbour agreement of perturbed queries against the clean index",
    options={"perturbations": Option(str, "everyday", "families, as --perturbations"),
             "levels": Option(int, 3, "levels per family"),
             "max_images": Option(int, 256, "images used (all pairs among them are compared)")},
    metric_paths=_paths, run=_run, values=_values))
