"""downstream.TASK.(clean|FAMILY).METRIC[.STAT]: downstream task accuracy under perturbation."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.gate.measurements._registry import Measurement, MetricInfo, Option, as_float, register_measurement

STATS = ("max", "mean", "min")


def _config(policy, options, out_dir: Path | None = None):
    from vfmaudit.downstream import DownstreamConfig

    return DownstreamConfig(dataset=options["dataset"], model=policy.model, pretrained=policy.pretrained,
                            device=policy.device, tasks=options["tasks"], perturbations=options["perturbations"],
                            levels=options["levels"], seed=policy.seed, max_per_class=options["max_per_class"],
                            out=str(out_dir / "downstream") if out_dir else "", overwrite=True)


def _paths(policy, options) -> dict[str, MetricInfo]:
    from vfmaudit.downstream.tasks import TASK_KEYS, TASK_METRICS

    config = _config(policy, options)
    paths = {}
    for task in config.task_list():
        for key in TASK_KEYS[task]:
            for metric, higher in TASK_METRICS[key].items():
                rng = (-1, 1) if metric == "accuracy_drop" else (0, 1)
                if metric != "accuracy_drop":
                    paths[f"downstream.{key}.clean.{metric}"] = MetricInfo(higher, rng)
                for p in config.plan():
                    for stat in STATS:
                        paths[f"downstream.{key}.{p.name}.{metric}.{stat}"] = MetricInfo(higher, rng)
    return paths


def _run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.downstream import run_downstream

    return run_downstream(_config(policy, options, out_dir)).to_json()


def _values(report: dict) -> dict:
    from vfmaudit.downstream.tasks import TASK_METRICS

    values = {}
    for key, entry in report["tasks"].items():
        values.update({f"downstream.{key}.clean.{m}": as_float(v) for m, v in entry["clean"].items()})
        for fam, rows in entry["families"].items():
            for metric in TASK_METRICS.get(key, {}):
                series = [v for v in rows.get(metric, []) if v is not None]
                if series:
                    values.update({f"downstream.{key}.{fam}.{metric}.max": max(series),
                                   f"downstream.{key}.{fam}.{metric}.mean": float(sum(series) / len(series)),
                                   f"downstream.{key}.{fam}.{metric}.min": min(series)})
    return values


register_measurement(Measurement(
    name="downstream", description="downstream task accuracy under perturbation (vfmaudit downstream)",
    options={"dataset": Option(str, "builtin:textures", "a class-per-folder tree, a CSV, or builtin:NAME"),
             "tasks": Option(str, "auto", "auto or a comma list of linear-probe, knn, retrieval, zero-shot"),
             "perturbations": Option(str, "everyday", "families, as --perturbations"),
             "levels": Option(int, 3, "levels per family"),
             "max_per_class": Option((int, type(None)), None, "images per class (default: all)")},
    metric_paths=_paths, run=_run, values=_values, own_report="downstream/downstream.json"))
