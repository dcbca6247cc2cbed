"""A registered model's versions (or an experiment's gate runs) in order, each with its gate.json:
the values, the verdict, the checks; what `vfmaudit report history` renders."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vfmaudit.errors import VfmauditError
from vfmaudit.tracking.client import Tracking, mlflow_errors
from vfmaudit.tracking.registry import GATE_JSON_ARTEFACT, RegistryVersion, download_gate, is_model_uri, registered_model

SCHEMA = "vfmaudit.history"


@dataclass
class HistoryEntry:
    label: str  # "version 3", or a run's name and date for an experiment
    version: str | None
    run_id: str | None
    created: str  # ISO time, UTC
    model: str | None = None
    passed: bool | None = None  # None: no gate.json to read
    aliases: list[str] = field(default_factory=list)
    values: dict[str, float | None] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)  # metric, name, passed, value, thresholds
    note: str = ""

    def to_json(self) -> dict:
        return {"label": self.label, "version": self.version, "run_id": self.run_id, "created": self.created,
                "model": self.model, "passed": self.passed, "aliases": self.aliases, "values": self.values,
                "checks": self.checks, "note": self.note}


@dataclass
class History:
    source: str  # models:/NAME or "experiment NAME"
    tracking: str
    entries: list[HistoryEntry]
    path: Path | None = None

    @property
    def checked_metrics(self) -> list[str]:
        """Metrics some version's policy checked, in the order they first appear."""
        seen: dict[str, None] = {}
        for e in self.entries:
            for c in e.checks:
                seen.setdefault(c["metric"], None)
        return list(seen)

    @property
    def metrics(self) -> list[str]:
        return sorted({m for e in self.entries for m in e.values})

    def to_json(self) -> dict:
        from vfmaudit.artefact.provenance import report_header

        return {**report_header(SCHEMA, 1), "source": self.source, "tracking": self.tracking,
                "entries": [e.to_json() for e in self.entries], "checked_metrics": self.checked_metrics}


def _iso(ms: int | None) -> str:
    return datetime.fromtimestamp((ms or 0) / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def _fill(entry: HistoryEntry, gate_json: Path | None) -> HistoryEntry:
    if gate_json is None or not gate_json.is_file():
        entry.note = f"no {GATE_JSON_ARTEFACT} in its run"
        return entry
    data = json.loads(gate_json.read_text())
    entry.passed = bool(data.get("passed"))
    entry.model = (data.get("policy") or {}).get("model")
    entry.values = {k: v for k, v in (data.get("values") or {}).items() if v is None or isinstance(v, (int, float))}
    entry.checks = [{k: c.get(k) for k in ("metric", "name", "passed", "value", "thresholds")}
                    for c in data.get("checks", [])]
    return entry


def model_history(tracking: Tracking, name: str) -> History:
    """Every version of a registered model, oldest first."""
    model = registered_model(tracking, name, param="source")
    aliases: dict[str, list[str]] = {}
    for alias, version in (getattr(model, "aliases", {}) or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    with mlflow_errors(f"listing the versions of '{name}' at {tracking.describe()}"):
        versions = sorted(tracking.client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    entries = []
    with tempfile.TemporaryDirectory(prefix="vfmaudit-history-") as tmp:
        for mv in versions:
            entry = HistoryEntry(label=f"version {mv.version}", version=str(mv.version), run_id=mv.run_id,
                                 created=_iso(mv.creation_timestamp), aliases=sorted(aliases.get(str(mv.version), [])))
            rv = RegistryVersion(name=name, version=str(mv.version), run_id=mv.run_id)
            try:
                path = download_gate(tracking, rv, Path(tmp) / str(mv.version), with_audit=False, param="source")
            except VfmauditError:
                path = None
            entries.append(_fill(entry, path))
    return History(source=f"models:/{name}", tracking=tracking.describe(), entries=entries)


def experiment_history(tracking: Tracking, experiment: str) -> History:
    """Every gate run of an experiment, oldest first."""
    client = tracking.client
    with mlflow_errors(f"reading experiment '{experiment}' at {tracking.describe()}"):
        found = client.get_experiment_by_name(experiment)
        if found is None:
            known = sorted(e.name for e in client.search_experiments(max_results=50))
            raise VfmauditError(f"source: no experiment '{experiment}' at {tracking.describe()} (experiments: "
                                f"{', '.join(known[:12]) or 'none'}); name an experiment or models:/NAME",
                                param="source")
        runs = []
        token = None
        while True:  # every page: an experiment can hold more gate runs than one page
            page = client.search_runs([found.experiment_id], filter_string="tags.`vfmaudit.command` = 'gate'",
                                      order_by=["attributes.start_time ASC"], max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                break
    entries = []
    with tempfile.TemporaryDirectory(prefix="vfmaudit-history-") as tmp:
        for run in runs:
            entry = HistoryEntry(label=f"{run.info.run_name} ({_iso(run.info.start_time)})", version=None,
                                 run_id=run.info.run_id, created=_iso(run.info.start_time))
            rv = RegistryVersion(name=experiment, version="", run_id=run.info.run_id)
            try:
                path = download_gate(tracking, rv, Path(tmp) / run.info.run_id, with_audit=False, param="source")
            except VfmauditError:
                path = None
            entries.append(_fill(entry, path))
    return History(source=f"experiment {experiment}", tracking=tracking.describe(), entries=entries)


def read_history(tracking: Tracking, source: str) -> History:
    """models:/NAME -> its versions; anything else names an experiment."""
    if is_model_uri(source):
        name = source[len("models:/"):]
        if not name or any(c in name for c in "/@"):
            raise VfmauditError(f"source '{source}': the history is of a whole registered model: pass "
                                f"models:/NAME (no @alias or /version)", param="source")
        return model_history(tracking, name)
    return experiment_history(tracking, source)
