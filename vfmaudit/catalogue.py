"""The one registry type behind every catalogue (families, presets, metrics, backends, builders).

Entries keep their registration order, which is the catalogue order; a name registered twice is
a programming error, an unknown name a user error that lists the valid ones.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from vfmaudit.errors import VfmauditError

T = TypeVar("T")


class Catalogue(Generic[T]):
    def __init__(self, kind: str, error: type[VfmauditError] = VfmauditError, hint: str = ""):
        self.kind, self.error, self.hint = kind, error, hint
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Drop an entry (tests and plugins that register temporary ones)."""
        self._entries.pop(name, None)

    def all(self) -> dict[str, T]:
        return dict(self._entries)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} '{name}'; choose from: {self.hint}"
                             f"{', '.join(self._entries)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def values(self):
        return self._entries.values()
