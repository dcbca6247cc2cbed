"""`run_attack`: embedding attacks at several budgets (white-box on a torch model, Square on any
model or artefact), over shards on an engine (vfmaudit.attack.engines), every reported number from
the rounded uint8 images encoded by the driver through the ordinary encode path."""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit.attack.attacker import Attacker
from vfmaudit.attack.config import METHODS, THREAT_MODEL, AttackConfig
from vfmaudit.attack.engines import AttackJob, run_shards
from vfmaudit.attack.inputs import load_images
from vfmaudit.attack.store import AttackStore, fingerprint
from vfmaudit.attack.threat import measured_norms, random_in_budget
from vfmaudit.files import check_output_folder, lock_folder, write_json, write_text_atomic
from vfmaudit.metrics import cosine, divergence_radius, summarize

__all__ = ["AttackConfig", "AttackResult", "run_attack", "METHODS", "THREAT_MODEL"]

SCHEMA_VERSION = 1
RANDOM_STREAM = 0x52414E44  # the random changes' generator: (seed, this), apart from every batch's


@dataclass
class AttackResult:
    config: AttackConfig
    model: dict
    images: list[str]
    skipped: list[tuple[str, str]]
    budgets: list[dict]  # one per eps: the summaries
    per_image: list[dict]  # one row per (image, eps)
    transfer: list[dict] = field(default_factory=list)  # per artefact and eps: the replayed images' figures
    out: str | None = None
    files: dict = field(default_factory=dict)
    shards: dict = field(default_factory=dict)  # the engine, how many shards, how many a resumed run reused
    # the uint8 images at the model's input size, for the page (not serialised)
    clean_images: np.ndarray | None = field(default=None, repr=False)
    adversarial_images: dict | None = field(default=None, repr=False)
    _header: dict | None = field(default=None, init=False, repr=False, compare=False)

    def to_json(self) -> dict:
        if self._header is None:  # stamped once: attack.json and --json are one document
            from vfmaudit.artefact.provenance import report_header

            self._header = report_header("vfmaudit.attack", SCHEMA_VERSION)
        return {**self._header, "command": "attack", "threat_model": THREAT_MODEL,
                "config": asdict(self.config), "model": self.model,
                "images": {"attacked": len(self.images), "skipped": [list(s) for s in self.skipped]},
                "engine": self.shards, "budgets": self.budgets, "per_image": self.per_image,
                "transfer": self.transfer, "files": self.files}


def run_attack(config: AttackConfig, progress: Callable[[str, int, int], None] | None = None,
               on_complete: Callable[[AttackResult, Path], dict] | None = None,
               warn: Callable[[str], None] | None = None) -> AttackResult:
    """Attack config.model at each budget in config.eps; see AttackConfig and THREAT_MODEL. With
    config.out, on_complete(result, out) writes more outputs there (the page) before attack.json and
    returns their entries for its `files`. warn(text): what is legal but rarely meant (a budget above the
    usual range), said once the config is checked, before the attack."""
    config.check()
    for warning in config.warnings() if warn else ():
        warn(warning)
    progress = progress or (lambda *a: None)
    out_dir = check_output_folder(config.out) if config.out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    with lock_folder(out_dir) if out_dir else contextlib.nullcontext():
        if out_dir:
            AttackStore.claim(out_dir, config.resume, config.overwrite)
        if config.method == "search":
            from vfmaudit.attack.search_run import run_search

            return run_search(config, progress, on_complete, out_dir)
        return _run(config, progress, on_complete, out_dir)


