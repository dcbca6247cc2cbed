"""MLflow tracking and model registry: one run per command, the gate against a registered version,
promotion only of what passes, and the history of a model's versions."""

from vfmaudit.tracking.client import DEFAULT_EXPERIMENT, Tracking, TrackingError, connect, resolve_uri
from vfmaudit.tracking.log import RunRecord, log_run
from vfmaudit.tracking.registry import is_model_uri, parse_model_uri

__all__ = ["Tracking", "TrackingError", "connect", "resolve_uri", "DEFAULT_EXPERIMENT", "RunRecord", "log_run",
           "is_model_uri", "parse_model_uri"]
