"""Markdown for a gate: a table for a pull request comment or $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.files import write_text_atomic

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "`": "\\`", "\\": "\\\\", "*": "\\*", "_": "\\_",
            "[": "\\[", "]": "\\]", "\n": " ", "\r": " "}


def md(text) -> str:
    """Any value as Markdown text that stays itself: no table column from a pipe, no HTML, no emphasis,
    no link, no line break (names and paths come from users' policies)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.6g}"


def gate_markdown(result) -> str:
    policy = result.policy
    verdict = "✅ passed" if result.passed else f"❌ failed ({result.failures} of {len(result.checks)} checks)"
    lines = [f"## vfmaudit gate: {verdict}", "",
             f"Policy {md(policy.source)}, model {md(policy.model)} "
             f"(weights: {md(policy.pretrained or 'seeded random')})"
             + (f", reference {md(policy.reference)}" if policy.reference else "") + ".", ""]
    if result.baseline_source:
        lines += [f"Regression checks compare with the baseline {md(result.baseline_source)}.", ""]
    lines += ["| | check | value | threshold | baseline | margin |", "|---|---|---|---|---|---|"]
    for c in result.checks:
        thresholds = ", ".join(f"{k} {v:g}" for k, v in c.check.thresholds.items())
        margins = ", ".join("–" if x["margin"] is None else f"{x['margin']:+.3g}" for x in c.conditions)
        label = md(c.check.name) + (f" ({md(c.check.metric)})" if c.check.name != c.check.metric else "") \
            if c.check.name else md(c.check.metric)
        lines.append(f"| {'✅' if c.passed else '❌'} | {label} | {_fmt(c.value)} | {thresholds} | "
                     f"{_fmt(c.baseline)} | {margins} |")
    if result.compare_path:
        lines += ["", f"Baseline against candidate, per family and per image: {md(result.compare_path)}"]
    if result.reports:
        lines += ["", "Measurement reports: " + ", ".join(md(p) for p in result.reports.values())]
    return "\n".join(lines) + "\n"


def write_gate_markdown(result, path: str | Path, append: bool = False) -> Path:
    path = Path(path)
    if append and path.exists():  # $GITHUB_STEP_SUMMARY collects several steps
        with open(path, "a", encoding="utf-8") as f:
            f.write(gate_markdown(result))
        return path
    return write_text_atomic(path, gate_markdown(result))
