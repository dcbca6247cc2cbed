"""onnx's checker and shape inference over a written ONNX file: after every export and conversion."""

from __future__ import annotations

from pathlib import Path

from vfmaudit.errors import VfmauditError


def check_onnx(path: Path) -> None:
    """onnx.checker and shape inference, by path so large models with external data work."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=False)
        inferred = path.with_suffix(".inferred.onnx")
        onnx.shape_inference.infer_shapes_path(str(path), str(inferred))
        inferred.unlink(missing_ok=True)
    except Exception as e:  # noqa: BLE001
        raise VfmauditError(f"exported file {path} fails the ONNX checker: {e}") from None
