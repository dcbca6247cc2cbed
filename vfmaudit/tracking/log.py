"""One MLflow run per command: params, metrics (series as steps), artefacts and tags, logged at the end.

The run is created when the work is done (with the time the command started), so a command that stops
on bad input leaves no half-filled run; a logging failure marks the run FAILED and says the results are
on disk.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from vfmaudit.files import write_json
from vfmaudit.tracking.client import Tracking, mlflow_errors, safe_uri
from vfmaudit.tracking.metrics import metric_key

# MLflow's limits: a param value of at most 6000 characters; a batch of 1000 metrics, 100 params, 100 tags
_PARAM_CHARS = 6000
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}
# files that are the model itself: registered by `gate --register`, not copied into every run
MODEL_SUFFIXES = {".onnx", ".engine", ".plan", ".safetensors", ".pt", ".pth", ".bin", ".ckpt"}
# option names whose values are never logged (credentials live in storage options)
SECRET_OPTIONS = ("storage_option", "storage_options", "token", "password", "secret", "credential")


@dataclass
class RunRecord:
    """What one command hands to MLflow."""

    command: str  # "audit", "gate", "bench encoder", ...
    params: dict = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    series: dict[str, list] = field(default_factory=dict)  # metric -> one value per step
    artefacts: list[tuple[Path, str]] = field(default_factory=list)  # (file or folder, artefact path)
    documents: dict[str, dict] = field(default_factory=dict)  # JSON files written for the run: name -> content
    tags: dict = field(default_factory=dict)
    run_name: str | None = None
    start_time: float = field(default_factory=time.time)


def loggable_params(options: dict) -> dict[str, str]:
    """A command's options as MLflow params: secrets left out, None left out, values as text."""
    params = {}
    for k, v in options.items():
        if v is None or any(s in k.lower() for s in SECRET_OPTIONS):
            continue
        text = json.dumps(v, default=str) if isinstance(v, (list, tuple, dict)) else str(v)
        params[metric_key(k)] = text[:_PARAM_CHARS]
    return params


def git_commit(folder: str | Path = ".") -> str | None:
    """The commit checked out in the working folder, when it is inside a git work tree."""
    if shutil.which("git") is None:
        return None
    try:
        done = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def standard_tags(command: str) -> dict[str, str]:
    """The tags every vfmaudit run carries: version, git commit, hardware, the command."""
    from vfmaudit import __version__
    from vfmaudit.artefact.provenance import fingerprint

    fp = fingerprint()
    tags = {"vfmaudit.command": command, "vfmaudit.version": __version__,
            "vfmaudit.hardware": f"{fp['cpu']} x{fp['cpu_cores']}, {fp['memory_gb']} GB"
                                 + (f", {fp['gpu']}" if fp.get("gpu") else ""),
            "mlflow.source.name": f"vfmaudit {command}", "mlflow.source.type": "LOCAL"}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _stage_artefacts(artefacts: list[tuple[Path, str]], staging: Path) -> list[tuple[Path, str]]:
    """Folders copied without model files and locks; files as they are."""
    staged = []
    for k, (path, name) in enumerate(artefacts):
        path = Path(path)
        if path.is_dir():
            target = staging / str(k)
            shutil.copytree(path, target, ignore=lambda d, names: [
                n for n in names if Path(n).suffix.lower() in MODEL_SUFFIXES or n.startswith(".vfmaudit")])
            staged.append((target, name))
        elif path.is_file():
            staged.append((path, name))
    return staged


def log_run(tracking: Tracking, record: RunRecord) -> str:
    """Create, fill and finish one run; its id."""
    from mlflow.entities import Metric, Param

    client = tracking.client
    where = f"logging to the MLflow tracking store {tracking.describe()} (experiment {tracking.experiment})"
    tags = {**standard_tags(record.command), **{k: str(v) for k, v in record.tags.items()}}
    with mlflow_errors(where):
        run = client.create_run(tracking.experiment_id, start_time=int(record.start_time * 1000), tags=tags,
                                run_name=record.run_name)
    run_id = run.info.run_id
    try:
        with mlflow_errors(where):
            now = int(time.time() * 1000)
            metrics = [Metric(k, v, now, 0) for k, v in record.metrics.items()]
            metrics += [Metric(k, float(v), now, step) for k, values in record.series.items()
                        for step, v in enumerate(values) if v is not None]
            params = [Param(k, v) for k, v in record.params.items()]
            for batch in _chunks(metrics, _BATCH["metrics"]):
                client.log_batch(run_id, metrics=batch)
            for batch in _chunks(params, _BATCH["params"]):
                client.log_batch(run_id, params=batch)
            with tempfile.TemporaryDirectory(prefix="vfmaudit-mlflow-") as tmp:
                staged = _stage_artefacts(record.artefacts, Path(tmp))
                for name, doc in record.documents.items():
                    path = Path(tmp) / "documents" / name
                    path.parent.mkdir(exist_ok=True)
                    write_json(doc, path)
                    staged.append((path, ""))
                for path, name in staged:
                    if path.is_dir():
                        client.log_artifacts(run_id, str(path), name or None)
                    else:
                        client.log_artifact(run_id, str(path), name or None)
            client.set_terminated(run_id, "FINISHED")
    except BaseException:
        try:
            client.set_terminated(run_id, "FAILED")
        except Exception:  # noqa: BLE001 - the store is what failed; the first error is the one to show
            pass
        raise
    return run_id


def run_link(tracking: Tracking, run_id: str) -> str:
    """Where a person finds the run: the server's page, or the run id in a local store."""
    uri = safe_uri(tracking.uri)
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{tracking.experiment_id}/runs/{run_id}"
    return f"run {run_id} in {uri}"
