"""Label-free neighbour agreement under perturbation: does a perturbed query still find the clean
image's neighbours in the clean index? What retrieval and kNN see, without labels.

Per family, the agreement of each non-identity level is computed against the clean embeddings of
the same images, and reported as its mean and minimum over the levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vfmaudit import perturb
from vfmaudit.artefact.provenance import report_header
from vfmaudit.data.source import read_items
from vfmaudit.data.sources import sample_items
from vfmaudit.errors import ImageDecodeError, VfmauditError
from vfmaudit.metrics import AGREEMENT_KEYS, neighbour_agreement
from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.runtime import open_encoder

SCHEMA = "vfmaudit.agreement"


@dataclass
class AgreementResult:
    report: dict

    def to_json(self) -> dict:
        return self.report


def _stat(values: list, fn) -> float | None:
    return None if not values or any(v is None for v in values) else float(fn(values))


def measure_agreement(images: list[str] | None = None, model: str = DEFAULT_MODEL, pretrained: str | None = None,
                      backend: str = "auto", device: str = "cpu", seed: int = 0, perturbations: str = "everyday",
                      levels: int = 3, max_images: int = 256, batch_size: int = 32) -> AgreementResult:
    """Per family: top-1 agreement and overlap@k of perturbed queries against the clean index (mean, min)."""
    plans = perturb.parse_perturbations(perturbations, levels)
    encoder = open_encoder(model, pretrained, backend, device, batch_size, seed)
    items = read_items(images) if images else sample_items()
    prepared = []
    for item in items[:max_images]:
        try:
            prepared.append(encoder.preprocess.prepare(item.load()))
        except (ImageDecodeError, OSError, ValueError):
            continue  # a bad image is left out, as in the audit
    if not prepared:
        raise VfmauditError("none of the images could be read; check the paths", param="images")
    base = np.stack(prepared)
    clean = encoder.encode(base)
    families = {}
    for plan in plans:
        fam = perturb.get(plan.name)
        per_level = [neighbour_agreement(clean, encoder.encode(perturb.apply(base, plan.name, lv, seed=seed)),
                                         candidate_gallery=False)
                     for lv in plan.levels if not fam.is_identity(lv)]
        families[plan.name] = {k: {"mean": _stat([p[k] for p in per_level], np.mean),
                                   "min": _stat([p[k] for p in per_level], min)} for k in AGREEMENT_KEYS}
    return AgreementResult({**report_header(SCHEMA, 1), "model": model, "images": len(base), "families": families})
