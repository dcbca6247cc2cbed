"""report.json: the machine-readable result of an audit (versioned schema)."""

from __future__ import annotations

from pathlib import Path

from vfmaudit import perturb
from vfmaudit.artefact.provenance import package_versions, report_header
from vfmaudit.audit.pipeline import SMALL_INPUT_FACTOR
from vfmaudit.audit.result import REPORT_JSON, AuditResult
from vfmaudit.audit.store import ResultsStore
from vfmaudit.audit.imagenet_c import imagenet_c_summary, load_reference
from vfmaudit.perturb.families.imagenet_c import options as imagenet_c_options
from vfmaudit.audit.summary import family_summaries
from vfmaudit.audit.tables import PER_IMAGE, PER_LEVEL, iter_rows, write_parquet
from vfmaudit.files import write_json
from vfmaudit.metrics import metrics
from vfmaudit.perturb.plan import plan_warnings

SCHEMA = "vfmaudit.audit"
SCHEMA_VERSION = 1


def small_inputs_warning(small: dict[str, list[int]], model_size) -> list[str]:
    """One warning naming the inputs far below the model's input size (all listed in report.json)."""
    if not small:
        return []
    smallest = min(small, key=lambda k: min(small[k]))
    h, w = small[smallest]
    factor = min(model_size) / max(1, min(h, w))
    return [f"{len(small)} input(s) have a shorter side under 1/{SMALL_INPUT_FACTOR} of the model's "
            f"{model_size[0]}x{model_size[1]} input (smallest: {smallest}, {w}x{h}, upscaled {factor:.0f}x): their "
            f"drift measures the upscaling as much as the model; listed under small_inputs in report.json"]


def build_report(config, encoder_desc: dict, plans, families: dict, skipped: dict[str, str],
                 n_inputs_done: int, warnings: list[str] | None = None,
                 small: dict[str, list[int]] | None = None, source: dict | None = None) -> dict:
    weights = encoder_desc.get("weights", {})
    catalogue = perturb.families()
    for p in plans:
        fam = catalogue[p.name]
        families[p.name].update(levels=list(p.levels), units=fam.units, domain=[fam.lo, fam.hi],
                                identity=fam.identity)
    reference = getattr(config, "reference_report", None)
    corruption_summary = imagenet_c_summary(families, load_reference(reference) if reference else None,
                                            str(reference) if reference else None)
    return {
        **report_header(SCHEMA, SCHEMA_VERSION),
        "model": {k: encoder_desc.get(k) for k in ("spec", "embedding_dim", "preprocess")} | {"weights": weights},
        "random_weights": weights.get("kind") == "random",
        "weights": weights.get("label"),
        "backend": {k: v for k, v in encoder_desc.items() if k not in ("spec", "weights", "preprocess", "embedding_dim")},
        "seed": config.seed,
        "levels": config.levels,
        "protocol": getattr(config, "protocol", None),
        "perturbations": [p.name for p in plans],
        "metrics": {name: m.description for name, m in metrics().items()},
        "metric_directions": {name: m.direction for name, m in metrics().items()},
        "images": {"audited": n_inputs_done, "skipped": len(skipped)},
        "families": families,
        **({"imagenet_c": corruption_summary | {"options": imagenet_c_options()}} if corruption_summary else {}),
        "skipped": [{"input": k, "reason": v} for k, v in skipped.items()],
        "warnings": list(warnings or []),
        "small_inputs": [{"input": k, "size": v} for k, v in (small or {}).items()],
        "inputs": config.inputs or "built-in samples (skimage.data)",
        **({"source": source} if source else {}),
        "tables": _table_files(getattr(config, "tables", "csv")),
        "versions": package_versions(),
    }


def _table_files(tables: str) -> list[str]:
    csv_files = [PER_IMAGE, PER_LEVEL] if tables in ("csv", "both") else []
    parquet = [str(Path(n).with_suffix(".parquet")) for n in (PER_IMAGE, PER_LEVEL)] if tables != "csv" else []
    return csv_files + parquet


def finish_report(config, plans, encoder_desc: dict, store: ResultsStore, source=None) -> AuditResult:
    """Summaries from the tables on disk, the Parquet tables where asked, and report.json: the last
    step of every engine (source: the ImageSource read, described in the report without secrets)."""
    families, _ = family_summaries(iter_rows(store.dir / PER_IMAGE), iter_rows(store.dir / PER_LEVEL),
                                   [p.name for p in plans])
    n_done = max((f["n_images"] for f in families.values()), default=0)
    warnings = [f"{n} duplicated row(s) in {name} were ignored: the folder had been written twice (two runs "
                f"at once, before vfmaudit locked its output folders)" for name, n in store.duplicates.items()]
    size = (encoder_desc.get("preprocess") or {}).get("size")
    warnings = plan_warnings(plans) + warnings + (small_inputs_warning(store.small, size) if size else [])
    described = source.describe() if source is not None else None
    if described is not None:
        described["shards_reused"] = len(store.shards_done_before)
    report = build_report(config, encoder_desc, plans, families, store.skipped, n_done, warnings, store.small,
                          described)
    tables = getattr(config, "tables", "csv")
    if tables != "csv":
        for name in (PER_IMAGE, PER_LEVEL):
            write_parquet(store.dir / name)
            if tables == "parquet":
                (store.dir / name).unlink()
    write_json(report, store.dir / REPORT_JSON)
    return AuditResult(report=report, out_dir=Path(config.out))
