"""The catalogue of engines: where a command's work runs (this process, or a Ray cluster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from vfmaudit.catalogue import Catalogue
from vfmaudit.errors import VfmauditError


@dataclass(frozen=True, kw_only=True)
class Engine:
    name: str
    description: str
    # raises VfmauditError (one line, what to install) where the engine cannot run here
    require: Callable[[], None] = field(default=lambda: None, repr=False)


_ENGINES: Catalogue[Engine] = Catalogue("engine")


def register_engine(engine: Engine) -> Engine:
    return _ENGINES.add(engine.name, engine)


def engines() -> dict[str, Engine]:
    """Every engine by name, in registration order."""
    return _ENGINES.all()


def get_engine(name: str) -> Engine:
    """The engine `name`, checked to be usable here (an unknown or unusable one is one line)."""
    if name not in _ENGINES:
        raise VfmauditError(f"unknown engine '{name}'; choose from {', '.join(_ENGINES.all())}", param="engine")
    engine = _ENGINES.get(name)
    engine.require()
    return engine


def _require_ray() -> None:
    from vfmaudit.engines.ray import import_ray

    import_ray()


register_engine(Engine(name="local", description="this process: a producer thread decodes and perturbs while "
                                                  "the encoder runs"))
register_engine(Engine(name="ray", description="a Ray cluster (local by default): an actor pool of encoders over "
                                                "shards, with restarts and per-shard resume", require=_require_ray))
