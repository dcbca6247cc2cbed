"""`--mlflow` on a command: the store reached before the command's work, one run logged after it.

A command decorated with @tracked("audit") has an `mlflow` parameter (common.MlflowOpt); its body
hands its result to `record_run(...)`. Exit 0 and exit 1 (a failed target) are logged, with the verdict
as a tag; a command that stops on bad input (exit 2) logs nothing.
"""

from __future__ import annotations

import contextvars
import functools
import time
from pathlib import Path
from typing import Callable

import typer

from vfmaudit.cli.common import out

# options that are how the command talks, not what it measured
_NOT_PARAMS = {"mlflow", "quiet", "json_out", "csv_out", "report_thumbnails"}
_session: contextvars.ContextVar["CommandSession | None"] = contextvars.ContextVar("vfmaudit_mlflow", default=None)


class CommandSession:
    def __init__(self, command: str, tracking, options: dict):
        self.command, self.tracking = command, tracking
        self.options = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items() if k not in _NOT_PARAMS}
        self.quiet = bool(options.get("quiet"))
        self.start = time.time()
        self.report: dict | None = None
        self.files: list[tuple[Path, str]] = []
        self.verdict = "done"
        self.series: dict[str, list] = {}

    def finish(self, verdict: str | None = None) -> None:
        from vfmaudit.files import file_sha256
        from vfmaudit.tracking.client import TrackingError
        from vfmaudit.tracking.log import RunRecord, log_run, loggable_params, run_link
        from vfmaudit.tracking.metrics import command_metrics

        if self.report is None:  # the command ended before it had a result: nothing to log
            return
        metrics, series = command_metrics(self.command.replace(" ", "."), self.report)
        series.update(self.series)
        params = loggable_params({"command": self.command, **self.options})
        model = self.options.get("model") or self.options.get("onnx_file") or ""
        weights = next((w for w in (self.options.get("pretrained"), model, self.options.get("onnx_file"))
                        if isinstance(w, str) and Path(w).is_file()), None)
        if weights:
            params["weights_sha256"] = file_sha256(weights)
        name = f"{self.command.split()[0]}.json"
        record = RunRecord(command=self.command, params=params, metrics=metrics, series=series,
                           artefacts=self.files,
                           documents={} if any(p.is_dir() for p, _ in self.files) else {name: self.report},
                           tags={"vfmaudit.verdict": verdict or self.verdict, "vfmaudit.model": str(model)},
                           run_name=f"{self.command} {Path(str(model)).name}".strip(), start_time=self.start)
        try:
            run_id = log_run(self.tracking, record)
        except TrackingError as e:  # the work is done and on disk: say so, exit 2 for the store
            raise TrackingError(f"vfmaudit {self.command} finished and its results are kept, but {e}") from None
        if not self.quiet:
            out.print(f"mlflow: {run_link(self.tracking, run_id)}", markup=False, highlight=False, soft_wrap=True)


def record_run(report: dict, files: list[Path | str | None] = (), verdict: str = "done",
               series: dict[str, list] | None = None) -> None:
    """The command's result for its MLflow run (a no-op without --mlflow): its report, its output files,
    and series of its own (metric -> one value per step, e.g. the training loss per step)."""
    session = _session.get()
    if session is None:
        return
    session.report = report
    session.series = dict(series or {})
    session.files = [(Path(f), "") for f in files if f is not None and Path(f).exists()]
    session.verdict = verdict


def tracked(command: str) -> Callable:
    """With --mlflow: reach the store first (one line and exit 2 if it cannot be), log the run at the end."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            uri = kwargs.get("mlflow")
            if uri is None:
                return fn(*args, **kwargs)
            from vfmaudit.tracking.client import connect, resolve_uri

            session = CommandSession(command, connect(resolve_uri(uri)), kwargs)
            token = _session.set(session)
            try:
                result = fn(*args, **kwargs)
            except typer.Exit as e:
                if e.exit_code == 1:  # a target or check failed: the run says so
                    session.finish(verdict="failed")
                raise
            finally:
                _session.reset(token)
            session.finish()
            return result

        return wrapper

    return decorate
