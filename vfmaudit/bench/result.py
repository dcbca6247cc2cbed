"""The result object of the kernel and audit benchmarks: their JSON, readable like a dict."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BenchReport:
    data: dict

    def __getitem__(self, key: str):
        return self.data[key]

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def to_json(self) -> dict:
        return self.data
