"""The MLflow connection: which tracking URI, reached before any work starts, MLflow's errors as one line.

Which store: `--mlflow URI` > the policy's `[mlflow] tracking_uri` > $MLFLOW_TRACKING_URI > MLflow's own
default (sqlite:///mlflow.db in the working folder). Which experiment: the policy's `[mlflow] experiment` >
$MLFLOW_EXPERIMENT_NAME > "vfmaudit".
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

from vfmaudit.data.storage import without_userinfo as safe_uri  # a URI as it may be shown
from vfmaudit.errors import MissingDependency, VfmauditError

DEFAULT_EXPERIMENT = "vfmaudit"
# the HTTP client's settings while the store is first reached: a dead server is one line in seconds,
# not MLflow's default minutes of retries with back-off
_PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


class TrackingError(VfmauditError):
    """The tracking server or model registry refused or could not be reached (exit 2)."""


def mlflow_module():
    """`import mlflow`, or the one line naming the extra that installs it."""
    try:
        import mlflow
    except ModuleNotFoundError as e:
        raise MissingDependency(f"MLflow tracking and the model registry need the MLflow client (no module named "
                                f"'{e.name}' here): pip install 'vfmaudit[mlflow]'; without it, run without "
                                f"--mlflow, --register, --promote and models:/ baselines") from None
    # the local store's "creating tables" lines, MLflow's own INFO chatter, its run links on stdout (vfmaudit
    # prints its own) and its download bars are not the user's business; a user's own setting is kept
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def _message(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    text = " ".join(str(text).split())  # MLflow's messages span lines (server tracebacks included)
    return safe_uri(text)[:400]


@contextlib.contextmanager
def mlflow_errors(what: str) -> Iterator[None]:
    """MLflow's exceptions (and the connection errors under them) as one line saying what failed."""
    try:
        yield
    except VfmauditError:
        raise
    except Exception as e:  # noqa: BLE001 - the MLflow client raises its own and requests' errors
        from mlflow.exceptions import MlflowException

        if not isinstance(e, (MlflowException, OSError)) and "requests" not in type(e).__module__:
            raise
        raise TrackingError(f"{what}: {_message(e)}") from None


@contextlib.contextmanager
def _probe_settings() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in _PROBE_ENV}
    os.environ.update({k: v for k, v in _PROBE_ENV.items() if saved[k] is None})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


@dataclass
class Tracking:
    """A reached tracking store and its experiment: what every logging and registry call goes through."""

    uri: str  # as MLflow resolved it (shown without credentials)
    experiment: str
    experiment_id: str
    client: Any  # mlflow.MlflowClient

    def describe(self) -> str:
        return safe_uri(self.uri)


def resolve_uri(cli_uri: str | None = None, policy_uri: str | None = None) -> str | None:
    """The tracking URI by precedence; None: MLflow's own default. `--mlflow` without a value is ''."""
    return cli_uri or policy_uri or os.environ.get("MLFLOW_TRACKING_URI") or None


def _artefact_folder(uri: str) -> str | None:
    """For a SQLite store, a new experiment keeps its files in mlruns/ beside the database (MLflow's default,
    ./mlruns, would follow whichever folder each command runs in)."""
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None
    from pathlib import Path

    return (Path(uri[len("sqlite:///"):]).expanduser().resolve().parent / "mlruns").as_uri()


def connect(uri: str | None = None, experiment: str | None = None) -> Tracking:
    """Reach the store (and create the experiment when it is new) before any work starts."""
    mlflow = mlflow_module()
    from mlflow import MlflowClient

    name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    shown = safe_uri(uri or mlflow.get_tracking_uri())
    where = f"MLflow tracking store {shown}"
    with _probe_settings(), mlflow_errors(f"cannot reach the {where} (start the server, or check --mlflow / "
                                          f"MLFLOW_TRACKING_URI)"):
        client = MlflowClient(tracking_uri=uri) if uri else MlflowClient()
        found = client.get_experiment_by_name(name)
        if found is None:
            try:
                experiment_id = client.create_experiment(
                    name, artifact_location=_artefact_folder(uri or mlflow.get_tracking_uri()))
            except Exception:  # noqa: BLE001 - created at the same moment by another process
                found = client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found is not None:
            if found.lifecycle_stage != "active":
                raise TrackingError(f"experiment '{name}' in the {where} is deleted: restore it (mlflow "
                                    f"experiments restore) or name another")
            experiment_id = found.experiment_id
    return Tracking(uri=uri or mlflow.get_tracking_uri(), experiment=name, experiment_id=experiment_id,
                    client=client)
