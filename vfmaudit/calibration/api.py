"""`vfmaudit calibrate`: calibration set -> INT8 QDQ model -> acceptance against the fp32 parent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vfmaudit.artefact.provenance import package_versions, report_header
from vfmaudit.calibration.acceptance import accept_int8
from vfmaudit.calibration.dataset import build_calibration_set, split_held_out
from vfmaudit.calibration.ort_quant import calibration_cache_file, quantize_onnx, require_fp32
from vfmaudit.calibration.settings import MIN_MEDIAN_COSINE
from vfmaudit.data.source import read_items
from vfmaudit.data.sources import sample_items
from vfmaudit.errors import VfmauditError
from vfmaudit.files import write_json
from vfmaudit.progress import no_stages


# levels per family of the INT8 robustness profile: the target search judges every trial on exactly
# the data the final acceptance reports
ACCEPTANCE_LEVELS = 3


@dataclass
class CalibrationResult:
    """The INT8 model written, how it was calibrated, and its acceptance against the fp32 parent."""

    report: dict
    html_path: Path | None = None  # the page written for people, when one was

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])

    @property
    def int8_model(self) -> Path:
        return Path(self.report["int8_model"])

    def to_json(self) -> dict:
        return self.report


def calibrate_int8(onnx_path: str | Path, out: str | Path, images: list[str] | None = None, method: str = "minmax",
              perturbed: bool = True, size: int = 256, seed: int = 0, cache_dir: str | Path | None = None,
              min_median_cosine: float = MIN_MEDIAN_COSINE, held_out_fraction: float = 0.25,
              batch_size: int = 8, target: str | None = None, sensitivity: bool = False,
              progress=None, perturbations: str = "calibration") -> CalibrationResult:
    """Quantize an fp32 ONNX export to INT8 and audit the result against it on held-out images.

    sensitivity: rank the quantizable nodes by the error each introduces alone. target (e.g.
    "cosine.p5>=0.999"): keep the fewest top-ranked nodes in float that meet it on the held-out
    images; passed then means the target was met.
    """
    from vfmaudit.calibration.sensitivity import parse_target
    from vfmaudit.runtime import create_encoder

    goal = parse_target(target) if target else None

    onnx_path, out = Path(onnx_path), Path(out)
    if not onnx_path.is_file():
        raise VfmauditError(f"ONNX file not found: {onnx_path}; check the path", param="onnx_path")
    info = require_fp32(onnx_path)  # before any expensive work
    if out.resolve() == onnx_path.resolve():
        raise VfmauditError("out would overwrite the fp32 model; choose another file", param="out")
    stage = progress or no_stages
    if perturbed:
        from vfmaudit import perturb

        perturb.parse_perturbations(perturbations, 1)  # unknown names: one line before any work
    items = read_items(images) if images else sample_items()
    calib_items, held_out = split_held_out(items, held_out_fraction, seed)
    stage("building the calibration set", 0, 0)
    calib = build_calibration_set(calib_items, info.preprocess, size=size, perturbed=perturbed, seed=seed,
                                  cache_dir=cache_dir, perturbations=perturbations)
    stage(f"quantizing ({method}, {len(calib)} calibration images)", 0, 0)
    q = quantize_onnx(onnx_path, out, calib, method=method, batch_size=batch_size, cache_dir=cache_dir)
    fp32_enc = create_encoder("onnx", model=str(onnx_path))
    extra: dict = {}
    if goal or sensitivity:
        extra = _mixed_precision(onnx_path, out, calib, info, held_out, fp32_enc, goal, method, batch_size, cache_dir,
                                 seed, progress)
        q = extra.pop("quantized", q)
    stage(f"acceptance against fp32 on {len(held_out)} held-out images", 0, 0)
    acceptance = accept_int8(fp32_enc, create_encoder("onnx", model=str(out)), held_out, levels=ACCEPTANCE_LEVELS,
                             seed=seed)
    median = acceptance["cosine_to_fp32"]["all"]["median"]
    if goal:  # the verdict is the target's, read from the acceptance the report shows
        from vfmaudit.calibration.sensitivity import metric_value

        final = metric_value(acceptance, goal.metric)
        extra["search"].update(final_value=final, met=goal.met(final))
        passed = extra["search"]["met"]
    else:
        passed = median >= min_median_cosine
    return CalibrationResult({
        **report_header("vfmaudit.calibration", 1),
        "fp32_model": str(onnx_path), "int8_model": str(out), "model": info.spec, "weights": info.weights,
        "method": method, "format": "QDQ", "per_channel": True,
        "calibration": {"images": len(calib), "source_images": len(calib_items), "perturbed": perturbed,
                        "seed": seed, "cached": calib.cached, "set_file": str(calib.path),
                        "edits": dict(Counter(r["edit"] for r in calib.index))},
        "quantized_ops": q.quantized_ops, "peak_memory_mb": q.peak_memory_mb, "memory_growth_mb": q.memory_growth_mb,
        "acceptance": acceptance, "min_median_cosine": min_median_cosine, "passed": passed, **extra,
        "versions": package_versions(),
    })


def _read_ranking(path: Path):
    """A cached sensitivity ranking, or None when there is none (or it cannot be read)."""
    import json

    from vfmaudit.calibration.sensitivity import NodeSensitivity

    try:
        return [NodeSensitivity.from_json(r) for r in json.loads(path.read_text())]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _mixed_precision(onnx_path: Path, out: Path, calib, info, held_out, fp32_enc, goal, method: str,
                     batch_size: int, cache_dir, seed: int, progress) -> dict:
    """Sensitivity ranking, and with a target the search; `out` then holds the chosen model (under "quantized")."""
    import shutil
    import tempfile

    import numpy as np

    from vfmaudit.artefact import make_feed
    from vfmaudit.calibration.acceptance import _speed_ratio
    from vfmaudit.calibration.sensitivity import metric_value, search, sensitivity
    from vfmaudit.runtime import create_encoder

    def quantize(path, only=None, keep_float=()):
        return quantize_onnx(onnx_path, path, calib, method=method, batch_size=batch_size, cache_dir=cache_dir,
                             only=only, keep_float=keep_float)

    # the ranking depends on the fp32 file, the set and the method only: a --target run after a
    # --sensitivity run (or a second target) reuses it instead of quantizing every node again
    cached = calibration_cache_file("sensitivity", onnx_path, calib, method, cache_dir)
    ranking = _read_ranking(cached)
    if ranking is None:
        feed = make_feed(np.asarray(calib.images[:8]), info.input_format, info.preprocess)
        ranking = sensitivity(onnx_path, calib, quantize, feed, fp32_enc.input_name,
                              progress=(lambda i, n: progress("sensitivity of the quantizable nodes", i, n))
                              if progress else None)
        write_json([r.to_json() for r in ranking], cached)
    elif progress:
        progress(f"sensitivity ranking of {len(ranking)} nodes reused from the cache", 0, 0)
    extra: dict = {"sensitivity": [r.to_json() for r in ranking], "sensitivity_cache": str(cached)}
    if not goal:  # the ranking only: `out` still holds the full INT8 model
        return extra
    with tempfile.TemporaryDirectory(prefix="vfmaudit-search-") as tmp:
        full = Path(tmp) / "full_int8.onnx"
        shutil.copyfile(out, full)
        trial = Path(tmp) / "trial.onnx"

        def evaluate(keep: tuple[str, ...]) -> float | None:
            quantize(trial, keep_float=keep)
            # the same held-out images, families and levels the final acceptance reports
            acc = accept_int8(fp32_enc, create_encoder("onnx", model=str(trial)), held_out, levels=ACCEPTANCE_LEVELS,
                              seed=seed, measure_speed=False)
            if progress:
                progress(f"search for {goal}: trial with nodes kept in float", len(keep), len(ranking))
            return metric_value(acc, goal.metric)

        found = search(ranking, goal, evaluate)
        extra["quantized"] = quantize(out, keep_float=tuple(found.kept_float))
        base = np.stack([fp32_enc.preprocess.prepare(it.load()) for it in held_out[:8]])
        mixed = _speed_ratio(fp32_enc, create_encoder("onnx", model=str(out)), base, 16)
        full_speed = _speed_ratio(fp32_enc, create_encoder("onnx", model=str(full)), base, 16)
        extra["search"] = {**found.to_json(), "speed": {
            "fp32_img_per_s": mixed["fp32_img_per_s"], "mixed_img_per_s": mixed["int8_img_per_s"],
            "full_int8_img_per_s": full_speed["int8_img_per_s"],
            "mixed_over_fp32": mixed["int8_over_fp32"],
            "mixed_over_full_int8": mixed["int8_img_per_s"] / full_speed["int8_img_per_s"]}}
    return extra
