"""The model registry side of the gate: read a registered version's gate.json as the baseline,
register the candidate as a new version with its gate run, move an alias to it.

A version registered by vfmaudit is a gate run's `candidate/` artefact (the ONNX / engine file, the
weights file, or candidate/spec.json naming a model spec without weights); that run's `gate/` holds the
gate's folder (gate.json first), which is what a later gate reads as its baseline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from vfmaudit.errors import VfmauditError
from vfmaudit.tracking.client import Tracking, TrackingError, mlflow_errors

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))$")
GATE_ARTEFACTS = "gate"  # the gate's out folder inside its run
GATE_JSON_ARTEFACT = f"{GATE_ARTEFACTS}/gate.json"
CANDIDATE_ARTEFACTS = "candidate"
_ALIAS = re.compile(r"^[\w\-]+$")


def is_model_uri(text) -> bool:
    return isinstance(text, str) and text.startswith("models:/")


def parse_model_uri(uri: str, param: str = "baseline") -> tuple[str, str | None, str | None]:
    """models:/NAME@ALIAS or models:/NAME/VERSION -> (name, alias, version)."""
    m = MODEL_URI.match(uri)
    if not m or (m["version"] is not None and not m["version"].isdigit()):
        raise VfmauditError(f"{param} '{uri}' is not a registered model: use models:/NAME@ALIAS (e.g. "
                            f"models:/encoder@champion) or models:/NAME/VERSION (e.g. models:/encoder/3)", param=param)
    return m["name"], m["alias"], m["version"]


def check_model_name(name: str, param: str = "register") -> str:
    if not name or not name.strip() or any(c in name for c in "/:"):
        raise VfmauditError(f"{param} '{name}': a registered model name is not empty and has no '/' or ':'",
                            param=param)
    return name


def check_alias(alias: str, param: str = "promote") -> str:
    """MLflow's alias rules, said before the gate runs rather than after."""
    if not _ALIAS.match(alias or ""):
        raise VfmauditError(f"{param} '{alias}': an alias has only letters, digits, '_' and '-' (e.g. champion)",
                            param=param)
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise VfmauditError(f"{param} '{alias}' is reserved by MLflow (latest, v1, v2, ...): name another, e.g. "
                            f"champion", param=param)
    return alias


def _error_code(e: BaseException) -> str:
    return str(getattr(e, "error_code", ""))


def registered_model(tracking: Tracking, name: str, param: str = "baseline"):
    """The registered model, or one line naming the models the registry has."""
    from mlflow.exceptions import MlflowException

    client = tracking.client
    with mlflow_errors(f"reading model '{name}' from the registry at {tracking.describe()}"):
        try:
            return client.get_registered_model(name)
        except MlflowException as e:
            if "RESOURCE_DOES_NOT_EXIST" not in _error_code(e) and "NOT_FOUND" not in _error_code(e):
                raise
        known = sorted(m.name for m in client.search_registered_models(max_results=50))
    listed = f"registered: {', '.join(known[:12])}" if known else "the registry has no model yet"
    raise VfmauditError(f"{param}: no registered model '{name}' at {tracking.describe()} ({listed}); register one "
                        f"with vfmaudit gate POLICY --register {name}", param=param)


@dataclass
class RegistryVersion:
    name: str
    version: str
    run_id: str | None
    alias: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"

    def describe(self) -> str:
        return f"{self.uri} (version {self.version})" if self.alias else self.uri


def resolve_version(tracking: Tracking, uri: str, param: str = "baseline") -> RegistryVersion:
    """models:/NAME@ALIAS or models:/NAME/VERSION -> the version, or one line saying what is missing."""
    name, alias, version = parse_model_uri(uri, param)
    model = registered_model(tracking, name, param)
    aliases = dict(getattr(model, "aliases", {}) or {})
    if alias is not None:
        if alias not in aliases:
            have = ", ".join(f"{a} -> version {v}" for a, v in sorted(aliases.items())) or "none"
            raise VfmauditError(f"{param}: model '{name}' has no alias '{alias}' (aliases: {have}); promote a version "
                                f"with vfmaudit gate POLICY --register {name} --promote {alias}", param=param)
        version = str(aliases[alias])
    with mlflow_errors(f"reading version {version} of '{name}' from {tracking.describe()}"):
        versions = {str(v.version): v for v in tracking.client.search_model_versions(f"name = '{name}'")}  # int in a local store
    mv = versions.get(str(version))
    if mv is None:
        have = ", ".join(sorted(versions, key=int)) or "none"
        raise VfmauditError(f"{param}: model '{name}' has no version {version} (versions: {have})", param=param)
    return RegistryVersion(name=name, version=str(mv.version), run_id=mv.run_id, alias=alias)


