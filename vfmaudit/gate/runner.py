"""Run a gate: validate the policy, run the measurements its checks need, evaluate the checks."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from vfmaudit.artefact.provenance import fingerprint, package_versions, report_header
from vfmaudit.data.source import using_options
from vfmaudit.errors import VfmauditError
from vfmaudit.files import lock_folder, write_json
from vfmaudit.gate.measurements import get_measurement
from vfmaudit.gate.policy import REGRESSION, Check, Policy, load_policy

SCHEMA = "vfmaudit.gate"
GATE_JSON = "gate.json"
DEFAULT_OUT = "vfmaudit-gate"


@dataclass
class CheckResult:
    check: Check
    value: float | None
    baseline: float | None
    conditions: list[dict]  # one per threshold: kind, threshold, compared value, margin, passed

    @property
    def passed(self) -> bool:
        return self.value is not None and all(c["passed"] for c in self.conditions)

    def message(self) -> str:
        if self.value is None:
            return f"{self.check.metric} was not measured (too few images for it?)"
        failed = [c for c in self.conditions if not c["passed"]] or self.conditions
        return "; ".join(_describe(self.check.metric, self.value, c) for c in failed)

    @property
    def label(self) -> str:
        """How people and CI dashboards name the check: its name, else its metric."""
        return self.check.name or self.check.metric

    def to_json(self) -> dict:
        return {"metric": self.check.metric, "name": self.check.name, "measurement": self.check.measurement,
                "direction": "higher is better" if self.check.info.higher_is_better else "lower is better",
                "value": self.value, "baseline": self.baseline, "thresholds": self.check.thresholds,
                "conditions": self.conditions, "passed": self.passed, "message": self.message()}


def _describe(metric: str, value: float, c: dict) -> str:
    kind, t, margin = c["kind"], c["threshold"], c["margin"]
    if kind in ("min", "max"):
        op = ">=" if kind == "min" else "<="
        return f"{metric} = {value:.6g}, needs {op} {t:g} (margin {margin:+.3g})"
    what = "worse than the baseline by" if kind == "max_drop" else "relatively worse than the baseline by"
    return f"{metric} = {value:.6g} is {what} {c['compared']:.3g} (allowed {t:g}, margin {margin:+.3g})"


@dataclass
class GateResult:
    policy: Policy
    dry_run: bool = False
    checks: list[CheckResult] = field(default_factory=list)
    values: dict[str, float | None] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)  # measurement -> its report file
    baseline_source: str | None = None
    baseline_folder: Path | None = None  # where the baseline's files are (its audit/ for the comparison page)
    out_dir: Path | None = None
    compare_path: Path | None = None  # baseline against candidate audit, when both exist
    durations: dict[str, float] = field(default_factory=dict)  # measurement -> seconds it ran
    mlflow: object | None = None  # what the registry loop did (vfmaudit.tracking.acceptance.LoopOutcome)
    # when and on what, stamped at the first to_json(): gate.json and --json are the same document
    _stamp: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return not self.dry_run and all(c.passed for c in self.checks)

    @property
    def failures(self) -> int:
        return sum(not c.passed for c in self.checks)

    def to_json(self) -> dict:
        if self._stamp is None:
            self._stamp = {"header": report_header(SCHEMA, 1), "versions": package_versions(),
                           "fingerprint": fingerprint() if not self.dry_run else None}
        return {**self._stamp["header"], "dry_run": self.dry_run, "passed": self.passed,
                "policy": self.policy.to_json(), "baseline": self.baseline_source,
                "counts": {"checks": len(self.checks), "failures": self.failures},
                "checks": [c.to_json() for c in self.checks], "values": self.values, "reports": self.reports,
                "durations_s": self.durations,
                "versions": self._stamp["versions"], "fingerprint": self._stamp["fingerprint"]}


@dataclass
class Baseline:
    """A baseline read elsewhere (a registered model version): its values, how to name it, its files."""

    values: dict
    source: str
    folder: Path | None = None


def load_baseline(path: str | Path) -> tuple[dict, str]:
    """An earlier gate's --out folder or its gate.json -> (metric values, where they came from)."""
    p = Path(path)
    if p.is_dir():
        p = p / GATE_JSON
    if not p.is_file():
        raise VfmauditError(f"baseline not found: {path} (pass an earlier gate's out folder or its {GATE_JSON})",
                            param="baseline")
    try:
        data = json.loads(p.read_text())
    except ValueError:
        raise VfmauditError(f"baseline {p} is not valid JSON", param="baseline") from None
    if data.get("schema") != SCHEMA or "values" not in data:
        raise VfmauditError(f"baseline {p} is not a vfmaudit gate result ({GATE_JSON})", param="baseline")
    return data["values"], str(p)


