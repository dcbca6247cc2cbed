"""Orchestration of an audit: inputs, perturbations, encoder, metrics, resumable results.

`measure_audit` writes the machine outputs (CSV tables, report.json); `vfmaudit.run_audit`
adds the report for people (report.html).
"""

from vfmaudit.audit.config import DEFAULT_MODEL, DEFAULT_OUT, AuditConfig, FamilyPlan, parse_perturbations
from vfmaudit.audit.runner import AuditResult, measure_audit, open_encoder

__all__ = ["AuditConfig", "FamilyPlan", "AuditResult", "measure_audit", "open_encoder", "parse_perturbations",
           "DEFAULT_MODEL", "DEFAULT_OUT"]
