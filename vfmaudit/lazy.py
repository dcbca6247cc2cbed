"""Packages that load their modules on first use, so the CLI's `--help` and `import vfmaudit` stay light.

    __getattr__, __dir__ = lazy_exports(__name__, {"run_finetune": "vfmaudit.finetune.runner"})

A package written so re-exports each public name from the module that defines it, imported the
first time the name is read (PEP 562); `from vfmaudit.finetune import run_finetune` works as usual.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(sys.modules[package], name, value)  # later reads skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
