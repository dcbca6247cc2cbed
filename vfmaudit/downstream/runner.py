"""Downstream evaluation under perturbation, and how well the embedding metrics predict its loss.

Every test image is encoded once per variant (clean, each family x level) and the embeddings are
shared by every task. Per (family, level) each task reports its accuracy (or recall, mAP), its drop
from clean, and calibration error; beside them the mean divergence radius and cosine of the same
variants, so the accuracy drop can be fitted against them (the seed paper's analysis).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit import perturb
from vfmaudit.artefact.provenance import package_versions, report_header
from vfmaudit.audit.config import AuditConfig
from vfmaudit.audit.runner import open_encoder
from vfmaudit.data.datasets import LabelledSet, load_dataset
from vfmaudit.downstream.cache import ArrayCache
from vfmaudit.downstream.config import DownstreamConfig, text_source
from vfmaudit.downstream.tasks import LinearProbe, knn_predict, zero_shot_proba, zero_shot_weights
from vfmaudit.errors import ImageDecodeError, VfmauditError
from vfmaudit.files import FolderResult, lock_folder, write_json
from vfmaudit.metrics import (auroc, divergence_radius, expected_calibration_error, l2_normalize, linear_fit,
                              mean_average_precision, recall_at_k, threshold_at_precision)

SCHEMA = "vfmaudit.downstream"
REPORT_JSON = "downstream.json"
PER_LEVEL = "per_level.csv"
PER_LEVEL_COLUMNS = ["task", "family", "level", "accuracy", "accuracy_drop", "ece", "recall@1", "recall@5", "map",
                     "radius_mean", "cosine_mean"]
KNN_KS = (1, 20)
ProgressFn = Callable[[str, int], None]


class DownstreamResult(FolderResult):
    report_name = REPORT_JSON


def variant_name(family: str, level: float) -> str:
    return f"emb_test_{family}@{level:.6g}"


def _prepare(items, spec, batch: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Model-size uint8 images of the readable items, their indices, and the skipped ones with reasons."""
    h, w = spec.size
    images, kept, skipped = [], [], []
    for i, item in enumerate(items):
        try:
            images.append(spec.prepare(item.load()))
            kept.append(i)
        except (ImageDecodeError, OSError, ValueError) as e:
            skipped.append({"input": item.id, "reason": str(e)})
    arr = np.stack(images) if images else np.empty((0, h, w, 3), np.uint8)
    return arr, np.array(kept, dtype=int), skipped


def _encode(encoder, images: np.ndarray, batch: int, transform=None) -> np.ndarray:
    out = []
    for start in range(0, len(images), batch):
        chunk = np.ascontiguousarray(images[start:start + batch])
        out.append(encoder.encode(transform(chunk) if transform else chunk))
    return np.concatenate(out).astype(np.float32) if out else np.empty((0, encoder.embed_dim), np.float32)


def _cumulative_radius(clean: np.ndarray, variants: list[np.ndarray], order: list[int]) -> np.ndarray:
    """(N, L): per image, the ball of the clean embedding and the variants up to each level's severity."""
    n = len(clean)
    radius = np.zeros((n, len(variants)))
    for rank, j in enumerate(order):
        pts = np.stack([clean] + [variants[order[r]] for r in range(rank + 1)], axis=1)
        radius[:, j] = divergence_radius(l2_normalize(pts))
    return radius


