"""JUnit XML for a gate: one <testcase> per check, which GitLab, Jenkins and GitHub reporters read."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from vfmaudit.files import write_text_atomic


def gate_junit(result) -> str:
    policy = result.policy
    n, failures = len(result.checks), result.failures
    suites = ET.Element("testsuites", name="vfmaudit gate", tests=str(n), failures=str(failures), errors="0",
                        skipped="0", time="0")
    suite = ET.SubElement(suites, "testsuite", name=f"vfmaudit gate: {policy.source}", tests=str(n),
                          failures=str(failures), errors="0", skipped="0", time="0")
    props = ET.SubElement(suite, "properties")
    data = result.to_json()
    for key, value in (("model", policy.model), ("pretrained", policy.pretrained or "random weights (seeded)"),
                       ("reference", policy.reference or ""), ("baseline", result.baseline_source or ""),
                       ("vfmaudit", data["vfmaudit_version"]),
                       *((f"version.{k}", v) for k, v in data["versions"].items())):
        ET.SubElement(props, "property", name=key, value=str(value))
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", classname=c.check.measurement, name=c.check.metric, time="0")
        if not c.passed:
            failure = ET.SubElement(case, "failure", message=c.message(), type="threshold")
            failure.text = "\n".join(f"{k}: {v}" for k, v in c.to_json().items() if k != "message")
        else:
            ET.SubElement(case, "system-out").text = c.message()
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_gate_junit(result, path: str | Path) -> Path:
    return write_text_atomic(path, gate_junit(result))
