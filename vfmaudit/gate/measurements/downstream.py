"""downstream.TASK.(clean|FAMILY).METRIC[.STAT]: downstream task accuracy under perturbation; with
shift, downstream.shift.NAME.TASK.accuracy[_drop] (natural distribution shift); with ood, downstream.ood.NAME.SCORE.(auroc|fpr95|aupr_in|perturbed_auroc.min): out-of-distribution
detection (SCORE: msp_linear_probe, energy_linear_probe, msp_zero_shot, energy_zero_shot,
max_cosine, knn); with the typographic family in perturbations,
downstream.typographic.TASK.(success_rate|control_rate)[.max] (at the highest level, or the largest over
the levels)."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.gate.measurements._registry import (Measurement, MetricInfo, Option, as_float, policy_path,
                                                  register_measurement)

STATS = ("max", "mean", "min")


def _config(policy, options, out_dir: Path | None = None):
    from vfmaudit.downstream import DownstreamConfig

    return DownstreamConfig(dataset=options["dataset"], model=policy.model, pretrained=policy.pretrained,
                            device=policy.device, tasks=options["tasks"], perturbations=options["perturbations"],
                            levels=options["levels"], seed=policy.seed, max_per_class=options["max_per_class"],
                            ood=tuple(_set_specs(policy, options["ood"])),
                            shift=tuple(_set_specs(policy, options["shift"])),
                            class_map=policy_path(policy, options["class_map"]) or None,
                            out=str(out_dir / "downstream") if out_dir else "", overwrite=True)


def _validate(policy, options) -> None:
    config = _config(policy, options)  # what `vfmaudit downstream` checks before loading anything
    config.plan(), config.task_list(), config.ood_sets(), config.shift_sets()


def _set_specs(policy, text: str) -> list[str]:
    """ood's or shift's comma list, each NAME=FOLDER or FOLDER; relative folders are read from the policy's
    folder."""
    specs = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        name, sep, spec = item.rpartition("=") if "=" in item else ("", "", item)
        specs.append(f"{name}={policy_path(policy, spec)}" if sep else policy_path(policy, spec))
    return specs


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
    if any(p.name == "typographic" for p in config.plan()):
        for key in (k for task in config.task_list() if task != "retrieval" for k in TASK_KEYS[task]):
            for rate in ("success_rate", "control_rate"):
                # .RATE: at the highest level (the strongest attack); .RATE.max: over the levels
                paths[f"downstream.typographic.{key}.{rate}"] = MetricInfo(rate == "control_rate", (0, 1))
                paths[f"downstream.typographic.{key}.{rate}.max"] = MetricInfo(rate == "control_rate", (0, 1))
    for name, _ in config.shift_sets():
        for key in (k for task in config.task_list() if task != "retrieval" for k in TASK_KEYS[task]):
            paths[f"downstream.shift.{name}.{key}.accuracy"] = MetricInfo(True, (0, 1))
            paths[f"downstream.shift.{name}.{key}.accuracy_drop"] = MetricInfo(False, (-1, 1))
    if config.ood:
        from vfmaudit.downstream.ood import score_names

        for name, _ in config.ood_sets():
            for score in score_names(config.task_list()):
                paths[f"downstream.ood.{name}.{score}.auroc"] = MetricInfo(True, (0, 1))
                paths[f"downstream.ood.{name}.{score}.aupr_in"] = MetricInfo(True, (0, 1))
                paths[f"downstream.ood.{name}.{score}.fpr95"] = MetricInfo(False, (0, 1))
                paths[f"downstream.ood.{name}.{score}.perturbed_auroc.min"] = MetricInfo(True, (0, 1))
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
    for key, row in report.get("typographic", {}).get("tasks", {}).items():
        for rate in ("success_rate", "control_rate"):
            values[f"downstream.typographic.{key}.{rate}"] = row[rate][-1] if row[rate] else None
            values[f"downstream.typographic.{key}.{rate}.max"] = max(row[rate]) if row[rate] else None
    for name, entry in report.get("shift", {}).items():
        for key, row in entry["tasks"].items():
            values[f"downstream.shift.{name}.{key}.accuracy"] = as_float(row["accuracy"])
            values[f"downstream.shift.{name}.{key}.accuracy_drop"] = as_float(row["accuracy_drop"])
    for name, entry in report.get("ood", {}).get("sets", {}).items():
        for score, row in entry["scores"].items():
            values.update({f"downstream.ood.{name}.{score}.{m}": as_float(v) for m, v in row["clean"].items()})
            perturbed = [a for fam in row["families"].values() for a in fam["auroc"] if a is not None]
            values[f"downstream.ood.{name}.{score}.perturbed_auroc.min"] = min(perturbed) if perturbed else None
    return values


register_measurement(Measurement(
    name="downstream", description="downstream task accuracy under perturbation (vfmaudit downstream)",
    options={"dataset": Option(str, "builtin:textures", "a class-per-folder tree, a CSV, or builtin:NAME"),
             "tasks": Option(str, "auto", "auto or a comma list of linear-probe, knn, retrieval, zero-shot"),
             "perturbations": Option(str, "everyday", "families, as --perturbations"),
             "levels": Option(int, 3, "levels per family"),
             "max_per_class": Option((int, type(None)), None, "images per class (default: all)"),
             "shift": Option(str, "", "shifted sets of the training classes, comma-separated NAME=FOLDER or "
                                      "FOLDER: downstream.shift.NAME.TASK.accuracy[_drop]"),
             "class_map": Option(str, "", "folder name -> class name for the shift sets (JSON or CSV)"),
             "ood": Option(str, "", "out-of-distribution sets, comma-separated NAME=FOLDER or FOLDER (relative to "
                                    "the policy's folder) or builtin:NAME: downstream.ood.NAME.SCORE.*")},
    metric_paths=_paths, run=_run, values=_values, validate=_validate, own_report="downstream/downstream.json"))