def _outcome(out: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """A classifier's output -> (probabilities or None, predicted labels): kNN votes give labels only."""
    return (out, out.argmax(axis=1)) if out.ndim == 2 else (None, out)


def _class_metrics(proba: np.ndarray | None, pred: np.ndarray, y: np.ndarray) -> dict:
    d = {"accuracy": float(np.mean(pred == y))}
    if proba is not None:
        d["ece"] = expected_calibration_error(proba, y)
    return d


def run_downstream(config: DownstreamConfig, progress: ProgressFn | None = None,
                   on_complete: Callable[[DownstreamResult], object] | None = None) -> DownstreamResult:
    """Evaluate the tasks on clean and perturbed test images; downstream.json and per_level.csv in config.out."""
    tasks = config.task_list()
    plans = config.plan()
    if config.engine not in ("local", "ray"):
        raise VfmauditError(f"unknown engine '{config.engine}'; choose from local, ray", param="engine")
    if config.engine == "ray":
        from vfmaudit.audit.ray_engine import import_ray

        import_ray()  # one line before any work when Ray is missing
    templates = config.templates() if "zero-shot" in tasks else []
    data = load_dataset(config.dataset, config.max_per_class)
    train_idx, test_idx = data.split(config.test_fraction, config.seed)
    if len(train_idx) < 2 or len(test_idx) < 2:
        raise VfmauditError(f"{data.name} is too small to split into training and test images "
                            f"({len(train_idx)} and {len(test_idx)}); pass more images per class", param="dataset")
    encoder = open_encoder(AuditConfig(model=config.model, pretrained=config.pretrained, backend=config.backend,
                                       device=config.device, batch_size=config.batch_size, seed=config.seed))
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise VfmauditError(f"out {out} is a file; pass a folder", param="out")
    with lock_folder(out):
        result = _run_locked(config, tasks, plans, templates, data, train_idx, test_idx, encoder,
                             progress or (lambda e, n: None))
        if on_complete:
            on_complete(result)
    return result


def _run_locked(config, tasks, plans, templates, data: LabelledSet, train_idx, test_idx, encoder, progress):
    out = Path(config.out)
    cache = ArrayCache(out, config.fingerprint(), config.resume, config.overwrite)
    spec, bs = encoder.preprocess, config.batch_size
    skipped: list[dict] = []
    prepared = {}
    for split, idx in (("train", train_idx), ("test", test_idx)):
        found: dict = {}

        def compute(split=split, idx=idx, found=found):
            arr, kept, skip = _prepare([data.items[i] for i in idx], spec, bs)
            found.update(kept=kept, skipped=skip)
            return arr

        images = cache.get(f"images_{split}", compute)
        kept = cache.get(f"kept_{split}", lambda found=found: found["kept"])
        if found.get("skipped"):
            write_json({"skipped": found["skipped"]}, cache.dir / f"skipped_{split}.json")
        skipped_file = cache.dir / f"skipped_{split}.json"
        if skipped_file.exists():
            import json

            skipped += json.loads(skipped_file.read_text())["skipped"]
        prepared[split] = (images, np.asarray(idx)[np.asarray(kept, dtype=int)])
    (train_images, train_ids), (test_images, test_ids) = prepared["train"], prepared["test"]
    y_train, y_test = data.labels[train_ids], data.labels[test_ids]
    if len(np.unique(y_train)) < 2 or len(y_test) < 2:
        raise VfmauditError("fewer than two classes (or test images) could be read; check the data set",
                            param="dataset")
    variants = [(p.name, lv) for p in plans for lv in p.levels]
    progress("start", 2 + len(variants))
    train = cache.get("emb_train", lambda: _encode(encoder, train_images, bs))
    progress("advance", 1)
    clean = cache.get("emb_test_clean", lambda: _encode(encoder, test_images, bs))
    progress("advance", 1)
    emb: dict[tuple[str, float], np.ndarray] = {}
    on_ray: set[tuple[str, float]] = set()  # variants the actors encode (and report progress for)
    if config.engine == "ray":  # the perturbed test variants, encoded by a pool of Ray actors
        from vfmaudit.downstream.ray_variants import encode_variants_on_ray

        missing = [(n, lv) for n, lv in variants if not perturb.get(n).is_identity(lv)
                   and not cache.path(variant_name(n, lv)).exists()]
        on_ray = set(missing)
        encode_variants_on_ray(config, cache.dir, "images_test", missing,
                               lambda k: progress("advance", k))
    for name, lv in variants:
        fam = perturb.get(name)
        if fam.is_identity(lv):
            emb[(name, lv)] = clean  # an unchanged image has an unchanged embedding
        else:
            emb[(name, lv)] = cache.get(variant_name(name, lv), lambda name=name, lv=lv: _encode(
                encoder, test_images, bs, lambda x: perturb.apply(x, name, lv, seed=config.seed)))
        if (name, lv) not in on_ray:
            progress("advance", 1)

    # robustness of the same variants: cosine and the cumulative divergence radius per level
    robustness, radius_of = {}, {}
    for p in plans:
        fam = perturb.get(p.name)
        vs = [np.asarray(emb[(p.name, lv)]) for lv in p.levels]
        order = sorted(range(len(p.levels)), key=lambda j: abs(p.levels[j] - fam.identity))
        radius_of[p.name] = _cumulative_radius(np.asarray(clean), vs, order)
        clean_unit = l2_normalize(clean)
        cos = np.stack([np.sum(clean_unit * l2_normalize(v), axis=1) for v in vs], axis=1)
        robustness[p.name] = {"levels": list(p.levels), "radius_mean": radius_of[p.name].mean(axis=0).tolist(),
                              "cosine_mean": cos.mean(axis=0).tolist()}

    results, flips_for = {}, {}
    classifiers = {}
    if "linear-probe" in tasks:
        probe = LinearProbe(np.asarray(train), y_train, seed=config.seed)
        classifiers["linear_probe"] = (lambda x: probe.proba(x), {"C": probe.C})
    if "knn" in tasks:
        for k in KNN_KS:
            classifiers[f"knn_{k}"] = (lambda x, k=k: knn_predict(np.asarray(train), y_train, x, k), {"k": k})
    if "zero-shot" in tasks:
        from vfmaudit.models.text import build_text_encoder

        text = build_text_encoder(*text_source(config.model, config.pretrained, config.seed))
        weights = zero_shot_weights(text.encode, data.class_names, templates)
        classifiers["zero_shot"] = (lambda x: zero_shot_proba(x, weights), {"templates": templates})
    for task, (predict, params) in classifiers.items():
        proba_clean, pred_clean = _outcome(predict(np.asarray(clean)))
        entry = {"params": params, "clean": _class_metrics(proba_clean, pred_clean, y_test), "families": {}}
        flips = []
        for p in plans:
            fam_rows = {"levels": list(p.levels), "accuracy": [], "accuracy_drop": [], "ece": []}
            for j, lv in enumerate(p.levels):
                proba, pred = _outcome(predict(np.asarray(emb[(p.name, lv)])))
                m = _class_metrics(proba, pred, y_test)
                fam_rows["accuracy"].append(m["accuracy"])
                fam_rows["accuracy_drop"].append(entry["clean"]["accuracy"] - m["accuracy"])
                fam_rows["ece"].append(m.get("ece"))
                flips.append((radius_of[p.name][:, j], pred != pred_clean))
            if proba_clean is None:
                del fam_rows["ece"]
            entry["families"][p.name] = fam_rows
        results[task] = entry
        flips_for[task] = flips
    if "retrieval" in tasks:
        entry = {"clean": {"recall@1": recall_at_k(clean, clean, 1), "recall@5": recall_at_k(clean, clean, 5),
                           "map": mean_average_precision(np.asarray(clean), np.asarray(clean), y_test)},
                 "families": {}}
        for p in plans:
            rows = {"levels": list(p.levels), "recall@1": [], "recall@5": [], "map": []}
            for lv in p.levels:
                q = np.asarray(emb[(p.name, lv)])
                rows["recall@1"].append(recall_at_k(q, clean, 1))
                rows["recall@5"].append(recall_at_k(q, clean, 5))
                rows["map"].append(mean_average_precision(q, np.asarray(clean), y_test))
            entry["families"][p.name] = rows
        results["retrieval"] = entry

    prediction = {task: _prediction(results[task], robustness, flips_for[task]) for task in flips_for}
    report = {**report_header(SCHEMA, 1), "dataset": {"name": data.name, "classes": data.class_names,
                                                      "train_images": int(len(train_ids)),
                                                      "test_images": int(len(test_ids)),
                                                      "split": "given (train/, test/)" if data.train_index is not None
                                                      else f"stratified, seed {config.seed}, test fraction "
                                                           f"{config.test_fraction:g}", "notes": data.notes},
              "model": encoder.describe(), "random_weights": encoder.describe().get("weights", {}).get("kind") == "random",
              "tasks": results, "robustness": robustness, "prediction": prediction,
              "perturbations": [p.name for p in plans], "levels": config.levels, "seed": config.seed,
              "embeddings_reused": cache.reused, "skipped": skipped, "versions": package_versions()}
    write_json(report, out / REPORT_JSON)
    _write_per_level(report, out / PER_LEVEL)
    return DownstreamResult(report=report, out_dir=out)


def _prediction(task: dict, robustness: dict, flips: list) -> dict:
    """Accuracy drop against mean radius and (1 - cosine) over every (family, level); per image, radius -> flip."""
    xs_r, xs_c, ys = [], [], []
    per_family = {}
    for fam, rows in task["families"].items():
        r, c = robustness[fam]["radius_mean"], robustness[fam]["cosine_mean"]
        xs_r += r
        xs_c += [1 - v for v in c]
        ys += rows["accuracy_drop"]
        per_family[fam] = linear_fit(np.array(r), np.array(rows["accuracy_drop"]))
    radius = np.concatenate([f[0] for f in flips]) if flips else np.empty(0)
    flipped = np.concatenate([f[1] for f in flips]) if flips else np.empty(0, bool)
    return {"vs_radius": linear_fit(np.array(xs_r), np.array(ys)),
            "vs_one_minus_cosine": linear_fit(np.array(xs_c), np.array(ys)), "per_family_vs_radius": per_family,
            "per_image": {"predictions": int(len(flipped)), "flips": int(flipped.sum()),
                          "auroc_radius_predicts_flip": auroc(radius, flipped),
                          "radius_threshold_at_95_precision": threshold_at_precision(radius, flipped, 0.95)}}


def _write_per_level(report: dict, path: Path) -> None:
    rows = []
    for task, entry in report["tasks"].items():
        for fam, fam_rows in entry["families"].items():
            rob = report["robustness"][fam]
            for j, lv in enumerate(fam_rows["levels"]):
                row = {"task": task, "family": fam, "level": f"{lv:.8g}", "radius_mean": f"{rob['radius_mean'][j]:.8g}",
                       "cosine_mean": f"{rob['cosine_mean'][j]:.8g}"}
                for key in PER_LEVEL_COLUMNS[3:9]:
                    if key in fam_rows and fam_rows[key][j] is not None:
                        row[key] = f"{fam_rows[key][j]:.8g}"
                rows.append(row)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=PER_LEVEL_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
