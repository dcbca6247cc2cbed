"""report.json: the machine-readable result of an audit (versioned schema)."""

from __future__ import annotations

from vfmaudit import perturb
from vfmaudit.artefact.provenance import package_versions, report_header
from vfmaudit.metrics import metrics

SCHEMA = "vfmaudit.audit"
SCHEMA_VERSION = 1


def build_report(config, encoder_desc: dict, plans, families: dict, skipped: dict[str, str],
                 n_inputs_done: int, warnings: list[str] | None = None) -> dict:
    weights = encoder_desc.get("weights", {})
    catalogue = perturb.families()
    for p in plans:
        fam = catalogue[p.name]
        families[p.name].update(levels=list(p.levels), units=fam.units, domain=[fam.lo, fam.hi],
                                identity=fam.identity)
    return {
        **report_header(SCHEMA, SCHEMA_VERSION),
        "model": {k: encoder_desc.get(k) for k in ("spec", "embedding_dim", "preprocess")} | {"weights": weights},
        "random_weights": weights.get("kind") == "random",
        "weights": weights.get("label"),
        "backend": {k: v for k, v in encoder_desc.items() if k not in ("spec", "weights", "preprocess", "embedding_dim")},
        "seed": config.seed,
        "levels": config.levels,
        "perturbations": [p.name for p in plans],
        "metrics": {name: m.description for name, m in metrics().items()},
        "metric_directions": {name: m.direction for name, m in metrics().items()},
        "images": {"audited": n_inputs_done, "skipped": len(skipped)},
        "families": families,
        "skipped": [{"input": k, "reason": v} for k, v in skipped.items()],
        "warnings": list(warnings or []),
        "inputs": config.inputs or "built-in samples (skimage.data)",
        "versions": package_versions(),
    }
