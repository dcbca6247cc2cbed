"""int8.*: the INT8 model against its fp32 reference on the policy's images (INT8 acceptance)."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.errors import VfmauditError
from vfmaudit.gate.measurements._registry import (INF, Measurement, MetricInfo, Option, as_float,
                                                  register_measurement)
from vfmaudit.metrics import AGREEMENT_KEYS

_DIST = ("min", "p5", "median", "mean")
_PARTS = ("all", "clean", "perturbed")


def _paths(policy, options) -> dict[str, MetricInfo]:
    paths = {f"int8.cosine.{part}.{s}": MetricInfo(True, (-1, 1)) for part in _PARTS for s in _DIST}
    paths.update({f"int8.radius.{s}": MetricInfo(False, (0, 1)) for s in (*_DIST, "max")})
    paths["int8.speedup"] = MetricInfo(True, (0, INF))
    paths.update({f"int8.agreement.{k}": MetricInfo(True, (0, 1)) for k in AGREEMENT_KEYS})
    return paths


def _run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.artefact.provenance import report_header
    from vfmaudit.calibration.acceptance import accept_int8
    from vfmaudit.data.source import read_items
    from vfmaudit.data.sources import sample_items
    from vfmaudit.runtime import open_encoder

    if not policy.reference:
        raise VfmauditError(f"{policy.source}: int8 checks need reference = the fp32 model (a spec or .onnx file)")
    reference = open_encoder(policy.reference, policy.reference_pretrained, device=policy.device, seed=policy.seed)
    candidate = open_encoder(policy.model, device=policy.device)
    items = read_items(policy.images) if policy.images else sample_items()
    acceptance = accept_int8(reference, candidate, items, levels=options["levels"], seed=policy.seed)
    return {**report_header("vfmaudit.int8_acceptance", 1), "model": policy.model, "reference": policy.reference,
            "acceptance": acceptance}


def _values(report: dict) -> dict:
    acc = report["acceptance"]
    values = {f"int8.cosine.{part}.{s}": as_float(acc["cosine_to_fp32"][part][s]) for part in _PARTS for s in _DIST}
    values.update({f"int8.radius.{s}": as_float(acc["radius_fp32_int8"][s]) for s in (*_DIST, "max")})
    values["int8.speedup"] = as_float(acc["speed"]["int8_over_fp32"])
    values.update({f"int8.agreement.{k}": as_float(v) for k, v in acc.get("agreement", {}).items()})
    return values


register_measurement(Measurement(
    name="int8", description="the INT8 model against its fp32 reference on the policy's images (INT8 acceptance)",
    options={"levels": Option(int, 3, "levels per family of the robustness profile")},
    metric_paths=_paths, run=_run, values=_values))
