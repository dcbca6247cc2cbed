"""The progress callback long API calls take: progress(what, i, n), n = 0 for a stage without a count.

The CLI renders it (a spinner on a terminal, one line per stage in a log); the API default says nothing.
"""

from __future__ import annotations

from typing import Callable

StageFn = Callable[[str, int, int], None]


def no_stages(what: str, i: int = 0, n: int = 0) -> None:
    """The callback used when the caller passes none."""
