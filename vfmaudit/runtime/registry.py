"""The catalogue of backends: name, file suffixes, precisions, factory with explicit keywords.

`--backend auto`, the CLI help, `bench encoder` and the provenance of every report are derived
from this one registry; nothing outside a backend's own module branches on its name. Every
command opens its encoder with `open_encoder`, and reads a model's preprocessing (or an
artefact's metadata) without building it through the backend's own hooks.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from vfmaudit.catalogue import Catalogue
from vfmaudit.errors import VfmauditError
from vfmaudit.runtime.base import Encoder

if TYPE_CHECKING:
    from vfmaudit.artefact import ArtefactInfo
    from vfmaudit.models.preprocess import PreprocessSpec

EncoderFactory = Callable[..., Encoder]
# (model, pretrained, seed) -> the preprocessing the encoder would use, without running anything heavy
PreprocessReader = Callable[[str, "str | None", int], "PreprocessSpec"]
# artefact file -> its vfmaudit metadata (spec, weights, preprocessing, precision)
InfoReader = Callable[[str], "ArtefactInfo"]


@dataclass(frozen=True)
class Backend:
    name: str
    factory: EncoderFactory = field(repr=False)
    # artefact files this backend runs, by suffix; empty: it builds the model from a spec itself
    suffixes: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("fp32",)
    description: str = ""
    # distributions whose versions matter for its results (recorded in reports)
    packages: tuple[str, ...] = ()
    # hooks: an artefact's metadata (artefact backends), the preprocessing of a model it runs
    read_info: InfoReader | None = field(default=None, repr=False)
    read_preprocess: PreprocessReader | None = field(default=None, repr=False)
    devices: tuple[str, ...] = ("cpu", "cuda")  # the kinds of device it runs on

    def device_for(self, device: str) -> str:
        """The device it runs on when `device` is asked for: that one if it can, else its own first kind
        (a TensorRT engine runs on cuda whatever a sweep's default cpu says)."""
        return device if device.partition(":")[0] in self.devices else self.devices[0]

    @property
    def options(self) -> tuple[str, ...]:
        """The keyword arguments its factory takes."""
        return tuple(inspect.signature(self.factory).parameters)

    def takes(self, option: str) -> bool:
        return option in self.options

    @property
    def runs_model_specs(self) -> bool:
        return not self.suffixes


_BACKENDS: Catalogue[Backend] = Catalogue("backend", hint="auto, ")


def register_backend(name: str, *, suffixes: tuple[str, ...] = (), precisions: tuple[str, ...] = ("fp32",),
                     description: str = "", packages: tuple[str, ...] = (), read_info: InfoReader | None = None,
                     read_preprocess: PreprocessReader | None = None,
                     devices: tuple[str, ...] = ("cpu", "cuda")) -> Callable[[EncoderFactory], EncoderFactory]:
    """Decorator: register `factory(model=..., device=..., batch_size=..., ...)` as backend `name`.

    The factory's keyword arguments are the options the backend honours; create_encoder refuses
    any other, so an option is never silently dropped. `read_info(model)` returns an artefact's
    metadata, `read_preprocess(model, pretrained, seed)` the preprocessing without building the
    encoder; without it the preprocessing comes from read_info, or else from building the encoder.
    """

    def deco(factory: EncoderFactory) -> EncoderFactory:
        params = inspect.signature(factory).parameters.values()
        if any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params):
            raise TypeError(f"backend '{name}': the factory must list its options explicitly, not **kwargs")
        for other in _BACKENDS.values():
            shared = set(suffixes) & set(other.suffixes)
            if shared:
                raise ValueError(f"backend '{name}': suffixes {sorted(shared)} already belong to '{other.name}'")
        _BACKENDS.add(name, Backend(name, factory, tuple(s.lower() for s in suffixes), tuple(precisions),
                                    description, tuple(packages), read_info, read_preprocess, tuple(devices)))
        return factory

    return deco


def unregister_backend(name: str) -> None:
    """Remove a backend (for tests and plugins that register temporary ones)."""
    _BACKENDS.remove(name)


def backends() -> dict[str, Backend]:
    """Every registered backend by name, in registration order."""
    return _BACKENDS.all()


def get_backend(name: str) -> Backend:
    return _BACKENDS.get(name)


def backend_for_path(model: str) -> str:
    """The backend whose suffix the file has; a model spec (no artefact suffix) -> the spec backend."""
    lower = str(model).lower()
    for b in _BACKENDS.values():
        if any(lower.endswith(s) for s in b.suffixes):
            return b.name
    for b in _BACKENDS.values():
        if b.runs_model_specs:
            return b.name
    raise VfmauditError(f"no backend runs '{model}'")


def is_artefact_path(model: str) -> bool:
    lower = str(model).lower()
    return any(lower.endswith(s) for b in _BACKENDS.values() for s in b.suffixes)


def resolve_backend(backend: str | None, model: str) -> Backend:
    """'auto' (or None) -> by the model's file suffix; otherwise the named backend."""
    return get_backend(backend_for_path(model) if backend in (None, "auto") else backend)


def auto_help() -> str:
    """How 'auto' chooses, for CLI help: '.onnx -> onnx, .engine/.plan/.trt -> tensorrt, else torch'."""
    parts = [f"{'/'.join(b.suffixes)} -> {b.name}" for b in _BACKENDS.values() if b.suffixes]
    spec = [b.name for b in _BACKENDS.values() if b.runs_model_specs]
    return ", ".join(parts + ([f"model specs -> {spec[0]}"] if spec else []))


def create_encoder(backend: str = "auto", **options) -> Encoder:
    """Build an Encoder: create_encoder("torch", model="openclip:ViT-S-32", seed=0, device="cpu").

    backend "auto" picks by the model: a registered artefact suffix (.onnx, .engine, ...) picks
    its backend, anything else is a model spec for the torch backend. Options set to None mean
    "the backend's default"; an option the backend does not take is an error.
    """
    b = resolve_backend(backend, str(options.get("model", "")))
    given = {k: v for k, v in options.items() if v is not None}
    refused = [k for k in given if not b.takes(k)]
    if refused:
        raise VfmauditError(f"the {b.name} backend does not take {', '.join(refused)}; "
                            f"it takes: {', '.join(b.options)}", param=tuple(refused))
    return b.factory(**given)


def open_encoder(model: str, pretrained: str | None = None, backend: str = "auto", device: str = "cpu",
                 batch_size: int = 32, seed: int = 0, precision: str | None = None) -> Encoder:
    """The one way every command opens an encoder.

    The seed reaches only backends that build weights (an artefact has its own); every other
    option given is passed on, and refused with one line by a backend that does not take it.
    """
    b = resolve_backend(backend, model)
    return create_encoder(b.name, model=model, pretrained=pretrained, seed=seed if b.takes("seed") else None,
                          device=device, batch_size=batch_size, precision=precision)


def artefact_info(model: str, backend: str = "auto") -> "ArtefactInfo | None":
    """The vfmaudit metadata of an artefact file; None for a model spec (or a backend without metadata)."""
    b = resolve_backend(backend, model)
    return b.read_info(model) if b.read_info else None


def read_preprocess(model: str, pretrained: str | None = None, backend: str = "auto", seed: int = 0) -> "PreprocessSpec":
    """The preprocessing the backend would apply to `model`, read without building it where it can be."""
    b = resolve_backend(backend, model)
    if b.read_preprocess:
        return b.read_preprocess(model, pretrained, seed)
    if b.read_info:
        return b.read_info(model).preprocess
    return open_encoder(model, pretrained, b.name, seed=seed).preprocess
