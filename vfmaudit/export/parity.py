"""Is the artefact the same model? Run the torch reference and the artefact on the same images."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfmaudit import perturb
from vfmaudit.artefact.provenance import package_versions, report_header
from vfmaudit.data.source import check_max_images, iter_items
from vfmaudit.data.sources import sample_items
from vfmaudit.errors import ImageDecodeError, VfmauditError
from vfmaudit.metrics.agreement import mean_agreement, neighbour_agreement
from vfmaudit.runtime import Encoder, create_encoder, resolve_backend

# cosine to the torch reference that passes, per precision (overridable)
DEFAULT_MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "bf16": 0.995, "int8": 0.99}
PARITY_IMAGES = 12  # images a parity check compares by default (the first readable ones)
# perturbed variants added to every image (parity must hold off the clean manifold too): perturb/presets.py
PARITY_PRESET = "parity"


def parity_variants() -> list[tuple[str, float]]:
    return [(e.family, e.level if e.level is not None else perturb.get(e.family).hi)
            for e in perturb.get_preset(PARITY_PRESET).entries]


@dataclass
class ParityReport:
    artefact: str
    reference: dict
    precision: str
    min_cosine_required: float
    rows: list[dict] = field(default_factory=list)
    artefact_info: dict = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    # label-free neighbour agreement (metrics/agreement.py) of the artefact with the reference,
    # averaged over the clean images and each edit
    agreement: dict = field(default_factory=dict)
    golden: dict = field(default_factory=dict)  # {"saved": FILE} or {"read": FILE}
    # when and with what, stamped at the first to_json(): every copy of the report is one document
    _stamp: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def cosines(self) -> np.ndarray:
        return np.array([r["cosine"] for r in self.rows])

    @property
    def passed(self) -> bool:
        return bool(self.rows) and float(self.cosines.min()) >= self.min_cosine_required

    def summary(self) -> dict:
        cos = self.cosines
        abs_d = np.array([r["max_abs_diff"] for r in self.rows])
        rel_d = np.array([r["max_rel_diff"] for r in self.rows])
        return {"images": len(self.rows), "distinct_images": len({r["image"] for r in self.rows}),
                "variants": list(dict.fromkeys(r["variant"] for r in self.rows)),
                "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                "median_cosine": float(np.median(cos)), "max_abs_diff": float(abs_d.max()),
                "max_rel_diff": float(rel_d.max()), "agreement": self.agreement,
                # the tolerances this run would have passed with
                "would_pass": {"min_cosine": float(cos.min()), "atol": float(abs_d.max()), "rtol": float(rel_d.max())}}

    def to_json(self) -> dict:
        if self._stamp is None:
            self._stamp = {"header": report_header("vfmaudit.parity", 1), "versions": package_versions()}
        return {**self._stamp["header"], "passed": self.passed, "artefact": self.artefact,
                "artefact_info": self.artefact_info, "reference": self.reference, "precision": self.precision,
                "min_cosine_required": self.min_cosine_required, "summary": self.summary(),
                "per_image": self.rows, "skipped": self.skipped, "versions": self._stamp["versions"],
                **({"golden": self.golden} if self.golden else {})}


def _images(paths: list[str] | None, max_images: int) -> tuple[list[tuple[str, np.ndarray]], list[dict]]:
    items = iter_items(paths) if paths else iter(sample_items())
    out, skipped = [], []
    for item in items:  # the first max_images readable ones
        if len(out) >= max_images:
            break
        try:
            out.append((item.id, item.load()))
        except ImageDecodeError as e:
            skipped.append({"input": item.id, "reason": str(e)})
    if not out:
        raise VfmauditError("no readable images to compare on; pass image files or folders as images",
                            param="images")
    return out, skipped


def parity_batches(base: np.ndarray, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """The clean model-size images and each parity edit of them, named as the report's variants."""
    return [("clean", base)] + [(f"{n}@{lv:g}", perturb.apply(base, n, lv, seed=seed)) for n, lv in parity_variants()]


def compare(reference: Encoder, artefact: Encoder, images: list[tuple[str, np.ndarray]], seed: int = 0,
            agreement: dict | None = None, golden_out: list | None = None) -> list[dict]:
    """Per image and variant: cosine, max |a - r|, max |a - r| / |r| of the two embeddings.

    Pass a dict as `agreement` to receive the neighbour agreement, averaged over the variants; a list
    as `golden_out` to receive (variant, images, reference embeddings) for a golden file.
    """
    if tuple(reference.preprocess.size) != tuple(artefact.preprocess.size):
        raise VfmauditError(f"reference takes {reference.preprocess.size} images, the artefact "
                            f"{artefact.preprocess.size}: they are not the same model")
    base = np.stack([reference.preprocess.prepare(img) for _, img in images])
    names = [name for name, _ in images]
    rows, per_variant = [], []
    for variant, batch in parity_batches(base, seed):
        ref = reference.encode(batch)
        if golden_out is not None:
            golden_out.append((variant, batch, ref))
        rows += variant_rows(names, variant, ref, artefact.encode(batch), per_variant)
    if agreement is not None:
        agreement.update(mean_agreement(per_variant))
    return rows


