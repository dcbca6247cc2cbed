"""Rendering results for people: report.html pages and console tables.

The machine outputs (report.json, CSV tables, benchmark JSON/CSV) are written by the layers
that compute them; this layer reads their result objects and renders them.
"""

from vfmaudit.report.calibration_html import write_calibration_html
from vfmaudit.report.html_report import render_html, write_audit_html, write_html

__all__ = ["render_html", "write_html", "write_audit_html", "write_calibration_html"]
