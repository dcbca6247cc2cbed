"""Writers for an audit's results: report.json, report.html, CSVs (written as work streams), console."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.report.console import print_summary
from vfmaudit.report.html_report import render_html, write_html
from vfmaudit.report.json_report import SCHEMA_VERSION, build_report, write_json
from vfmaudit.report.summary import family_summaries, summarize
from vfmaudit.report.tables import PER_IMAGE, PER_LEVEL, iter_rows

__all__ = ["write_reports", "print_summary", "render_html", "build_report", "family_summaries",
           "summarize", "SCHEMA_VERSION"]


def write_reports(out_dir: Path, skipped: dict[str, str], config, encoder_desc: dict, plans) -> dict:
    """Summarise the CSV tables in out_dir and write report.json and report.html there."""
    families, values = family_summaries(iter_rows(out_dir / PER_IMAGE), iter_rows(out_dir / PER_LEVEL),
                                         [p.name for p in plans])
    n_done = max((f["n_images"] for f in families.values()), default=0)
    report = build_report(config, encoder_desc, plans, families, skipped, n_done)
    write_json(report, out_dir / "report.json")
    write_html(report, values, out_dir / "report.html")
    return report
