"""Run an audit: inputs -> perturbations -> encoder -> metrics -> CSV tables and report.json on disk.

Rendering for people (report.html, console tables) is the report layer's: `vfmaudit.run_audit`
(vfmaudit/api.py) runs this and then writes the HTML. Where the work runs is the engine table's
choice (`AUDIT_ENGINES`: one entry per engine of `vfmaudit.engines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vfmaudit.audit import local_engine, ray_engine
from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.result import AuditResult, ProgressFn
from vfmaudit.audit.inputs import open_inputs
from vfmaudit.engines import get_engine
from vfmaudit.errors import VfmauditError
from vfmaudit.files import check_output_folder, lock_folder
from vfmaudit.runtime import Encoder


@dataclass(frozen=True)
class AuditEngine:
    # (config, encoder or None) -> what run needs; runs before the output folder is touched
    prepare: Callable[[AuditConfig, Encoder | None], object]
    # (config, plans, source or None for the samples, prepared, progress) -> the result; runs with the folder locked
    run: Callable[..., AuditResult]


AUDIT_ENGINES = {"local": AuditEngine(local_engine.prepare, local_engine.run),
                 "ray": AuditEngine(ray_engine.prepare, ray_engine.run)}


def measure_audit(config: AuditConfig, progress: ProgressFn | None = None, encoder: Encoder | None = None,
                  on_complete: Callable[[AuditResult], object] | None = None) -> AuditResult:
    """Audit the configured model on the configured images; tables and report.json land in config.out.

    Pass `encoder` to audit an Encoder you built yourself (config.model is then only a label; the
    local engine). The run holds an exclusive lock on config.out from start to end (`on_complete`,
    which writes further outputs, runs inside it): a second process on the same folder stops with
    one line.
    """
    plans = config.plan()
    source = open_inputs(config)  # listed and checked: a bad source is one line before any work
    engine = AUDIT_ENGINES[get_engine(config.engine).name]  # a one-line error when Ray is not installed
    prepared = engine.prepare(config, encoder)
    out = Path(config.out)
    check_output_folder(out)
    with lock_folder(out):
        result = engine.run(config, plans, source, prepared, progress or (lambda event, n: None))
        _refuse_nothing_audited(result)
        if on_complete:
            on_complete(result)
    return result


def _refuse_nothing_audited(result: AuditResult) -> None:
    """An audit of no image is no success: exit 2 naming what was skipped (report.json lists it all)."""
    report = result.report
    if report["images"]["audited"]:
        return
    skipped = report["skipped"]
    named = "; ".join(f"{s['input']}: {s['reason']}" for s in skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
    raise VfmauditError(f"none of the {len(skipped)} input(s) could be audited ({named}); "
                        f"{result.report_path} lists them; pass readable images", param="inputs")