def download_gate(tracking: Tracking, version: RegistryVersion, dst: Path, with_audit: bool = True,
                  param: str = "baseline") -> Path:
    """The version's gate.json (and the audit beside it, for the comparison page) -> dst/gate.json (dst/audit/)."""
    from mlflow.exceptions import MlflowException

    missing = (f"{param}: {version.describe()} has no {GATE_JSON_ARTEFACT} in its run (it was not registered by "
               f"vfmaudit gate --register, or its gate run lost its artefacts); gate against a version registered "
               f"by vfmaudit, or pass an earlier gate's folder")
    if not version.run_id:
        raise VfmauditError(missing, param=param)
    client = tracking.client
    dst.mkdir(parents=True, exist_ok=True)
    with mlflow_errors(f"downloading the gate of {version.describe()} from {tracking.describe()}"):
        try:
            listed = {f.path for f in client.list_artifacts(version.run_id, GATE_ARTEFACTS)}
        except MlflowException:
            listed = set()
        if GATE_JSON_ARTEFACT not in listed:
            raise VfmauditError(missing, param=param)
        client.download_artifacts(version.run_id, GATE_JSON_ARTEFACT, str(dst))
        if with_audit and f"{GATE_ARTEFACTS}/audit" in listed:
            client.download_artifacts(version.run_id, f"{GATE_ARTEFACTS}/audit", str(dst))
    return dst / "gate.json"  # MLflow downloads a path to dst/<its last part>: dst/gate.json, dst/audit/


def candidate_files(policy, staging: Path) -> list[Path]:
    """What a registered version holds: the exported file (an engine with its side-car), the weights file, or
    a spec.json naming the model; the first is the candidate itself."""
    from vfmaudit.artefact import sidecar_path
    from vfmaudit.runtime import is_artefact_path

    if is_artefact_path(policy.model):
        sidecar = sidecar_path(policy.model)  # a TensorRT engine's JSON side-car travels with it
        engine = Path(policy.model).suffix.lower() in (".engine", ".plan")
        return [Path(policy.model), *([sidecar] if engine and sidecar.is_file() else [])]
    if policy.pretrained and Path(policy.pretrained).is_file():
        return [Path(policy.pretrained)]
    spec = staging / "spec.json"
    spec.write_text(json.dumps({"model": policy.model, "pretrained": policy.pretrained, "seed": policy.seed},
                               indent=2) + "\n")
    return [spec]


def register_version(tracking: Tracking, name: str, run_id: str, candidate: list[Path], passed: bool,
                     description: str = "") -> RegistryVersion:
    """Log the candidate's files under the run's candidate/ and register that folder as the next version of
    `name` (created if new)."""
    from mlflow.exceptions import MlflowException

    client = tracking.client
    with mlflow_errors(f"registering the candidate as a version of '{name}' at {tracking.describe()}"):
        for path in candidate:
            client.log_artifact(run_id, str(path), CANDIDATE_ARTEFACTS)
        try:
            client.create_registered_model(name, description="Vision encoder versions gated by vfmaudit")
        except MlflowException as e:  # it exists (or was created a moment ago by another gate)
            if "ALREADY_EXISTS" not in _error_code(e):
                raise
        mv = client.create_model_version(
            name, f"runs:/{run_id}/{CANDIDATE_ARTEFACTS}", run_id=run_id, description=description,
            tags={"vfmaudit.gate": "passed" if passed else "failed", "vfmaudit.gate_json": GATE_JSON_ARTEFACT,
                  "vfmaudit.candidate": candidate[0].name})
    return RegistryVersion(name=name, version=str(mv.version), run_id=run_id)


class AliasMoved(VfmauditError):
    """The alias the candidate was compared with moved during the gate: not promoted (exit 1)."""

    exit_code = 1


def promote(tracking: Tracking, version: RegistryVersion, alias: str, compared_with: str | None = None) -> str:
    """Point `alias` at the version: the last step, one request (the alias is where it was if it fails).

    compared_with: the version the gate's baseline came from when it was this alias; if the alias has moved
    since, the candidate was not compared with what ships now, and it is not promoted."""
    from mlflow.exceptions import MlflowException

    client = tracking.client
    what = f"moving alias '{alias}' of '{version.name}' to version {version.version}"
    with mlflow_errors(what):
        if compared_with is not None:
            try:
                now = client.get_model_version_by_alias(version.name, alias).version
            except MlflowException:
                now = None
            if str(now) != str(compared_with):
                raise AliasMoved(f"not promoted: alias '{alias}' of '{version.name}' moved to version {now} while the "
                                 f"gate compared with version {compared_with}; gate again against the new "
                                 f"{alias}")
        client.set_registered_model_alias(version.name, alias, version.version)
        try:
            now = client.get_model_version_by_alias(version.name, alias).version
        except MlflowException as e:
            raise TrackingError(f"{what}: set, but reading it back failed ({e})") from None
    return str(now)
