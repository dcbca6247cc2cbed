"""Acceptance gates: a policy of checks over the measurements' metrics -> pass/fail, for CI."""

from vfmaudit.gate.measurements import Measurement, MetricInfo, get_measurement, measurements, register_measurement
from vfmaudit.gate.policy import Check, Policy, load_policy
from vfmaudit.gate.runner import Baseline, CheckResult, GateResult, evaluate, load_baseline, run_gate

__all__ = ["run_gate", "GateResult", "CheckResult", "load_policy", "Policy", "Check", "evaluate", "load_baseline", "Baseline",
           "Measurement", "MetricInfo", "measurements", "get_measurement", "register_measurement"]
