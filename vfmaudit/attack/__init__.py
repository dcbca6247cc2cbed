"""Worst case, not average case: embedding-space attacks within a stated budget (white-box PGD and
APGD on the torch model, black-box Square on any artefact) and the oracle-gated edit search with
FMR, reported on the audit's scale."""

from vfmaudit.attack.config import METHODS, THREAT_MODEL, AttackConfig
from vfmaudit.attack.runner import AttackResult, run_attack
from vfmaudit.attack.threat import NORMS
from vfmaudit.attack.whitebox import LOSSES

__all__ = ["AttackConfig", "AttackResult", "run_attack", "METHODS", "NORMS", "LOSSES", "THREAT_MODEL"]
