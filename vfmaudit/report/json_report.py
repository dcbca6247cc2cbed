"""report.json: the machine-readable result of an audit (versioned schema)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

from vfmaudit import __version__, perturb
from vfmaudit.report.versions import package_versions

SCHEMA = "vfmaudit.audit"
SCHEMA_VERSION = 1


def build_report(config, encoder_desc: dict, plans, families: dict, skipped: dict[str, str],
                 n_inputs_done: int) -> dict:
    weights = encoder_desc.get("weights", {})
    catalogue = perturb.families()
    for p in plans:
        fam = catalogue[p.name]
        families[p.name].update(levels=list(p.levels), units=fam.units, domain=[fam.lo, fam.hi],
                                identity=fam.identity)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "vfmaudit_version": __version__,
        "model": {k: encoder_desc.get(k) for k in ("spec", "embedding_dim", "preprocess")} | {"weights": weights},
        "random_weights": weights.get("kind") == "random",
        "weights": weights.get("label"),
        "backend": {k: v for k, v in encoder_desc.items() if k not in ("spec", "weights", "preprocess", "embedding_dim")},
        "seed": config.seed,
        "levels": config.levels,
        "perturbations": [p.name for p in plans],
        "metrics": {
            "cosine": "mean cosine similarity between clean and perturbed embeddings (1 = robust)",
            "euclidean": "mean L2 distance between clean and perturbed embeddings (0 = robust)",
            "divergence_radius": "radius of the minimum enclosing ball of the clean and perturbed embeddings (0 = robust)",
        },
        "images": {"audited": n_inputs_done, "skipped": len(skipped)},
        "families": families,
        "skipped": [{"input": k, "reason": v} for k, v in skipped.items()],
        "inputs": config.inputs or "built-in samples (skimage.data)",
        "versions": package_versions(),
    }


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(report: dict, path: Path) -> None:
    """Write atomically (NaN/inf as null), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(report), indent=2))
    tmp.replace(path)
