"""The acceptance loop around a gate: baseline from the registry -> gate -> log the run -> register the
candidate -> promote it, only when every check passed.

Everything that can be refused (the store unreachable, an unknown model or alias, a version without a
gate.json, --promote without --register) is refused before any measurement runs; the alias moves last,
in one request, so a loop that fails on the way leaves it where it was.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vfmaudit.errors import VfmauditError
from vfmaudit.files import write_json
from vfmaudit.gate.policy import Policy, load_policy
from vfmaudit.gate.runner import Baseline, GateResult, load_baseline
from vfmaudit.tracking.client import Tracking, TrackingError, connect, resolve_uri
from vfmaudit.tracking.log import RunRecord, log_run, loggable_params, run_link
from vfmaudit.tracking.metrics import level_series, metric_key
from vfmaudit.tracking.registry import (GATE_ARTEFACTS, AliasMoved, RegistryVersion, candidate_files, check_alias,
                                        check_model_name, download_gate, is_model_uri, promote, register_version,
                                        resolve_version)


@dataclass
class LoopOutcome:
    """What the loop did in MLflow (GateResult.mlflow)."""

    tracking: str  # the store and experiment, shown without credentials
    run_id: str | None = None
    run_link: str | None = None
    baseline_version: RegistryVersion | None = None
    registered: RegistryVersion | None = None
    promoted: str | None = None  # the alias moved to the registered version
    not_promoted: str | None = None  # why a passing candidate was not promoted (the gate then exits 1)
    notes: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)  # what a dry run would do

    def to_json(self) -> dict:
        return {"tracking": self.tracking, "run_id": self.run_id, "run": self.run_link,
                "baseline": self.baseline_version.describe() if self.baseline_version else None,
                "registered": self.registered.uri if self.registered else None,
                "version": self.registered.version if self.registered else None,
                "promoted": self.promoted, "not_promoted": self.not_promoted}


def check_loop_options(register: str | None, promote_alias: str | None) -> None:
    if promote_alias is not None and register is None:
        raise VfmauditError("promote moves an alias to the version that --register creates: pass --register NAME "
                            "too", param="promote")
    if register is not None:
        check_model_name(register)
    if promote_alias is not None:
        check_alias(promote_alias)


def _fetch_baseline(tracking: Tracking, uri: str, folder: Path) -> tuple[Baseline, RegistryVersion]:
    version = resolve_version(tracking, uri)
    path = download_gate(tracking, version, folder)
    try:
        values, _ = load_baseline(path)
    except VfmauditError as e:
        raise VfmauditError(f"baseline {version.describe()}: {e}", param="baseline") from None
    return Baseline(values=values, source=version.describe(), folder=folder), version


def _record(result: GateResult, baseline_source: str | None, register: str | None, promote_alias: str | None,
            start: float) -> RunRecord:
    import json

    from vfmaudit.files import file_sha256
    from vfmaudit.runtime import is_artefact_path

    policy = result.policy
    params = {"command": "gate", "policy": policy.source, "policy_sha256": file_sha256(policy.source),
              "model": policy.model, "pretrained": policy.pretrained, "seed": policy.seed,
              "images": policy.images or "built-in samples", "baseline": baseline_source,
              "register": register, "promote": promote_alias, "checks": len(policy.checks)}
    weights = policy.model if is_artefact_path(policy.model) else policy.pretrained
    if weights and Path(weights).is_file():
        params["weights_sha256"] = file_sha256(weights)
    for name in policy.needed:
        params.update({f"{name}.{k}": v for k, v in policy.options[name].items()})
    series: dict[str, list] = {}
    audit_report = result.reports.get("audit")
    if audit_report and Path(audit_report).is_file():
        series = {metric_key(k): v for k, v in level_series(json.loads(Path(audit_report).read_text()),
                                                           "audit").items()}
    metrics = {metric_key(k): float(v) for k, v in result.values.items() if v is not None}
    return RunRecord(command="gate", params=loggable_params(params), metrics=metrics, series=series,
                     artefacts=[(result.out_dir, GATE_ARTEFACTS)],
                     tags={"vfmaudit.verdict": "passed" if result.passed else "failed",
                           "vfmaudit.checks_failed": result.failures, "vfmaudit.model": policy.model},
                     run_name=f"gate {Path(policy.model).name}", start_time=start)


def gate_with_registry(run: Callable[[Policy, object], GateResult], policy_path: str | Path, baseline=None,
                       mlflow: str | None = None, register: str | None = None, promote_alias: str | None = None,
                       dry_run: bool = False, model: str | None = None, pretrained: str | None = None,
                       progress=None) -> GateResult:
    """run(policy, baseline) is the gate itself (measurements, files), given the policy this loop loaded;
    this wraps it in the registry loop.

    progress(what): the loop's own stages (reading the baseline, logging, registering, promoting)."""
    start = time.time()
    stage = progress or (lambda what: None)
    check_loop_options(register, promote_alias)
    policy = load_policy(policy_path, model=model, pretrained=pretrained)
    tracking = connect(resolve_uri(mlflow, policy.mlflow.get("tracking_uri")), policy.mlflow.get("experiment"))
    outcome = LoopOutcome(tracking=f"{tracking.describe()} (experiment {tracking.experiment})")
    folder = Path(tempfile.mkdtemp(prefix="vfmaudit-baseline-"))
    try:
        if is_model_uri(baseline):
            stage(f"reading the baseline {baseline} from MLflow")
            baseline, outcome.baseline_version = _fetch_baseline(tracking, baseline, folder)
        result = run(policy, baseline)
        result.mlflow = outcome
        result.baseline_folder = None  # a temporary folder, removed below
        if dry_run:
            outcome.plan.append(f"would log the gate as a run in {outcome.tracking}")
            if register is not None:
                outcome.plan.append(f"would register the candidate ({result.policy.model}) as a new version of "
                                    f"'{register}'")
            if promote_alias is not None:
                outcome.plan.append(f"would move alias '{promote_alias}' to that version if every check passes")
            return result
        done = "passed" if result.passed else "failed"
        kept = f"the gate {done} and its results are in {result.out_dir}"
        promoting = False
        try:
            stage(f"logging the gate to MLflow ({outcome.tracking})")
            outcome.run_id = log_run(tracking, _record(result, result.baseline_source, register, promote_alias,
                                                       start))
            outcome.run_link = run_link(tracking, outcome.run_id)
            if register is not None:
                staging = folder / "candidate"
                staging.mkdir()
                stage(f"registering the candidate as a new version of '{register}'")
                outcome.registered = register_version(
                    tracking, register, outcome.run_id, candidate_files(result.policy, staging), result.passed,
                    description=f"{result.policy.model}: gate {done} ({result.policy.source})")
            if promote_alias is not None and result.passed:
                compared = outcome.baseline_version
                same_alias = (compared is not None and compared.name == register and compared.alias == promote_alias)
                promoting = True
                stage(f"moving alias '{promote_alias}' to version {outcome.registered.version}")
                try:
                    now = promote(tracking, outcome.registered, promote_alias,
                                  compared_with=compared.version if same_alias else None)
                except AliasMoved as e:
                    outcome.not_promoted = str(e)
                else:
                    outcome.promoted = promote_alias
                    if now != outcome.registered.version:  # another gate promoted right after this one
                        outcome.notes.append(f"alias '{promote_alias}' was moved on to version {now} by another "
                                             f"promotion just after this one")
            # what the loop did, for CI to read (beside gate.json, which the run holds and so cannot say it)
            write_json(outcome.to_json(), result.out_dir / "mlflow.json")
        except TrackingError as e:
            untouched = "; the alias was not moved" if promote_alias and not promoting else ""
            raise TrackingError(f"{kept}, but {e}{untouched}") from None
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)
