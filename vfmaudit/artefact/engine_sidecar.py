"""The JSON side-car of a TensorRT engine: what built it, for which GPU, from which ONNX.

Kept free of TensorRT imports so the compatibility check runs (and is tested) anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

from vfmaudit.errors import VfmauditError


def sidecar_path(engine: str | Path) -> Path:
    return Path(str(engine) + ".json")


def write_sidecar(engine: str | Path, data: dict) -> Path:
    path = sidecar_path(engine)
    path.write_text(json.dumps(data, indent=2))
    return path


def read_sidecar(engine: str | Path) -> dict:
    path = sidecar_path(engine)
    if not Path(engine).is_file():
        raise VfmauditError(f"engine file not found: {engine}; check the path passed as model",
                            param="model")
    if not path.is_file():
        raise VfmauditError(f"{engine} has no side-car {path.name}; build engines with `vfmaudit export tensorrt`")
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise VfmauditError(f"{path} is not valid JSON; rebuild the engine with `vfmaudit export tensorrt`") from None


def check_compatible(sidecar: dict, tensorrt_version: str, gpu_name: str, engine: str = "engine") -> None:
    """A clear error, not a crash, for an engine built by another TensorRT or for another GPU."""
    built_with = sidecar.get("tensorrt_version")
    if built_with and built_with != tensorrt_version:
        raise VfmauditError(
            f"{engine} was built with TensorRT {built_with}, but this is TensorRT {tensorrt_version}; "
            f"engines do not move between versions: rebuild it with `vfmaudit export tensorrt`"
        )
    built_for = sidecar.get("gpu")
    if built_for and gpu_name and built_for != gpu_name:
        raise VfmauditError(
            f"{engine} was built for {built_for}, but this GPU is {gpu_name}; rebuild it on this GPU "
            f"with `vfmaudit export tensorrt`"
        )