def variant_rows(names: list[str], variant: str, ref: np.ndarray, art: np.ndarray, per_variant: list) -> list[dict]:
    """One variant's rows (and its neighbour agreement appended to per_variant)."""
    per_variant.append(neighbour_agreement(ref, art))
    if ref.shape != art.shape:
        raise VfmauditError(f"artefact embeddings have shape {art.shape[1:]}, the reference's "
                            f"{ref.shape[1:]}: they are not the same model")
    cos = np.sum(ref * art, axis=1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(art, axis=1), 1e-12)
    diff = np.abs(art - ref)
    rel = diff / np.maximum(np.abs(ref), 1e-3)  # floor: relative error of ~0 entries is meaningless
    return [{"image": name, "variant": variant, "cosine": float(cos[i]), "max_abs_diff": float(diff[i].max()),
             "max_rel_diff": float(rel[i].max())} for i, name in enumerate(names)]


def compare_golden(golden, artefact: Encoder, agreement: dict | None = None) -> list[dict]:
    """The artefact against a golden file's reference embeddings, on its images and their edits."""
    golden.check_artefact(artefact.describe(), artefact.preprocess.to_dict())
    rows, per_variant = [], []
    for k, (variant, batch) in enumerate(parity_batches(golden.images, golden.meta["seed"])):
        golden.check_variant(k, variant, batch)
        rows += variant_rows(golden.ids, variant, golden.embeddings[k].astype(np.float64), artefact.encode(batch),
                             per_variant)
    if agreement is not None:
        agreement.update(mean_agreement(per_variant))
    return rows


def check_parity(artefact: str | Path, model: str | None = None, pretrained: str | None = None,
                 seed: int | None = None, images: list[str] | None = None, precision: str | None = None,
                 min_cosine: float | None = None, device: str = "cpu", backend: str | None = None,
                 max_images: int = PARITY_IMAGES, batch_size: int = 16, save_golden: str | Path | None = None,
                 golden: str | Path | None = None) -> ParityReport:
    """Compare an exported artefact against the torch model it came from.

    Unset model/pretrained/seed are read from the artefact's own metadata. save_golden: also write
    the reference's side to this file (vfmaudit.export.golden); golden: compare against such a file
    instead of building the reference (no torch needed).
    """
    artefact = str(artefact)
    check_max_images(max_images)
    if golden and (save_golden or model or images):
        raise VfmauditError("golden stands for both the reference and the check pictures: pass it without "
                            "save_golden, model or images", param=("golden", "save_golden", "model", "images"))
    if save_golden:
        from vfmaudit.files import check_output_file

        check_output_file(save_golden, overwrite=True, param="save_golden")
    art = create_encoder(resolve_backend(backend, artefact).name, model=artefact, device=device, batch_size=batch_size)
    info = getattr(art, "info", None)
    if golden:
        return _check_against_golden(artefact, art, info, golden, precision, min_cosine)
    ref_args = info.reference_args() if info is not None else {}
    if model:
        ref_args = {"model": model, "pretrained": pretrained, "seed": seed or 0}
    else:
        if pretrained is not None:
            ref_args["pretrained"] = pretrained
        if seed is not None:
            ref_args["seed"] = seed
    if not ref_args.get("model"):
        raise VfmauditError("the artefact does not name its model; pass the reference as model SPEC",
                            param="model")
    precision, threshold = _threshold(precision, info, min_cosine)
    ref = create_encoder("torch", device=device, batch_size=batch_size, **ref_args)
    pairs, skipped = _images(images, max_images)
    report = ParityReport(artefact=artefact, reference={**ref_args, "backend": "torch", "device": device},
                          precision=precision, min_cosine_required=threshold, skipped=skipped,
                          artefact_info=art.describe())
    made: list | None = [] if save_golden else None
    report.rows = compare(ref, art, pairs, agreement=report.agreement, golden_out=made)
    if save_golden:
        from vfmaudit.export.golden import save_golden as write_golden

        write_golden(save_golden, ref.describe(), ref.preprocess.to_dict(), [name for name, _ in pairs], made[0][1],
                     made, 0)
        report.golden = {"saved": str(save_golden)}
    return report


def _threshold(precision: str | None, info, min_cosine: float | None) -> tuple[str, float]:
    precision = precision or (info.precision if info is not None else "fp32")
    if precision not in DEFAULT_MIN_COSINE:
        raise VfmauditError(f"unknown precision '{precision}'; choose from {', '.join(DEFAULT_MIN_COSINE)}",
                            param="precision")
    return precision, DEFAULT_MIN_COSINE[precision] if min_cosine is None else float(min_cosine)


def _check_against_golden(artefact: str, art: Encoder, info, path, precision, min_cosine) -> ParityReport:
    from vfmaudit.export.golden import Golden

    golden = Golden(path)
    precision, threshold = _threshold(precision, info, min_cosine)
    report = ParityReport(artefact=artefact, reference={**golden.meta["model"], "golden": str(path)},
                          precision=precision, min_cosine_required=threshold, artefact_info=art.describe())
    report.rows = compare_golden(golden, art, agreement=report.agreement)
    report.golden = {"read": str(path)}
    return report