def _run(config: AttackConfig, progress, on_complete, out_dir: Path | None) -> AttackResult:
    progress(f"opening {config.model}")
    attacker = Attacker(config)
    encoder = attacker.encoder
    progress("reading the images")
    ids, clean, skipped = load_images(config, encoder.preprocess.prepare)
    config.check_l2_budget(clean)  # needs the model's input size: said before the first step
    store = AttackStore.open(out_dir, fingerprint(config, ids), config.resume)
    progress("encoding the clean images")
    e_clean = encoder.encode(clean)
    eps_sorted = attacker.eps
    what = f"{config.method} attack at eps {', '.join(f'{e:g}' for e in eps_sorted)}"
    spans, shards = run_shards(config, AttackJob(attacker, clean, e_clean), store, len(ids), what, progress)
    adv_images = store.assemble(spans, eps_sorted)
    # every number from the rounded images through the ordinary encode path
    adv_embeddings = {eps: encoder.encode(images) for eps, images in adv_images.items()}

    # the average case on the same scale: one random change of each budget per image
    progress("encoding random changes of the same budgets")
    rng = np.random.default_rng([int(config.seed), RANDOM_STREAM])
    random_embeddings = {eps: encoder.encode(random_in_budget(clean, config.norm, eps, rng)) for eps in eps_sorted}
    average = list(_figures(e_clean, random_embeddings, eps_sorted))

    budgets, rows = [], []
    for j, (eps, (cos, radius)) in enumerate(zip(eps_sorted, _figures(e_clean, adv_embeddings, eps_sorted))):
        linf, l2 = measured_norms(clean, adv_images[eps])
        random_radius = summarize(average[j][1], False)
        budgets.append({"eps": eps, "norm": config.norm, "cosine": summarize(cos, True),
                        "divergence_radius": summarize(radius, False),
                        "random": {"cosine": summarize(average[j][0], True), "divergence_radius": random_radius},
                        "worst_to_random_radius": _ratio(float(radius.mean()), random_radius["mean"]),
                        "max_linf_levels": float(linf.max()), "max_l2": float(l2.max())})
        rows += [{"image": ids[i], "eps": eps, "cosine": float(cos[i]), "divergence_radius": float(radius[i]),
                  "linf_levels": float(linf[i]), "l2": float(l2[i])} for i in range(len(ids))]
    transfer = _transfer(config, progress, clean, adv_images, budgets, eps_sorted)
    result = AttackResult(config=config, model=encoder.describe(), images=ids, skipped=skipped, budgets=budgets,
                          per_image=rows, transfer=transfer, out=str(out_dir) if out_dir else None,
                          shards=shards,
                          clean_images=clean, adversarial_images=adv_images)
    if out_dir:
        _write(result, out_dir, on_complete)
    return result


def _ratio(worst: float, average: float) -> float | None:
    """How many times the random change's mean radius the attack's is (None where the random one is 0)."""
    return worst / average if average > 0 else None


def _figures(e_clean: np.ndarray, embedded: dict[float, np.ndarray], eps_sorted: list[float]):
    """Per budget, in order: each image's cosine to its clean embedding, and its divergence radius:
    the ball over the clean embedding and its adversarial embeddings at every budget up to this one
    (the worst case on the audit's scale)."""
    for j, eps in enumerate(eps_sorted):
        pts = np.stack([e_clean] + [embedded[e] for e in eps_sorted[:j + 1]], axis=1)
        yield cosine(e_clean, embedded[eps][:, None]), divergence_radius(pts)


def _transfer(config: AttackConfig, progress, clean: np.ndarray, adv_images: dict[float, np.ndarray],
              budgets: list[dict], eps_sorted: list[float]) -> list[dict]:
    """The images found on the attacked model, replayed on each artefact: "does INT8 change the
    vulnerability?" as the gap of the artefact's worst-case figures to the source model's."""
    from vfmaudit.runtime import open_encoder

    rows = []
    for path in config.transfer_to:
        progress(f"replaying on {Path(path).name}")
        target = open_encoder(str(path), device=config.device, batch_size=config.batch_size)
        e_clean = target.encode(clean)
        embedded = {eps: target.encode(adv_images[eps]) for eps in eps_sorted}
        for eps, source, (cos, radius) in zip(eps_sorted, budgets, _figures(e_clean, embedded, eps_sorted)):
            rows.append({"artefact": str(path), "backend": target.backend, "eps": eps,
                         "cosine": summarize(cos, True), "divergence_radius": summarize(radius, False),
                         "gap": {"cosine_mean": float(cos.mean() - source["cosine"]["mean"]),
                                 "cosine_worst": float(cos.min() - source["cosine"]["worst"]),
                                 "radius_mean": float(radius.mean() - source["divergence_radius"]["mean"])}})
    return rows


def _write(result: AttackResult, out: Path, on_complete) -> None:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    if result.config.save_images:
        (out / "clean").mkdir(exist_ok=True)
        for i, img in enumerate(result.clean_images):
            Image.fromarray(img).save(out / "clean" / f"{i:05d}.png")
        for eps, images in result.adversarial_images.items():
            folder = out / "adversarial" / f"eps_{eps:g}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(images):
                Image.fromarray(img).save(folder / f"{i:05d}.png")  # PNG: the bytes that were encoded
        result.files["images"] = {"clean": "clean/", "adversarial": "adversarial/eps_<eps>/",
                                  "names": "<index>.png, the index of images.attacked order"}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["image", "eps", "cosine", "divergence_radius", "linf_levels", "l2"])
    writer.writeheader()
    writer.writerows(result.per_image)
    write_text_atomic(out / "per_image.csv", buf.getvalue())
    result.files.update({"json": "attack.json", "csv": "per_image.csv"})
    if on_complete:
        result.files.update(on_complete(result, out))
    write_json(result.to_json(), out / "attack.json")
