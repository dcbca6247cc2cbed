"""attack.NORM_EPS.{cosine,divergence_radius}.STAT: the worst case within a budget (vfmaudit attack),
e.g. attack.linf_2.cosine.p5 for PGD at 2/255; a fractional budget's point is written p
(attack.l2_0p5.cosine.worst); attack.NORM_EPS.random.* the same figures for one random change of
the budget per image (the average case on the same scale). With transfer_to, the images found are replayed on each artefact:
attack.transfer.ARTEFACT.NORM_EPS.{cosine,divergence_radius}.STAT and .gap.{cosine_mean,cosine_worst,
radius_mean} (the artefact's figure minus the attacked model's), ARTEFACT the file's stem in
[A-Za-z0-9_] (e.g. attack.transfer.model_int8.linf_2.cosine.worst). With method = "search" (the
oracle-gated edit search): attack.fmr, attack.sa, attack.pa (on a labelled dataset), attack.approved
(the fraction of images the oracle recognises clean) and attack.search.{cosine,divergence_radius}.STAT
over the approved images."""

from __future__ import annotations

import re
from pathlib import Path

from vfmaudit.errors import VfmauditError
from vfmaudit.gate.measurements._registry import (INF, Measurement, MetricInfo, Option, as_float, policy_path,
                                                  register_measurement)
from vfmaudit.metrics import SUMMARY_STATS


def budget_key(norm: str, eps: float) -> str:
    return f"{norm}_{eps:g}".replace(".", "p")


def _budgets(options) -> tuple[float, ...]:
    from vfmaudit.attack.threat import parse_budgets  # here: the attack package loads metrics (Numba)

    return parse_budgets(options["eps"], where="[attack] ")


GAPS = {"cosine_mean": True, "cosine_worst": True, "radius_mean": False}  # higher is better?


