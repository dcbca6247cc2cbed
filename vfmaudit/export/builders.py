"""How each backend's artefact is made from a model: the export builders, by backend name.

`bench encoder` (and anything else that needs "this model, on that backend, at that precision")
asks here instead of branching on backend names. A backend whose files are built by a tool
registers its builder next to that tool (onnx_export.py, tensorrt_build.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from vfmaudit.catalogue import Catalogue
from vfmaudit.errors import VfmauditError

# build(source, out_dir, precision, batch_size, device=...) -> path of the artefact; source is a
# BuiltModel when `source` is None, else the path of the source backend's artefact; device is the one
# the artefact will run on (a TensorRT engine is built on that GPU)
BuildFn = Callable[..., object]


@dataclass(frozen=True, kw_only=True)
class ArtefactBuilder:
    backend: str  # the backend that runs what this builds
    source: str | None  # the backend whose artefact it starts from; None: the torch model itself
    precisions: tuple[str, ...]  # what it can build here without more input
    build: BuildFn = field(repr=False)
    # what to tell a user who asks for another precision
    other_precisions_hint: str = ""
    # whether the artefact depends on the batch size (a TensorRT engine's optimisation profile); an
    # ONNX file with a dynamic batch axis serves every batch size, so it is built once
    per_batch: bool = False


_BUILDERS: Catalogue[ArtefactBuilder] = Catalogue("artefact builder")


def register_builder(builder: ArtefactBuilder) -> ArtefactBuilder:
    return _BUILDERS.add(builder.backend, builder)


def unregister_builder(backend: str) -> None:
    _BUILDERS.remove(backend)


def builders() -> dict[str, ArtefactBuilder]:
    return _BUILDERS.all()


def get_builder(backend: str) -> ArtefactBuilder:
    if backend not in _BUILDERS:
        raise VfmauditError(f"nothing here builds artefacts for the {backend} backend from a model spec; "
                            f"pass such an artefact as model", param="model")
    return _BUILDERS.get(backend)
