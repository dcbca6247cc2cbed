"""What a gate can measure: each measurement runs an existing API call and names its metrics.

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
from vfmaudit.errors import VfmauditError
from vfmaudit.metrics.agreement import DEFAULT_KS

INF = math.inf
AGREEMENT_KEYS = ("top1", *(f"overlap@{k}" for k in DEFAULT_KS))


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
    # (policy, options, out_dir) -> its JSON report (also written to out_dir)
    run: Callable[..., dict]
    # report -> {metric path: value or None}
    values: Callable[[dict], dict[str, float | None]]
    available: bool = True
    unavailable_reason: str = ""

    def defaults(self) -> dict:
        return {k: o.default for k, o in self.options.items()}


_MEASUREMENTS: Catalogue[Measurement] = Catalogue("measurement")


def register_measurement(m: Measurement) -> Measurement:
    return _MEASUREMENTS.add(m.name, m)


def measurements() -> dict[str, Measurement]:
    return _MEASUREMENTS.all()


def get_measurement(name: str) -> Measurement:
    return _MEASUREMENTS.get(name)


def _float(v) -> float | None:
    return None if v is None else float(v)


# -- audit ---------------------------------------------------------------------------------------
STATS = ("mean", "median", "p5", "p95", "worst")


def _audit_plan(policy, options):
    from vfmaudit.audit.config import parse_perturbations

    return parse_perturbations(options["perturbations"], options["levels"])


def _audit_paths(policy, options) -> dict[str, MetricInfo]:
    from vfmaudit.metrics import metrics

    return {f"audit.{p.name}.{name}.{stat}": MetricInfo(m.higher_is_better, m.range)
            for p in _audit_plan(policy, options) for name, m in metrics().items() for stat in STATS}


def _audit_run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.audit import AuditConfig, measure_audit

    config = AuditConfig(inputs=policy.images, model=policy.model, pretrained=policy.pretrained, seed=policy.seed,
                         device=policy.device, perturbations=options["perturbations"], levels=options["levels"],
                         batch_size=options["batch_size"], out=str(out_dir / "audit"), overwrite=True)
    return measure_audit(config).to_json()


def _audit_values(report: dict) -> dict:
    return {f"audit.{fam}.{name}.{stat}": _float(summary.get(stat))
            for fam, entry in report["families"].items() for name, summary in entry.items()
            if isinstance(summary, dict) and "mean" in summary for stat in STATS}


register_measurement(Measurement(
    name="audit", description="embedding drift per family (vfmaudit audit)",
    options={"perturbations": Option(str, "all", "families, as --perturbations"),
             "levels": Option(int, 5, "levels per family"), "batch_size": Option(int, 32, "encoder batch size")},
    metric_paths=_audit_paths, run=_audit_run, values=_audit_values))


# -- parity --------------------------------------------------------------------------------------
_PARITY = {"parity.cosine.min": ("min_cosine", MetricInfo(True, (-1, 1))),
           "parity.cosine.mean": ("mean_cosine", MetricInfo(True, (-1, 1))),
           "parity.cosine.median": ("median_cosine", MetricInfo(True, (-1, 1))),
           "parity.max_abs_diff": ("max_abs_diff", MetricInfo(False, (0, INF))),
           "parity.max_rel_diff": ("max_rel_diff", MetricInfo(False, (0, INF)))}


def _parity_paths(policy, options) -> dict[str, MetricInfo]:
    paths = {k: info for k, (_, info) in _PARITY.items()}
    paths.update({f"parity.agreement.{k}": MetricInfo(True, (0, 1)) for k in AGREEMENT_KEYS})
    return paths


def _parity_run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.export import check_parity
    from vfmaudit.runtime import is_artefact_path

    if not is_artefact_path(policy.model):
        raise VfmauditError(f"{policy.source}: parity checks need model = an exported artefact (.onnx, .engine); "
                            f"'{policy.model}' is a model spec")
    report = check_parity(policy.model, model=policy.reference, pretrained=policy.reference_pretrained,
                          images=policy.images, precision=options["precision"], device=policy.device,
                          max_images=options["max_images"])
    return report.to_json()


def _parity_values(report: dict) -> dict:
    s = report["summary"]
    values = {path: _float(s[key]) for path, (key, _) in _PARITY.items()}
    values.update({f"parity.agreement.{k}": _float(v) for k, v in s.get("agreement", {}).items()})
    return values


register_measurement(Measurement(
    name="parity", description="the artefact against its torch reference (vfmaudit export check)",
    options={"precision": Option((str, type(None)), None, "fp32, fp16, bf16 or int8 (default: the artefact's)"),
             "max_images": Option(int, 12, "images compared, each clean and with the parity edits")},
    metric_paths=_parity_paths, run=_parity_run, values=_parity_values))


# -- int8 ----------------------------------------------------------------------------------------
_DIST = ("min", "p5", "median", "mean")


def _int8_paths(policy, options) -> dict[str, MetricInfo]:
    paths = {f"int8.cosine.{part}.{s}": MetricInfo(True, (-1, 1)) for part in ("all", "clean", "perturbed")
             for s in _DIST}
    paths.update({f"int8.radius.{s}": MetricInfo(False, (0, 1)) for s in (*_DIST, "max")})
    paths["int8.speedup"] = MetricInfo(True, (0, INF))
    paths.update({f"int8.agreement.{k}": MetricInfo(True, (0, 1)) for k in AGREEMENT_KEYS})
    return paths


def _int8_run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.artefact.provenance import report_header
    from vfmaudit.calibration.acceptance import accept_int8
    from vfmaudit.data.sources import collect_items, sample_items
    from vfmaudit.runtime import create_encoder, resolve_backend

    if not policy.reference:
        raise VfmauditError(f"{policy.source}: int8 checks need reference = the fp32 model (a spec or .onnx file)")
    ref_backend = resolve_backend("auto", policy.reference)
    reference = create_encoder(ref_backend.name, model=policy.reference, device=policy.device,
                               pretrained=policy.reference_pretrained,
                               seed=policy.seed if ref_backend.takes("seed") else None)
    candidate = create_encoder("auto", model=policy.model, device=policy.device)
    items = collect_items(policy.images) if policy.images else sample_items()
    acceptance = accept_int8(reference, candidate, items, levels=options["levels"], seed=policy.seed)
    return {**report_header("vfmaudit.int8_acceptance", 1), "model": policy.model, "reference": policy.reference,
            "acceptance": acceptance}


def _int8_values(report: dict) -> dict:
    acc = report["acceptance"]
    values = {f"int8.cosine.{part}.{s}": _float(acc["cosine_to_fp32"][part][s])
              for part in ("all", "clean", "perturbed") for s in _DIST}
    values.update({f"int8.radius.{s}": _float(acc["radius_fp32_int8"][s]) for s in (*_DIST, "max")})
    values["int8.speedup"] = _float(acc["speed"]["int8_over_fp32"])
    values.update({f"int8.agreement.{k}": _float(v) for k, v in acc.get("agreement", {}).items()})
    return values


register_measurement(Measurement(
    name="int8", description="the INT8 model against its fp32 reference on the policy's images (INT8 acceptance)",
    options={"levels": Option(int, 3, "levels per family of the robustness profile")},
    metric_paths=_int8_paths, run=_int8_run, values=_int8_values))


# -- bench ---------------------------------------------------------------------------------------
_LATENCY = ("min", "mean", "median", "p90", "p95", "p99")


def _bench_paths(policy, options) -> dict[str, MetricInfo]:
    paths = {"bench.throughput": MetricInfo(True, (0, INF))}
    paths.update({f"bench.latency_ms.{k}": MetricInfo(False, (0, INF)) for k in _LATENCY})
    return paths


def _bench_run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.bench import bench_encoders
    from vfmaudit.runtime import resolve_backend

    backend = resolve_backend(options["backend"], policy.model).name
    res = bench_encoders(policy.model, [backend], [options["batch_size"]], [options["precision"]],
                         device=policy.device, warmup_s=0.5, duration_s=options["duration"],
                         pretrained=policy.pretrained, seed=policy.seed)
    row = res.rows[0]
    if row["status"] != "ok":
        raise VfmauditError(f"{policy.source}: the bench measurement cannot run here: {row['reason']}")
    return res.to_json()


def _bench_values(report: dict) -> dict:
    row = report["rows"][0]
    values = {"bench.throughput": _float(row["throughput"])}
    values.update({f"bench.latency_ms.{k}": _float(row["latency_ms"][k]) for k in _LATENCY})
    return values


register_measurement(Measurement(
    name="bench", description="encoder throughput and latency (vfmaudit bench encoder)",
    options={"backend": Option(str, "auto", "backend (auto: by the model's file suffix)"),
             "precision": Option(str, "fp32", "precision"), "batch_size": Option(int, 8, "batch size"),
             "duration": Option((int, float), 2.0, "timed seconds")},
    metric_paths=_bench_paths, run=_bench_run, values=_bench_values))


# -- agreement under perturbation ----------------------------------------------------------------
def _agreement_paths(policy, options) -> dict[str, MetricInfo]:
    return {f"agreement.{p.name}.{k}.{s}": MetricInfo(True, (0, 1))
            for p in _audit_plan(policy, options) for k in AGREEMENT_KEYS for s in ("mean", "min")}


def _agreement_run(policy, options, out_dir: Path) -> dict:
    import numpy as np

    from vfmaudit import perturb
    from vfmaudit.artefact.provenance import report_header
    from vfmaudit.audit.runner import open_encoder
    from vfmaudit.audit import AuditConfig
    from vfmaudit.data.sources import collect_items, sample_items
    from vfmaudit.errors import ImageDecodeError
    from vfmaudit.metrics import neighbour_agreement

    config = AuditConfig(inputs=policy.images, model=policy.model, pretrained=policy.pretrained, seed=policy.seed,
                         device=policy.device)
    encoder = open_encoder(config)
    items = collect_items(policy.images) if policy.images else sample_items()
    images = []
    for item in items[:options["max_images"]]:
        try:
            images.append(encoder.preprocess.prepare(item.load()))
        except ImageDecodeError:
            continue
    base = np.stack(images)
    clean = encoder.encode(base)
    families = {}
    for plan in _audit_plan(policy, options):
        fam = perturb.get(plan.name)
        per_level = [neighbour_agreement(clean, encoder.encode(perturb.apply(base, plan.name, lv, seed=policy.seed)),
                                         candidate_gallery=False)
                     for lv in plan.levels if not fam.is_identity(lv)]
        families[plan.name] = {k: {"mean": _mean([p[k] for p in per_level]), "min": _min([p[k] for p in per_level])}
                               for k in AGREEMENT_KEYS}
    return {**report_header("vfmaudit.agreement", 1), "model": policy.model, "images": len(base),
            "families": families}


def _mean(v):
    return None if not v or any(x is None for x in v) else float(sum(v) / len(v))


def _min(v):
    return None if not v or any(x is None for x in v) else float(min(v))


def _agreement_values(report: dict) -> dict:
    return {f"agreement.{fam}.{k}.{s}": _float(stats[s]) for fam, entry in report["families"].items()
            for k, stats in entry.items() for s in ("mean", "min")}


register_measurement(Measurement(
    name="agreement", description="label-free neighbour agreement of perturbed queries against the clean index",
    options={"perturbations": Option(str, "all", "families, as --perturbations"),
             "levels": Option(int, 3, "levels per family"),
             "max_images": Option(int, 256, "images used (all pairs among them are compared)")},
    metric_paths=_agreement_paths, run=_agreement_run, values=_agreement_values))


# -- downstream ----------------------------------------------------------------------------------
_TASK_METRICS = {"linear_probe": {"accuracy": True, "accuracy_drop": False, "ece": False},
                 "knn_1": {"accuracy": True, "accuracy_drop": False},
                 "knn_20": {"accuracy": True, "accuracy_drop": False},
                 "zero_shot": {"accuracy": True, "accuracy_drop": False, "ece": False},
                 "retrieval": {"recall@1": True, "recall@5": True, "map": True}}
_TASK_KEYS = {"linear-probe": ["linear_probe"], "knn": ["knn_1", "knn_20"], "retrieval": ["retrieval"],
              "zero-shot": ["zero_shot"]}


def _downstream_config(policy, options, out_dir: Path | None = None):
    from vfmaudit.downstream import DownstreamConfig

    return DownstreamConfig(dataset=options["dataset"], model=policy.model, pretrained=policy.pretrained,
                            device=policy.device, tasks=options["tasks"], perturbations=options["perturbations"],
                            levels=options["levels"], seed=policy.seed, max_per_class=options["max_per_class"],
                            out=str(out_dir / "downstream") if out_dir else "", overwrite=True)


def _downstream_paths(policy, options) -> dict[str, MetricInfo]:
    config = _downstream_config(policy, options)
    paths = {}
    for task in config.task_list():
        for key in _TASK_KEYS[task]:
            for metric, higher in _TASK_METRICS[key].items():
                rng = (-1, 1) if metric == "accuracy_drop" else (0, 1)
                if metric != "accuracy_drop":
                    paths[f"downstream.{key}.clean.{metric}"] = MetricInfo(higher, rng)
                for p in config.plan():
                    for stat in ("max", "mean", "min"):
                        paths[f"downstream.{key}.{p.name}.{metric}.{stat}"] = MetricInfo(higher, rng)
    return paths


def _downstream_run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.downstream import run_downstream

    return run_downstream(_downstream_config(policy, options, out_dir)).to_json()


def _downstream_values(report: dict) -> dict:
    values = {}
    for key, entry in report["tasks"].items():
        values.update({f"downstream.{key}.clean.{m}": _float(v) for m, v in entry["clean"].items()})
        for fam, rows in entry["families"].items():
            for metric in _TASK_METRICS.get(key, {}):
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
             "perturbations": Option(str, "all", "families, as --perturbations"),
             "levels": Option(int, 3, "levels per family"),
             "max_per_class": Option((int, type(None)), None, "images per class (default: all)")},
    metric_paths=_downstream_paths, run=_downstream_run, values=_downstream_values))
