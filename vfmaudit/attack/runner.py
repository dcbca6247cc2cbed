"""`run_attack`: white-box embedding attacks on a torch model at several budgets, every reported
number from the rounded uint8 images encoded through the ordinary encode path."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit.attack.inputs import load_images
from vfmaudit.attack.threat import NORMS, budget, default_step, levels, measured_norms, to_uint8, unit_images
from vfmaudit.attack.whitebox import LOSSES, apgd, embedding_loss, pgd
from vfmaudit.errors import VfmauditError
from vfmaudit.files import check_output_folder, write_json, write_text_atomic
from vfmaudit.metrics import cosine, divergence_radius, summarize

SCHEMA_VERSION = 1
METHODS = ("pgd", "apgd", "square", "search")
WHITE_BOX = ("pgd", "apgd")
THREAT_MODEL = ("eps in units of 1/255 for linf and on the [0, 1] image for l2, at the model's input size "
                "after its resize and crop; the model's normalisation inside the attacked function; the "
                "adversarial image rounded to uint8 inside the budget; every number from that uint8 image "
                "encoded through the ordinary encode path")


@dataclass
class AttackConfig:
    """What `vfmaudit attack` runs. eps: budgets (see THREAT_MODEL); steps: iterations per restart;
    step_size: PGD's step in eps units (default 1/4 of eps, at least 1/255 for linf as RobustVLM's);
    queries: the Square attack's encodes per image; backend: for square, how to open the model
    (auto: by the file's suffix); transfer_to: artefacts that the images found are replayed on;
    max_images: the first this many readable images (None: all)."""

    images: list[str] | None = None
    model: str = "openclip:ViT-S-32"
    pretrained: str | None = None
    seed: int = 0
    norm: str = "linf"
    eps: tuple[float, ...] = (1.0, 2.0, 4.0)
    method: str = "pgd"
    loss: str = "cosine"
    steps: int = 10
    restarts: int = 1
    step_size: float | None = None
    momentum: float = 0.9
    batch_size: int = 8
    device: str = "cpu"
    out: str | None = None
    save_images: bool = False
    queries: int = 1000
    backend: str = "auto"
    transfer_to: list[str] = field(default_factory=list)
    max_images: int | None = None
    # method search (vfmaudit.attack.search): the oracle, labelled data, the edits and the chain length
    oracle: str | None = None
    oracle_pretrained: str | None = None
    oracle_mode: str = "auto"
    dataset: str | None = None
    max_per_class: int | None = None
    test_fraction: float = 0.3
    classifier: str = "auto"
    perturbations: str = "everyday"
    levels: int = 5
    max_edits: int = 3

    def check(self) -> None:
        if self.norm not in NORMS:
            raise VfmauditError(f"--norm must be one of {', '.join(NORMS)}, got '{self.norm}'", param="norm")
        if self.method not in METHODS:
            raise VfmauditError(f"--method must be one of {', '.join(METHODS)}, got '{self.method}'", param="method")
        if self.method == "search":
            self._check_search()
        if self.loss not in LOSSES:
            raise VfmauditError(f"--loss must be one of {', '.join(LOSSES)}, got '{self.loss}'", param="loss")
        if not self.eps or any(not math.isfinite(e) or e < 0 for e in self.eps):
            raise VfmauditError(f"eps must be finite budgets >= 0, got {list(self.eps)}", param="eps")
        if self.max_images is not None and self.max_images < 1:
            raise VfmauditError(f"max_images must be >= 1, got {self.max_images}", param="max_images")
        for name in ("steps", "restarts", "batch_size", "queries", "levels"):
            if getattr(self, name) < 1:
                raise VfmauditError(f"{name} must be >= 1, got {getattr(self, name)}", param=name)
        from vfmaudit.runtime import is_artefact_path

        for path in self.transfer_to:
            if not Path(path).is_file():
                raise VfmauditError(f"transfer_to {path} is not a file: pass exported artefacts (.onnx, .engine)",
                                    param="transfer_to")
        if self.method in WHITE_BOX and is_artefact_path(self.model):
            raise VfmauditError(f"{self.method} is a white-box attack: it needs a torch model spec "
                                f"(openclip:ARCH or timm:NAME), not the artefact {self.model}; attack the model it "
                                "was exported from", param="model")

    def _check_search(self) -> None:
        from vfmaudit.attack.search import CLASSIFIERS, ORACLE_MODES

        if not self.oracle:
            raise VfmauditError("the edit search needs a model to gate its steps: pass --oracle SPEC (an OpenCLIP model for "
                                "zero-shot over the class names, or any model for nearest-neighbour labels)",
                                param="oracle")
        if self.oracle_mode not in ORACLE_MODES:
            raise VfmauditError(f"--oracle-mode must be one of {', '.join(ORACLE_MODES)}, got '{self.oracle_mode}'",
                                param="oracle_mode")
        if self.oracle_mode == "zero-shot" and not self.dataset:
            raise VfmauditError("a zero-shot oracle needs class names: pass --dataset (labelled images) or "
                                "--oracle-mode nearest", param="oracle_mode")
        if self.classifier not in CLASSIFIERS:
            raise VfmauditError(f"--classifier must be one of {', '.join(CLASSIFIERS)}, got '{self.classifier}'",
                                param="classifier")
        if self.dataset and self.images:
            raise VfmauditError("pass either IMAGES (unlabelled) or --dataset (labelled), not both",
                                param=("images", "dataset"))
        if self.max_edits < 1:
            raise VfmauditError(f"max_edits must be >= 1, got {self.max_edits}", param="max_edits")
        if self.max_per_class is not None and self.max_per_class < 2:
            raise VfmauditError(f"max_per_class must be >= 2, got {self.max_per_class}", param="max_per_class")
        if not 0 < self.test_fraction < 1:
            raise VfmauditError(f"test_fraction must be between 0 and 1, got {self.test_fraction}",
                                param="test_fraction")


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
                "budgets": self.budgets, "per_image": self.per_image, "transfer": self.transfer, "files": self.files}


def _default_step(config: AttackConfig, radius: float) -> float:
    if config.step_size is not None:
        return config.step_size * radius
    return default_step(config.norm, radius)


def _whitebox(config: AttackConfig, progress, ids, clean, e_clean, built, encoder, eps_sorted):
    import torch

    from vfmaudit.attack.threat import Normalize

    device = encoder.device
    module = encoder.module
    for p in module.parameters():
        p.requires_grad_(False)  # no gradient to the weights
    normalize = Normalize(built.preprocess, device, torch.float32)
    loss = embedding_loss(config.loss)

    def fn(x01: "torch.Tensor") -> "torch.Tensor":
        return module(normalize(x01))

    generator = torch.Generator().manual_seed(int(config.seed))
    adv_images, done, total = {}, 0, len(eps_sorted) * len(ids)
    for eps in eps_sorted:
        radius = budget(config.norm, eps)
        batch_out = np.empty_like(clean)
        for start in range(0, len(ids), config.batch_size):
            chunk = clean[start:start + config.batch_size]
            x01 = unit_images(chunk, device)
            e0 = torch.from_numpy(e_clean[start:start + len(chunk)]).to(device)
            with torch.autocast(device_type=device.type, enabled=False):
                if config.method == "pgd":
                    delta, _ = pgd(fn, x01, e0, loss, config.norm, radius, config.steps, _default_step(config, radius),
                                   config.restarts, generator, momentum=config.momentum)
                else:
                    delta, _ = apgd(fn, x01, e0, loss, config.norm, radius, config.steps, config.restarts, generator)
            adv01 = (x01 + delta).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy().astype(np.float64)
            batch_out[start:start + len(chunk)] = to_uint8(chunk, adv01, config.norm, eps)
            done += len(chunk)
            progress(f"attacking at eps {eps:g}", done, total)
        adv_images[eps] = batch_out
    return adv_images


def _square(config: AttackConfig, progress, ids, clean, e_clean, encoder, eps_sorted):
    from vfmaudit.attack.square import numpy_loss, square_l2, square_linf

    loss = numpy_loss(config.loss)
    attack = square_linf if config.norm == "linf" else square_l2
    rng = np.random.default_rng(config.seed)
    adv_images, done, total = {}, 0, len(eps_sorted) * len(ids)
    for eps in eps_sorted:
        size = levels(eps) if config.norm == "linf" else eps  # square_linf's budget is in grey levels
        batch_out = np.empty_like(clean)
        for start in range(0, len(ids), config.batch_size):
            chunk = clean[start:start + config.batch_size]
            best_imgs, best = chunk.copy(), np.full(len(chunk), -np.inf)
            for _ in range(config.restarts):
                imgs, values, _ = attack(encoder.encode, chunk, e_clean[start:start + len(chunk)], loss, size,
                                         config.queries, rng)
                better = values > best
                best_imgs[better], best = imgs[better], np.where(better, values, best)
            batch_out[start:start + len(chunk)] = best_imgs
            done += len(chunk)
            progress(f"square attack at eps {eps:g}", done, total)
        adv_images[eps] = batch_out
    return adv_images


def run_attack(config: AttackConfig, progress: Callable[[str, int, int], None] | None = None,
               on_complete: Callable[[AttackResult, Path], dict] | None = None) -> AttackResult:
    """Attack config.model at each budget in config.eps; see AttackConfig and THREAT_MODEL. With
    config.out, on_complete(result, out) writes more outputs there (the page) before attack.json and
    returns their entries for its `files`."""
    config.check()
    progress = progress or (lambda *a: None)
    if config.method == "search":
        from vfmaudit.attack.search_run import run_search

        return run_search(config, progress, on_complete)
    out_dir = check_output_folder(config.out) if config.out else None
    built = None
    if config.method in WHITE_BOX:
        from vfmaudit.models.factory import build_model
        from vfmaudit.runtime.torch_backend import TorchEncoder, resolve_device

        resolve_device(config.device)
        built = build_model(config.model, pretrained=config.pretrained, seed=config.seed)
        encoder = TorchEncoder(built, device=config.device, batch_size=config.batch_size)
    else:
        from vfmaudit.runtime import open_encoder

        encoder = open_encoder(config.model, config.pretrained, config.backend, device=config.device,
                               batch_size=config.batch_size, seed=config.seed)
    ids, clean, skipped = load_images(config, encoder.preprocess.prepare)
    progress("encoding the clean images")
    e_clean = encoder.encode(clean)
    eps_sorted = sorted(set(float(e) for e in config.eps))
    if built is not None:
        adv_images = _whitebox(config, progress, ids, clean, e_clean, built, encoder, eps_sorted)
    else:
        adv_images = _square(config, progress, ids, clean, e_clean, encoder, eps_sorted)
    # every number from the rounded images through the ordinary encode path
    adv_embeddings = {eps: encoder.encode(images) for eps, images in adv_images.items()}

    budgets, rows = [], []
    for eps, (cos, radius) in zip(eps_sorted, _figures(e_clean, adv_embeddings, eps_sorted)):
        linf, l2 = measured_norms(clean, adv_images[eps])
        budgets.append({"eps": eps, "norm": config.norm, "cosine": summarize(cos, True),
                        "divergence_radius": summarize(radius, False),
                        "max_linf_levels": float(linf.max()), "max_l2": float(l2.max())})
        rows += [{"image": ids[i], "eps": eps, "cosine": float(cos[i]), "divergence_radius": float(radius[i]),
                  "linf_levels": float(linf[i]), "l2": float(l2[i])} for i in range(len(ids))]
    transfer = _transfer(config, progress, clean, adv_images, budgets, eps_sorted)
    result = AttackResult(config=config, model=encoder.describe(), images=ids, skipped=skipped, budgets=budgets,
                          per_image=rows, transfer=transfer, out=str(out_dir) if out_dir else None,
                          clean_images=clean, adversarial_images=adv_images)
    if out_dir:
        _write(result, out_dir, on_complete)
    return result


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
