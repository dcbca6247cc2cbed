"""parity.*: the artefact against its torch reference, or against golden data from that reference
(vfmaudit export check [--golden FILE]): with `golden`, the gate needs no torch (a device's CI)."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.errors import VfmauditError
from vfmaudit.gate.measurements._registry import (INF, Measurement, MetricInfo, Option, as_float,
                                                  policy_path, register_measurement)
from vfmaudit.metrics import AGREEMENT_KEYS

_PATHS = {"parity.cosine.min": ("min_cosine", MetricInfo(True, (-1, 1))),
          "parity.cosine.mean": ("mean_cosine", MetricInfo(True, (-1, 1))),
          "parity.cosine.median": ("median_cosine", MetricInfo(True, (-1, 1))),
          "parity.max_abs_diff": ("max_abs_diff", MetricInfo(False, (0, INF))),
          "parity.max_rel_diff": ("max_rel_diff", MetricInfo(False, (0, INF)))}


def _paths(policy, options) -> dict[str, MetricInfo]:
    paths = {k: info for k, (_, info) in _PATHS.items()}
    paths.update({f"parity.agreement.{k}": MetricInfo(True, (0, 1)) for k in AGREEMENT_KEYS})
    return paths


def _run(policy, options, out_dir: Path) -> dict:
    from vfmaudit.export import check_parity
    from vfmaudit.runtime import is_artefact_path

    if not is_artefact_path(policy.model):
        raise VfmauditError(f"{policy.source}: parity checks need model = an exported artefact (.onnx, .engine); "
                            f"'{policy.model}' is a model spec")
    if options["golden"]:
        if policy.reference:  # the policy's images are the other measurements': golden data has its own
            raise VfmauditError(f"{policy.source}: parity.golden stands for the reference: drop 'reference' from "
                                f"the policy, or drop golden")
        report = check_parity(policy.model, golden=policy_path(policy, options["golden"]),
                              precision=options["precision"], device=policy.device)
    else:
        report = check_parity(policy.model, model=policy.reference, pretrained=policy.reference_pretrained,
                              images=policy.images, precision=options["precision"], device=policy.device,
                              max_images=options["max_images"])
    return report.to_json()


def _values(report: dict) -> dict:
    s = report["summary"]
    values = {path: as_float(s[key]) for path, (key, _) in _PATHS.items()}
    values.update({f"parity.agreement.{k}": as_float(v) for k, v in s.get("agreement", {}).items()})
    return values


register_measurement(Measurement(
    name="parity", description="the artefact against its torch reference or golden data (vfmaudit export check)",
    options={"precision": Option((str, type(None)), None, "fp32, fp16, bf16 or int8 (default: the artefact's)"),
             "max_images": Option(int, 12, "images compared, each clean and with the parity edits"),
             "golden": Option((str, type(None)), None, "golden data (export check --save-golden) to compare against "
                                                        "instead of the torch reference: no torch needed")},
    metric_paths=_paths, run=_run, values=_values))