def evaluate(check: Check, value: float | None, baseline: dict | None) -> CheckResult:
    base = baseline.get(check.metric) if baseline is not None else None
    conditions = []
    for kind, t in check.thresholds.items():
        if value is None:
            conditions.append({"kind": kind, "threshold": t, "compared": None, "margin": None, "passed": False})
            continue
        if kind == "min":
            compared, margin = value, value - t
        elif kind == "max":
            compared, margin = value, t - value
        else:
            worse = check.info.worse_by(value, base)
            compared = worse if kind == "max_drop" else worse / max(abs(base), 1e-12)
            margin = t - compared
        conditions.append({"kind": kind, "threshold": t, "compared": compared, "margin": margin,
                           "passed": bool(margin >= 0)})
    return CheckResult(check=check, value=value, baseline=base, conditions=conditions)


def run_gate(policy_path: str | Path | Policy, baseline: str | Path | Baseline | None = None,
             out: str | Path | None = None,
             dry_run: bool = False, model: str | None = None, pretrained: str | None = None,
             progress=None) -> GateResult:
    """Validate the policy; unless dry_run, run the measurements its checks need and evaluate them.

    Every measurement's own report is kept in `out`, with gate.json (this result's to_json()).
    model / pretrained replace the policy's candidate (a fine-tuned model checked by its gate).
    """
    # a Policy already loaded (the registry loop reads its [mlflow] table first) is not read and checked again
    policy = policy_path if isinstance(policy_path, Policy) else load_policy(policy_path, model=model,
                                                                             pretrained=pretrained)
    base_values, base_source, base_folder = None, None, None
    if isinstance(baseline, Baseline):
        base_values, base_source, base_folder = baseline.values, baseline.source, baseline.folder
    elif baseline is not None:
        base_values, base_source = load_baseline(baseline)
        base_folder = Path(base_source).parent
    regression = [c for c in policy.checks if c.is_regression]
    if regression and base_values is None:
        raise VfmauditError(f"{policy.source}: {regression[0].where} ({regression[0].metric}) compares with a "
                            f"baseline ({', '.join(k for k in REGRESSION if k in regression[0].thresholds)}); "
                            f"pass baseline (an earlier gate's out folder)", param="baseline")
    for c in regression:
        if c.metric not in base_values:
            raise VfmauditError(f"baseline {base_source} has no value for {c.metric} ({c.where}); run the "
                                f"baseline gate with this check", param="baseline")
    result = GateResult(policy=policy, dry_run=dry_run, baseline_source=base_source, baseline_folder=base_folder)
    if dry_run:
        return result
    out_dir = Path(out or DEFAULT_OUT)
    result.out_dir = out_dir
    with lock_folder(out_dir), using_options(policy.source_options()):  # the policy's images, however stored
        for k, name in enumerate(policy.needed):
            m = get_measurement(name)
            if progress:
                progress(f"measuring {name} ({k + 1} of {len(policy.needed)})")
            t0 = time.perf_counter()
            report = m.run(policy, policy.options[name], out_dir)
            result.durations[name] = time.perf_counter() - t0
            report_path = out_dir / (m.own_report or f"{name}.json")
            if not m.own_report:  # the audit and downstream write their own folders
                write_json(report, report_path)
            result.reports[name] = str(report_path)
            result.values.update(m.values(report))
        result.checks = [evaluate(c, result.values.get(c.metric), base_values) for c in policy.checks]
        write_json(result.to_json(), out_dir / GATE_JSON)
    return result
