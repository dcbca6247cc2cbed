"""`vfmaudit calibrate`: calibration set -> INT8 QDQ model -> acceptance against the fp32 parent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vfmaudit.artefact.provenance import package_versions, report_header
from vfmaudit.calibration.acceptance import accept_int8
from vfmaudit.calibration.dataset import build_calibration_set, split_held_out
from vfmaudit.calibration.ort_quant import quantize_onnx, require_fp32
from vfmaudit.data.sources import collect_items, sample_items
from vfmaudit.errors import VfmauditError

MIN_MEDIAN_COSINE = 0.98


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
              batch_size: int = 8) -> CalibrationResult:
    """Quantize an fp32 ONNX export to INT8 and audit the result against it on held-out images."""
    from vfmaudit.runtime import create_encoder

    onnx_path, out = Path(onnx_path), Path(out)
    if not onnx_path.is_file():
        raise VfmauditError(f"ONNX file not found: {onnx_path}; check the path", param="onnx_path")
    info = require_fp32(onnx_path)  # before any expensive work
    if out.resolve() == onnx_path.resolve():
        raise VfmauditError("out would overwrite the fp32 model; choose another file", param="out")
    items = collect_items(images) if images else sample_items()
    calib_items, held_out = split_held_out(items, held_out_fraction, seed)
    calib = build_calibration_set(calib_items, info.preprocess, size=size, perturbed=perturbed, seed=seed,
                                  cache_dir=cache_dir)
    q = quantize_onnx(onnx_path, out, calib, method=method, batch_size=batch_size, cache_dir=cache_dir)
    acceptance = accept_int8(create_encoder("onnx", model=str(onnx_path)), create_encoder("onnx", model=str(out)),
                             held_out, seed=seed)
    median = acceptance["cosine_to_fp32"]["all"]["median"]
    return CalibrationResult({
        **report_header("vfmaudit.calibration", 1),
        "fp32_model": str(onnx_path), "int8_model": str(out), "model": info.spec, "weights": info.weights,
        "method": method, "format": "QDQ", "per_channel": True,
        "calibration": {"images": len(calib), "source_images": len(calib_items), "perturbed": perturbed,
                        "seed": seed, "cached": calib.cached, "set_file": str(calib.path),
                        "edits": dict(Counter(r["edit"] for r in calib.index))},
        "quantized_ops": q.quantized_ops, "peak_memory_mb": q.peak_memory_mb, "memory_growth_mb": q.memory_growth_mb,
        "acceptance": acceptance, "min_median_cosine": min_median_cosine, "passed": median >= min_median_cosine,
        "versions": package_versions(),
    })
