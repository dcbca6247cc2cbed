"""Plugins from outside the repository: modules named in the `vfmaudit.plugins` entry-point group.

A distribution declares, in its pyproject.toml,

    [project.entry-points."vfmaudit.plugins"]
    my_edits = "my_vfmaudit_edits"

and its module registers families, presets, metrics, backends or gate measurements exactly as the
built-in modules do (`perturb.register`, `register_metric`, `register_backend`, ...). The modules are
imported once, when the first registry loads (perturbation families, metrics, backends), so every
command, report, the gate and the catalogue commands see their entries. A plugin that fails to load
is reported in one line naming it, and the rest of the tool works without it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from vfmaudit.errors import one_line

GROUP = "vfmaudit.plugins"
DISABLE_ENV = "VFMAUDIT_NO_PLUGINS"  # set to 1 to start without any plugin (to rule one out)


@dataclass(frozen=True)
class PluginStatus:
    name: str  # the entry point's name
    module: str  # what it imports
    distribution: str  # the installed distribution that declares it
    error: str | None = None  # None: loaded

    @property
    def loaded(self) -> bool:
        return self.error is None


_state: dict = {"status": None, "loading": False}


def load_plugins() -> list[PluginStatus]:
    """Import every plugin module once (later calls return what happened the first time)."""
    if _state["status"] is not None or _state["loading"]:
        return list(_state["status"] or [])  # already loaded, or a plugin is importing a registry now
    _state["loading"] = True
    status: list[PluginStatus] = []
    try:
        if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
            return []
        from importlib.metadata import entry_points

        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
            try:
                ep.load()
            except Exception as e:  # noqa: BLE001 - any failure of someone else's module is reported, not fatal
                status.append(PluginStatus(ep.name, ep.value, dist, one_line(e, 300)))
                sys.stderr.write(f"vfmaudit: plugin '{ep.name}' ({ep.value}, from {dist}) failed to load and is "
                                 f"skipped: {status[-1].error}\n")
            else:
                status.append(PluginStatus(ep.name, ep.value, dist))
    finally:
        _state["status"] = status
        _state["loading"] = False
    return list(status)


def plugins() -> list[PluginStatus]:
    """The plugins found and whether each loaded (loads them if no registry has yet)."""
    return load_plugins()