def artefact_key(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", Path(path).stem)


def _artefacts(policy, options) -> dict[str, str]:
    """transfer_to's files by metric key, relative paths read from the policy's folder."""
    base = Path(policy.source).parent
    found: dict[str, str] = {}
    for item in (t.strip() for t in options["transfer_to"].split(",")):
        if not item:
            continue
        path = item if Path(item).expanduser().is_absolute() else str(base / item)
        key = artefact_key(path)
        if key in found:
            raise VfmauditError(f"{policy.source}: [attack] transfer_to: {found[key]} and {path} would both be "
                                f"attack.transfer.{key}: give the files distinct names")
        found[key] = path
    return found


def _stats(prefix: str) -> dict[str, MetricInfo]:
    paths = {}
    for s in SUMMARY_STATS:
        paths[f"{prefix}.cosine.{s}"] = MetricInfo(True, (-1, 1))
        paths[f"{prefix}.divergence_radius.{s}"] = MetricInfo(False, (0, 2))
    return paths


SEARCH_FIGURES = {"fmr": MetricInfo(True, (0, INF)), "sa": MetricInfo(True, (0, 1)), "pa": MetricInfo(True, (0, 1)),
                  "approved": MetricInfo(True, (0, 1))}


def _paths(policy, options) -> dict[str, MetricInfo]:
    if options["method"] == "search":
        return {**{f"attack.{k}": info for k, info in SEARCH_FIGURES.items()}, **_stats("attack.search")}
    paths = {}
    artefacts = _artefacts(policy, options)
    for eps in _budgets(options):
        key = budget_key(options["norm"], eps)
        paths.update(_stats(f"attack.{key}"))
        paths.update(_stats(f"attack.{key}.random"))
        for name in artefacts:
            paths.update(_stats(f"attack.transfer.{name}.{key}"))
            for gap, higher in GAPS.items():
                paths[f"attack.transfer.{name}.{key}.gap.{gap}"] = MetricInfo(higher, (-2, 2))
    return paths


def _run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.attack import run_attack

    return run_attack(_config(policy, options)).to_json()


def _validate(policy, options) -> None:
    _config(policy, options).check()  # method, loss, norm, budgets, counts, transfer_to's files, the search's


def _config(policy, options):
    from vfmaudit.attack import AttackConfig

    config = AttackConfig(images=policy.images or None, model=policy.model, pretrained=policy.pretrained,
                          seed=policy.seed, device=policy.device, norm=options["norm"], eps=_budgets(options),
                          method=options["method"], loss=options["loss"], steps=options["steps"],
                          queries=options["queries"], max_images=options["max_images"],
                          transfer_to=list(_artefacts(policy, options).values()))
    if options["method"] == "search":
        config.oracle, config.oracle_mode = options["oracle"] or None, options["oracle_mode"]
        config.oracle_pretrained = policy_path(policy, options["oracle_pretrained"]) or None
        config.dataset = policy_path(policy, options["dataset"]) or None
        if config.dataset:
            config.images = None
        config.max_per_class = options["max_per_class"] or None
        config.classifier, config.perturbations = options["classifier"], options["perturbations"]
        config.levels, config.max_edits = options["levels"], options["max_edits"]
    return config


def _values(report: dict) -> dict:
    values = {}
    if report.get("method") == "search":
        s = report["search"]
        values = {f"attack.{k}": as_float(s.get(k)) for k in ("fmr", "sa", "pa")}
        values["attack.approved"] = s["approved"] / s["images"] if s["images"] else None
        for metric in ("cosine", "divergence_radius"):
            for stat in SUMMARY_STATS:
                values[f"attack.search.{metric}.{stat}"] = as_float(s[metric][stat])
        return values
    for b in report["budgets"]:
        key = budget_key(b["norm"], b["eps"])
        for metric in ("cosine", "divergence_radius"):
            for s in SUMMARY_STATS:
                values[f"attack.{key}.{metric}.{s}"] = as_float(b[metric][s])
                if "random" in b:  # reports before the average case was added have none
                    values[f"attack.{key}.random.{metric}.{s}"] = as_float(b["random"][metric][s])
    for row in report.get("transfer", []):
        prefix = f"attack.transfer.{artefact_key(row['artefact'])}.{budget_key(report['config']['norm'], row['eps'])}"
        for metric in ("cosine", "divergence_radius"):
            for s in SUMMARY_STATS:
                values[f"{prefix}.{metric}.{s}"] = as_float(row[metric][s])
        for gap in GAPS:
            values[f"{prefix}.gap.{gap}"] = as_float(row["gap"][gap])
    return values


register_measurement(Measurement(
    name="attack", description="the worst case within a budget: embedding attacks (vfmaudit attack)",
    options={"norm": Option(str, "linf", "linf or l2"),
             "eps": Option(str, "2,4", "budgets, comma-separated (1/255 for linf)"),
             "method": Option(str, "pgd", "pgd, apgd, square or search (the oracle-gated edit search)"),
             "loss": Option(str, "cosine", "cosine or l2"),
             "steps": Option(int, 10, "iterations (pgd, apgd)"),
             "queries": Option(int, 1000, "encodes per image (square, search)"),
             "max_images": Option(int, 16, "images attacked (the first readable ones)"),
             "transfer_to": Option(str, "", "artefacts the images found are replayed on, comma-separated "
                                            "(relative to the policy's folder)"),
             "oracle": Option(str, "", "search: the oracle model spec or artefact"),
             "oracle_pretrained": Option(str, "", "search: the oracle's weights (a tag or a file)"),
             "oracle_mode": Option(str, "auto", "search: zero-shot, nearest or auto"),
             "dataset": Option(str, "", "search: labelled images (folder, CSV, builtin:NAME) for SA, PA, FMR"),
             "max_per_class": Option(int, 0, "search: images per class (0: all)"),
             "classifier": Option(str, "auto", "search: zero-shot, linear-probe, knn or auto"),
             "perturbations": Option(str, "everyday", "search: the edits to compose (as audit's)"),
             "levels": Option(int, 5, "search: candidate levels per family"),
             "max_edits": Option(int, 3, "search: edits per chain at most")},
    metric_paths=_paths, run=_run, values=_values, validate=_validate))
