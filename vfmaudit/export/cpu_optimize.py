"""An ONNX file tuned for the onnxruntime CPU provider: transformer fusions + offline graph optimisation.

Writes FILE.cpu.onnx beside the original. The fusions (onnxruntime.transformers: LayerNorm,
BiasGelu, attention where its pattern matches) and ORT's extended graph optimisations are
saved once, so sessions start fast; layout changes specific to one CPU (ORT_ENABLE_ALL) are
left to session creation, so the saved file stays portable.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

from vfmaudit.errors import VfmauditError
from vfmaudit.artefact import read_onnx_info, write_onnx_info

_TRANSFORMER_HINTS = ("vit", "deit", "eva", "dinov2", "beit", "swin", "siglip", "clip", "convnext")


@dataclass
class CpuOptimized:
    path: Path
    model_type: str | None
    fusions: dict = field(default_factory=dict)

    def describe(self) -> str:
        fused = {k: v for k, v in self.fusions.items() if v}
        what = ", ".join(f"{v} {k}" for k, v in fused.items()) or "no fusions matched"
        return f"CPU-optimised: {what}; ORT extended graph optimisations saved"


def require_cpu_kernels(precision: str) -> None:
    """One line, before any work, for a precision onnxruntime's CPU provider cannot run."""
    if precision == "bf16":
        raise VfmauditError("optimize_cpu writes a file for onnxruntime's CPU provider, which has no bf16 kernels; "
                            "optimise the fp32 or fp16 export instead", param=("optimize_cpu", "precision"))


def optimize_for_cpu(path: str | Path, out: str | Path | None = None) -> CpuOptimized:
    import onnxruntime as ort

    path = Path(path)
    info = read_onnx_info(path)
    require_cpu_kernels(info.precision)
    out = Path(out) if out else path.with_name(path.stem + ".cpu.onnx")
    model_type = "vit" if any(h in info.spec.lower() for h in _TRANSFORMER_HINTS) else None
    fusions: dict = {}
    fused_path = path
    if model_type:
        from onnxruntime.transformers import optimizer

        fused_path = out.with_name(out.stem + ".fused.onnx")
        logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                model = optimizer.optimize_model(str(path), model_type=model_type, num_heads=0, hidden_size=0,
                                                 opt_level=0, use_gpu=False)
            fusions = dict(model.get_fused_operator_statistics())
            model.save_model_to_file(str(fused_path))
        except Exception as e:  # noqa: BLE001 - a pattern the fuser chokes on: keep the plain graph
            fusions = {"error": f"{type(e).__name__}: {e}"[:200]}
            fused_path = path
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(out)
    so.log_severity_level = 3
    try:
        ort.InferenceSession(str(fused_path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        raise VfmauditError(f"onnxruntime could not optimise {path}: {str(e).splitlines()[0][:200]}") from None
    finally:
        if fused_path != path:
            fused_path.unlink(missing_ok=True)
    info.extra = {**info.extra, "optimized_for": "onnxruntime-cpu", "fusions": fusions}
    write_onnx_info(out, info)
    return CpuOptimized(path=out, model_type=model_type, fusions=fusions)
