"""Encoders behind one protocol, chosen by backend name from the backend registry.

Registration order is module name order; `auto` sends model specs to the backend without suffixes (torch).
"""

import importlib as _importlib
import pkgutil as _pkgutil

from vfmaudit.plugins import load_plugins as _load_plugins

from vfmaudit.runtime.base import Encoder
from vfmaudit.runtime.registry import (Backend, artefact_info, auto_help, backend_for_path, backends, create_encoder,
                                       get_backend, is_artefact_path, open_encoder, read_preprocess, register_backend,
                                       resolve_backend, unregister_backend)

# every module named *_backend in this folder registers one backend: a new backend is one module
for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__) if m.name.endswith("_backend")):
    _importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Encoder", "Backend", "create_encoder", "open_encoder", "read_preprocess", "artefact_info", "backends", "get_backend", "backend_for_path", "resolve_backend",
           "register_backend", "unregister_backend", "is_artefact_path", "auto_help"]

# last: plugins from outside the repository register into this registry (and the others) now
_load_plugins()
