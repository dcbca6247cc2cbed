"""JUnit XML for a gate: one <testcase> per check, which GitLab, Jenkins and GitHub reporters read.

The file is valid against the strict JUnit schema pytest's own tests use (junit-10.xsd): a testcase
is named by its check (its name, else its metric; made unique), its classname is the measurement,
and its time is its share of that measurement's real duration. A gate that cannot run (exit 2)
still writes a file: one testcase carrying the one-line reason, so a CI publishing step finds it.
"""

from __future__ import annotations

import platform
from collections import Counter
import xml.etree.ElementTree as ET
from pathlib import Path

from vfmaudit._version import __version__
from vfmaudit.files import write_text_atomic

SUITE_NAME = "vfmaudit gate"


def _seconds(t: float) -> str:
    return f"{max(t, 0.0):.3f}"  # the schema's SUREFIRE_TIME: at most three decimals


def unique_names(labels: list[str], places: list[str]) -> list[str]:
    """Each label, with its place in the policy added where two checks would share one name."""
    counts = Counter(labels)
    return [f"{label} [{place}]" if counts[label] > 1 else label for label, place in zip(labels, places)]


def _document(suite_name: str, cases: list[ET.Element], failures: int, errors: int, seconds: float,
              properties: list[tuple[str, str]]) -> str:
    suites = ET.Element("testsuites", name=SUITE_NAME, tests=str(len(cases)), failures=str(failures),
                        errors=str(errors), time=_seconds(seconds))
    suite = ET.SubElement(suites, "testsuite", name=suite_name, tests=str(len(cases)), failures=str(failures),
                          errors=str(errors), skipped="0", time=_seconds(seconds), hostname=platform.node())
    props = ET.SubElement(suite, "properties")
    for key, value in properties:
        ET.SubElement(props, "property", name=key, value=str(value))
    suite.extend(cases)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def gate_junit(result) -> str:
    policy = result.policy
    data = result.to_json()
    checks_of = Counter(c.check.measurement for c in result.checks)  # a measurement's time, shared by its checks
    names = unique_names([c.label for c in result.checks], [c.check.where or str(i) for i, c in
                                                             enumerate(result.checks)])
    cases = []
    for c, name in zip(result.checks, names):
        share = result.durations.get(c.check.measurement, 0.0) / checks_of[c.check.measurement]
        case = ET.Element("testcase", classname=c.check.measurement, name=name, time=_seconds(share))
        if not c.passed:
            failure = ET.SubElement(case, "failure", message=c.message(), type="threshold")
            failure.text = "\n".join(f"{k}: {v}" for k, v in c.to_json().items() if k != "message")
        else:
            ET.SubElement(case, "system-out").text = c.message()
        cases.append(case)
    properties = [("model", policy.model), ("pretrained", policy.pretrained or "random weights (seeded)"),
                  ("reference", policy.reference or ""), ("baseline", result.baseline_source or ""),
                  ("vfmaudit", data["vfmaudit_version"]),
                  *((f"duration_s.{k}", f"{v:.3f}") for k, v in result.durations.items()),
                  *((f"version.{k}", v) for k, v in data["versions"].items())]
    return _document(f"{SUITE_NAME}: {policy.source}", cases, result.failures, 0, sum(result.durations.values()),
                     properties)


def gate_error_junit(policy_source: str, reason: str) -> str:
    """The file for a gate that could not run: one errored testcase with the reason. The schema has no
    <error> element, so it is a <failure type="error"> (which every CI reader shows as failed) and the
    suite counts it as an error."""
    case = ET.Element("testcase", classname="gate", name="the gate runs", time=_seconds(0))
    ET.SubElement(case, "failure", message=reason, type="error").text = reason
    return _document(f"{SUITE_NAME}: {policy_source}", [case], 0, 1, 0.0, [("vfmaudit", __version__)])


def write_gate_junit(result, path: str | Path) -> Path:
    return write_text_atomic(path, gate_junit(result))


def write_gate_error_junit(policy_source: str, reason: str, path: str | Path) -> Path:
    return write_text_atomic(path, gate_error_junit(policy_source, reason))
