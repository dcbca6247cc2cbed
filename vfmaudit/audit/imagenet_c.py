"""The label-free ImageNet-C summary of an audit: per corruption, the mean divergence radius over
severities 1..5, their mean over the 15 (an mCE analogue without labels), and, against a reference
audit, the ratio of each and their mean ("0.8x the drift of our last release under ImageNet-C")."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.files import read_earlier_report
from vfmaudit.perturb.families.imagenet_c import EXTRA, FIFTEEN, SEVERITIES, family_name

METRIC = "divergence_radius"
DEFINITION = ("radius: per image, the radius of the smallest ball holding the embeddings of the clean image and "
              "of the corruption at each measured severity, averaged over images; mean_radius_15: its mean over "
              "the 15 corruptions (a label-free mCE analogue); relative: the ratio to the reference audit's radius, "
              "relative_15 its mean over the 15 (as CE is normalised by AlexNet's errors)")


def load_reference(path: str | Path) -> dict:
    """A reference audit's report.json (a file, or the output folder that holds it)."""
    return read_earlier_report(path, "report.json", "families", "--reference-report", "audit")


def _radius(entry: dict | None) -> float | None:
    summary = (entry or {}).get(METRIC)
    return float(summary["mean"]) if isinstance(summary, dict) and summary.get("mean") is not None else None


def _mean(values: list[float | None]) -> float | None:
    return sum(values) / len(values) if values and all(v is not None for v in values) else None


def imagenet_c_summary(families: dict, reference: dict | None = None, reference_name: str | None = None) -> dict | None:
    """The block report.json carries as "imagenet_c"; None when the audit measured no ImageNet-C family."""
    names = [c for c in (*FIFTEEN, *EXTRA) if family_name(c) in families]
    if not names:
        return None
    ref_families = (reference or {}).get("families", {})
    corruptions = {}
    for c in names:
        entry = families[family_name(c)]
        radius = _radius(entry)
        ref = _radius(ref_families.get(family_name(c))) if reference is not None else None
        levels = [float(v) for v in entry.get("levels", [])]
        corruptions[c] = {"family": family_name(c), "radius": radius, "severities": levels,
                          "imagenet_c_severities": levels == list(SEVERITIES),
                          "reference_radius": ref,
                          "relative": radius / ref if radius is not None and ref else None}
    fifteen = [c for c in FIFTEEN if c in corruptions]
    complete = len(fifteen) == 15
    block = {
        "definition": DEFINITION,
        "corruptions": corruptions,
        "complete_15": complete,
        "missing_15": [c for c in FIFTEEN if c not in corruptions],
        "mean_radius_15": _mean([corruptions[c]["radius"] for c in FIFTEEN]) if complete else None,
        "mean_radius_extra": _mean([corruptions[c]["radius"] for c in EXTRA]) if all(c in corruptions for c in EXTRA)
        else None,
        "reference": reference_name,
        "relative_15": _mean([corruptions[c]["relative"] for c in FIFTEEN]) if complete and reference else None,
    }
    if reference is not None:
        ref_block = reference.get("imagenet_c") or {}
        block["reference_mean_radius_15"] = ref_block.get("mean_radius_15")
    return block


def summary_line(block: dict) -> str:
    """One line for the console: the headline number, and its ratio to the reference."""
    if block.get("mean_radius_15") is None:
        measured = len(block["corruptions"])
        return (f"ImageNet-C: {measured} corruption(s) measured; the mean over the 15 needs all of them "
                f"(-p imagenet-c); missing: {', '.join(block['missing_15'])}")
    line = f"ImageNet-C: mean divergence radius over the 15 corruptions {block['mean_radius_15']:.4f}"
    if block.get("relative_15") is not None:
        line += f"; {block['relative_15']:.2f}x the reference ({block['reference']})"
    return line
