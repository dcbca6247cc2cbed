"""audit.FAMILY.METRIC.STAT: embedding drift per family (vfmaudit audit)."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.gate.measurements._registry import INF, Measurement, MetricInfo, Option, as_float, register_measurement
from vfmaudit.metrics import SUMMARY_STATS, metrics
from vfmaudit.perturb import parse_perturbations
from vfmaudit.perturb.families.imagenet_c import PREFIX


# the ImageNet-C summary (report.json's "imagenet_c"): lower is better for every one
IMAGENET_C_PATHS = ("audit.imagenet_c.mean_radius_15", "audit.imagenet_c.relative_15")


def _paths(policy, options) -> dict[str, MetricInfo]:
    plans = parse_perturbations(options["perturbations"], options["levels"])
    paths = {f"audit.{p.name}.{name}.{stat}": MetricInfo(m.higher_is_better, m.range)
             for p in plans for name, m in metrics().items() for stat in SUMMARY_STATS}
    if any(p.name.startswith(PREFIX) for p in plans):
        paths.update({path: MetricInfo(False, (0.0, INF)) for path in IMAGENET_C_PATHS})
        paths.update({f"audit.imagenet_c.{p.name[len(PREFIX):]}.{key}": MetricInfo(False, (0.0, INF))
                      for p in plans if p.name.startswith(PREFIX) for key in ("radius", "relative")})
    return paths


def _run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.audit import AuditConfig, measure_audit

    config = AuditConfig(inputs=policy.images, model=policy.model, pretrained=policy.pretrained, seed=policy.seed,
                         device=policy.device, perturbations=options["perturbations"], levels=options["levels"],
                         batch_size=options["batch_size"], out=str(out_dir / "audit"), overwrite=True,
                         reference_report=options["reference_report"] or None, image_key=policy.image_key,
                         storage_options=dict(policy.storage_options))
    return measure_audit(config).to_json()


def _values(report: dict) -> dict:
    values = {f"audit.{fam}.{name}.{stat}": as_float(summary.get(stat))
              for fam, entry in report["families"].items() for name, summary in entry.items()
              if isinstance(summary, dict) and "mean" in summary for stat in SUMMARY_STATS}
    block = report.get("imagenet_c") or {}
    for key in ("mean_radius_15", "relative_15"):
        if key in block:
            values[f"audit.imagenet_c.{key}"] = as_float(block[key])
    for name, entry in block.get("corruptions", {}).items():
        for key in ("radius", "relative"):
            values[f"audit.imagenet_c.{name}.{key}"] = as_float(entry.get(key))
    return values


register_measurement(Measurement(
    name="audit", description="embedding drift per family (vfmaudit audit)",
    options={"perturbations": Option(str, "everyday", "families, as --perturbations"),
             "levels": Option(int, 5, "levels per family"), "batch_size": Option(int, 32, "encoder batch size"),
             "reference_report": Option(str, "", "an earlier audit's report.json or folder: the ImageNet-C summary "
                                                 "relative to it (audit.imagenet_c.relative_15)")},
    metric_paths=_paths, run=_run, values=_values, own_report="audit/report.json"))
