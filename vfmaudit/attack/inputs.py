"""The images an attack runs on: a folder, file list or the built-in samples, with unreadable files skipped."""

from __future__ import annotations

from typing import Callable

import numpy as np

from vfmaudit.errors import ImageDecodeError, VfmauditError


def load_images(config, prepare: Callable) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """(ids, prepared images, skipped (id, reason)) for config.images / config.max_images (an AttackConfig)."""
    from vfmaudit.data.source import iter_items
    from vfmaudit.data.sources import sample_items

    items = iter_items(config.images) if config.images else sample_items()
    ids, arrays, skipped = [], [], []
    for it in items:
        if config.max_images is not None and len(arrays) >= config.max_images:
            break
        try:
            arrays.append(prepare(it.load()))
            ids.append(it.id)
        except (ImageDecodeError, OSError, ValueError) as e:
            skipped.append((it.id, str(e).splitlines()[0] if str(e) else type(e).__name__))
    if not arrays:
        listed = "; ".join(f"{name}: {why}" for name, why in skipped[:3]) + (
            f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        raise VfmauditError("no readable image to attack" + (f" ({len(skipped)} skipped: {listed})" if skipped else ""),
                            param="images")
    return ids, np.stack(arrays), skipped
