"""attack.NORM_EPS.{cosine,divergence_radius}.STAT: the worst case within a budget (vfmaudit attack),
e.g. attack.linf_2.cosine.p5 for PGD at 2/255; a fractional budget's point is written p
(attack.l2_0p5.cosine.worst)."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.gate.measurements._registry import Measurement, MetricInfo, Option, as_float, register_measurement
from vfmaudit.metrics import SUMMARY_STATS


def budget_key(norm: str, eps: float) -> str:
    return f"{norm}_{eps:g}".replace(".", "p")


def _budgets(options) -> tuple[float, ...]:
    from vfmaudit.attack.threat import parse_budgets  # here: the attack package loads metrics (Numba)

    return parse_budgets(options["eps"], where="[attack] ")


def _paths(policy, options) -> dict[str, MetricInfo]:
    paths = {}
    for eps in _budgets(options):
        key = budget_key(options["norm"], eps)
        for s in SUMMARY_STATS:
            paths[f"attack.{key}.cosine.{s}"] = MetricInfo(True, (-1, 1))
            paths[f"attack.{key}.divergence_radius.{s}"] = MetricInfo(False, (0, 2))
    return paths


def _run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.attack import AttackConfig, run_attack

    config = AttackConfig(images=policy.images or None, model=policy.model, pretrained=policy.pretrained,
                          seed=policy.seed, device=policy.device, norm=options["norm"], eps=_budgets(options),
                          method=options["method"], loss=options["loss"], steps=options["steps"],
                          queries=options["queries"], max_images=options["max_images"])
    return run_attack(config).to_json()


def _values(report: dict) -> dict:
    values = {}
    for b in report["budgets"]:
        key = budget_key(b["norm"], b["eps"])
        for metric in ("cosine", "divergence_radius"):
            for s in SUMMARY_STATS:
                values[f"attack.{key}.{metric}.{s}"] = as_float(b[metric][s])
    return values


register_measurement(Measurement(
    name="attack", description="the worst case within a budget: embedding attacks (vfmaudit attack)",
    options={"norm": Option(str, "linf", "linf or l2"),
             "eps": Option(str, "2,4", "budgets, comma-separated (1/255 for linf)"),
             "method": Option(str, "pgd", "pgd, apgd or square"),
             "loss": Option(str, "cosine", "cosine or l2"),
             "steps": Option(int, 10, "iterations (pgd, apgd)"),
             "queries": Option(int, 1000, "encodes per image (square)"),
             "max_images": Option(int, 16, "images attacked (the first readable ones)")},
    metric_paths=_paths, run=_run, values=_values))
