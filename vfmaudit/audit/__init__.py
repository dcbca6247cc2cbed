"""Orchestration of an audit: inputs, perturbations, encoder, metrics, resumable results.

`measure_audit` writes the machine outputs (CSV tables, report.json); `vfmaudit.run_audit`
adds the report for people (report.html).
"""

from vfmaudit.audit.config import DEFAULT_OUT, AuditConfig
from vfmaudit.audit.result import AuditResult
from vfmaudit.audit.runner import AUDIT_ENGINES, measure_audit

__all__ = ["AuditConfig", "AuditResult", "measure_audit", "AUDIT_ENGINES", "DEFAULT_OUT"]
