"""audit.FAMILY.METRIC.STAT: embedding drift per family (vfmaudit audit)."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.gate.measurements._registry import Measurement, MetricInfo, Option, as_float, register_measurement
from vfmaudit.metrics import SUMMARY_STATS, metrics
from vfmaudit.perturb import parse_perturbations


def _paths(policy, options) -> dict[str, MetricInfo]:
    return {f"audit.{p.name}.{name}.{stat}": MetricInfo(m.higher_is_better, m.range)
            for p in parse_perturbations(options["perturbations"], options["levels"])
            for name, m in metrics().items() for stat in SUMMARY_STATS}


def _run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.audit import AuditConfig, measure_audit

    config = AuditConfig(inputs=policy.images, model=policy.model, pretrained=policy.pretrained, seed=policy.seed,
                         device=policy.device, perturbations=options["perturbations"], levels=options["levels"],
                         batch_size=options["batch_size"], out=str(out_dir / "audit"), overwrite=True)
    return measure_audit(config).to_json()


def _values(report: dict) -> dict:
    return {f"audit.{fam}.{name}.{stat}": as_float(summary.get(stat))
            for fam, entry in report["families"].items() for name, summary in entry.items()
            if isinstance(summary, dict) and "mean" in summary for stat in SUMMARY_STATS}


register_measurement(Measurement(
    name="audit", description="embedding drift per family (vfmaudit audit)",
    options={"perturbations": Option(str, "everyday", "families, as --perturbations"),
             "levels": Option(int, 5, "levels per family"), "batch_size": Option(int, 32, "encoder batch size")},
    metric_paths=_paths, run=_run, values=_values, own_report="audit/report.json"))
