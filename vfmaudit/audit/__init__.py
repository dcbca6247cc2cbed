"""Orchestration of an audit: inputs, perturbations, encoder, metrics, resumable results."""

from vfmaudit.audit.config import DEFAULT_MODEL, DEFAULT_OUT, AuditConfig, FamilyPlan, parse_perturbations
from vfmaudit.audit.runner import AuditResult, run_audit

__all__ = ["AuditConfig", "FamilyPlan", "AuditResult", "run_audit", "parse_perturbations",
           "DEFAULT_MODEL", "DEFAULT_OUT"]
