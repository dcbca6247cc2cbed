"""Downstream evaluation under perturbation, and how well the embedding metrics predict its loss.

Every test image is encoded once per variant (clean, each family x level) and the embeddings are
shared by every task. Per (family, level) each task reports its accuracy (or recall, mAP), its drop
from clean, and calibration error; beside them the mean divergence radius and cosine of the same
variants, so the accuracy drop can be fitted against them (the seed paper's analysis).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit import perturb
from vfmaudit.artefact.provenance import package_versions, report_header
from vfmaudit.data.datasets import LabelledSet, load_dataset
from vfmaudit.downstream.cache import ArrayCache
from vfmaudit.downstream.config import DownstreamConfig, text_source
from vfmaudit.downstream.imagenet_c import corruption_errors, load_baseline
from vfmaudit.downstream.tasks import (KNN_KS, LinearProbe, knn_predict, zero_shot_logits, zero_shot_proba,
                                       zero_shot_weights)
from vfmaudit.downstream.ray_variants import encode_ahead_on_ray
from vfmaudit.downstream.variants import (encode_ahead_locally, encode_images, load_variants, missing_variants,
                                          variant_name)
from vfmaudit.engines import get_engine
from vfmaudit.engines.ray import check_reachable
from vfmaudit.errors import ImageDecodeError, VfmauditError
from vfmaudit.files import check_output_folder, FolderResult, lock_folder, write_json
from vfmaudit.perturb.families.imagenet_c import options as imagenet_c_options
from vfmaudit.metrics import (auroc, divergence_radius, expected_calibration_error, l2_normalize, linear_fit,
                              mean_average_precision, recall_at_k, threshold_at_precision)
from vfmaudit.progress import StageFn, no_stages
from vfmaudit.runtime import open_encoder

SCHEMA = "vfmaudit.downstream"
REPORT_JSON = "downstream.json"
PER_LEVEL = "per_level.csv"
PER_LEVEL_COLUMNS = ["task", "family", "level", "accuracy", "accuracy_drop", "ece", "recall@1", "recall@5", "map",
                     "radius_mean", "cosine_mean"]
ProgressFn = Callable[[str, int], None]
# engine name -> who encodes the test variants missing from the cache (one entry per vfmaudit.engines engine)
VARIANT_ENGINES = {"local": encode_ahead_locally, "ray": encode_ahead_on_ray}

__all__ = ["run_downstream", "DownstreamResult", "variant_name", "KNN_KS"]


class DownstreamResult(FolderResult):
    report_name = REPORT_JSON


def _prepare(items, spec) -> tuple[np.ndarray, np.ndarray, list[dict]]:
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


def run_downstream(config: DownstreamConfig, progress: ProgressFn | None = None,
                   on_complete: Callable[[DownstreamResult], object] | None = None,
                   stage: StageFn | None = None) -> DownstreamResult:
    """Evaluate the tasks on clean and perturbed test images; downstream.json and per_level.csv in config.out.

    progress(event, n) follows the encoding, stage(what, i, n) the set-up and the fitting around it.
    """
    stage = stage or no_stages
    tasks = config.task_list()
    plans = config.plan()
    get_engine(config.engine)  # one line before any work when the engine cannot run here
    if config.engine == "ray":
        check_reachable(config.ray_address)
    out = Path(config.out)
    check_output_folder(out)  # the input checks first: none of them needs the model
    stage(f"listing {config.train or config.dataset}", 0, 0)
    data = config.load_data()
    train_idx, test_idx = data.split(config.test_fraction, config.seed)
    if len(train_idx) < 2 or len(test_idx) < 2:
        raise VfmauditError(f"{data.name} is too small to split into training and test images "
                            f"({len(train_idx)} and {len(test_idx)}); pass more images per class", param="dataset")
    if config.shift:  # every shift class a training class: said before any encoding
        from vfmaudit.downstream.shift import class_indices, read_class_map

        class_map = read_class_map(config.class_map)
        for _, spec in config.shift_sets():
            class_indices(load_dataset(spec, config.max_per_class).class_names, data.class_names, class_map, spec)
    ood_items = {}
    for name, spec in config.ood_sets():  # listed once, before any encoding: a set too small is said now
        ood_items[name] = _ood_items(config, spec)
        if len(ood_items[name]) < 2:
            raise VfmauditError(f"ood set {name} ({spec}): {len(ood_items[name])} image(s); an OOD set needs at "
                                f"least two", param="ood")
    templates = config.templates() if "zero-shot" in tasks else []
    if templates:
        from vfmaudit.models.text import require_text_tower

        require_text_tower(text_source(config.model, config.pretrained, config.seed)[0])
    ArrayCache.check_claim(out, config.fingerprint(), config.resume, config.overwrite)  # before the model loads
    stage(f"opening {config.model}", 0, 0)
    encoder = open_encoder(config.model, config.pretrained, config.backend, config.device, config.batch_size,
                           config.seed)
    with lock_folder(out):
        result = _run_locked(config, tasks, plans, templates, data, train_idx, test_idx, ood_items, encoder,
                             progress or (lambda e, n: None), stage)
        if on_complete:
            stage("writing report.html", 0, 0)
            on_complete(result)
    return result


def _prepared_split(cache: ArrayCache, data: LabelledSet, split: str, idx, spec) -> tuple[np.ndarray, np.ndarray,
                                                                                           list[dict]]:
    """One split's model-size images (cached), the dataset indices of the readable ones, the skipped ones."""
    found: dict = {}

    def compute():
        arr, kept, skip = _prepare([data.items[i] for i in idx], spec)
        found.update(kept=kept, skipped=skip)
        return arr

    images = cache.get(f"images_{split}", compute)
    kept = cache.get(f"kept_{split}", lambda: found["kept"])
    skipped_file = cache.dir / f"skipped_{split}.json"
    if found.get("skipped"):
        write_json({"skipped": found["skipped"]}, skipped_file)
    skipped = json.loads(skipped_file.read_text())["skipped"] if skipped_file.exists() else []
    return images, np.asarray(idx)[np.asarray(kept, dtype=int)], skipped


def _run_locked(config, tasks, plans, templates, data: LabelledSet, train_idx, test_idx, ood_items: dict, encoder,
                progress, stage: StageFn):
    out = Path(config.out)
    cache = ArrayCache(out, config.fingerprint(), config.resume, config.overwrite)
    bs = config.batch_size
    stage(f"reading {len(train_idx)} training and {len(test_idx)} test images", 0, 0)
    train_images, train_ids, skipped_train = _prepared_split(cache, data, "train", train_idx, encoder.preprocess)
    test_images, test_ids, skipped_test = _prepared_split(cache, data, "test", test_idx, encoder.preprocess)
    y_train, y_test = data.labels[train_ids], data.labels[test_ids]
    if len(np.unique(y_train)) < 2 or len(y_test) < 2:
        skipped = skipped_train + skipped_test
        named = f"; {len(skipped)} skipped, e.g. {skipped[0]['input']}: {skipped[0]['reason']}" if skipped else ""
        raise VfmauditError(f"fewer than two classes (or test images) could be read{named}; check the data set",
                            param="dataset")
    n_variants = sum(len(p.levels) for p in plans)
    progress("start", 2 + n_variants)
    train = cache.get("emb_train", lambda: encode_images(encoder, train_images, bs))
    progress("advance", 1)
    clean = cache.get("emb_test_clean", lambda: encode_images(encoder, test_images, bs))
    progress("advance", 1)
    advance = lambda k: progress("advance", k)  # noqa: E731
    done_ahead = VARIANT_ENGINES[config.engine](config, cache, "images_test", missing_variants(plans, cache), advance)
    emb = load_variants(plans, cache, clean, encoder, test_images, bs, config.seed, done_ahead, advance)

    stage("divergence radius of the test images per family", 0, 0)
    robustness, radius_of = _robustness(plans, np.asarray(clean), emb)
    classifiers = _classifiers(config, tasks, np.asarray(train), y_train, data.class_names, templates, stage)
    results, flips_for = _classification_results(classifiers, np.asarray(clean), emb, plans, y_test, radius_of,
                                                 stage)
    if "retrieval" in tasks:
        stage("retrieval on clean and perturbed queries", 0, 0)
        results["retrieval"] = _retrieval_results(np.asarray(clean), emb, plans, y_test)
    ood, skipped_ood = (_ood(config, cache, encoder, np.asarray(train), y_train, classifiers, np.asarray(clean), emb,
                             plans, ood_items, stage) if config.ood else (None, []))
    typographic = _typographic(config, cache, encoder, test_images, y_test, data.class_names, classifiers, plans,
                               stage)
    shift, skipped_shift = (_shift(config, cache, encoder, np.asarray(train), y_train, data.class_names, classifiers,
                                   results, stage) if config.shift else (None, []))
    prediction = {task: _prediction(results[task], robustness, flips_for[task]) for task in flips_for}
    baseline = load_baseline(config.baseline_report) if config.baseline_report else None
    corruption = corruption_errors(results, baseline)
    desc = encoder.describe()
    report = {**report_header(SCHEMA, 1),
              "dataset": {"name": data.name, "classes": data.class_names, "train_images": int(len(train_ids)),
                          "test_images": int(len(test_ids)),
                          "split": "given (train/, test/)" if data.train_index is not None
                          else f"stratified, seed {config.seed}, test fraction {config.test_fraction:g}",
                          "notes": data.notes},
              "model": desc, "random_weights": desc.get("weights", {}).get("kind") == "random",
              "tasks": results, "robustness": robustness, "prediction": prediction,
              **({"imagenet_c": corruption | {"baseline": config.baseline_report, "options": imagenet_c_options()}}
                 if corruption else {}),
              "perturbations": [p.name for p in plans], "levels": config.levels, "seed": config.seed,
              **({"ood": ood} if ood is not None else {}),
              **({"shift": shift} if shift is not None else {}),
              **({"typographic": typographic} if typographic is not None else {}),
              "embeddings_reused": cache.reused,
              "skipped": skipped_train + skipped_test + skipped_ood + skipped_shift,
              "versions": package_versions()}
    write_json(report, out / REPORT_JSON)
    _write_per_level(report, out / PER_LEVEL)
    return DownstreamResult(report=report, out_dir=out)


def _encoded_set(cache: ArrayCache, kind: str, name: str, spec: str, items, encoder,
                 batch_size: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """An extra image set's embeddings (cached), the indices of its readable items, the skipped ones.
    kind: ood or shift, the option that named the set."""
    key, what = f"{kind}_{name}", f"{kind} set {name} ({spec})"
    found: dict = {}

    def compute():
        images, kept, skip = _prepare(items, encoder.preprocess)
        found.update(kept=kept, skipped=skip)
        if len(images) < 2:
            raise VfmauditError(f"{what}: fewer than two readable images" + (
                f" ({len(skip)} skipped, e.g. {skip[0]['input']}: {skip[0]['reason']})" if skip else ""),
                param=kind)
        return encode_images(encoder, images, batch_size)

    emb = np.asarray(cache.get(f"emb_{key}", compute))
    kept = np.asarray(cache.get(f"kept_{key}", lambda: found["kept"]), dtype=int)
    skipped_file = cache.dir / f"skipped_{key}.json"
    if "skipped" in found:
        write_json({"skipped": found["skipped"]}, skipped_file)
    skipped = json.loads(skipped_file.read_text())["skipped"] if skipped_file.exists() else []
    return emb, kept, skipped


def _typographic(config, cache: ArrayCache, encoder, test_images: np.ndarray, y_test: np.ndarray,
                 class_names: list[str], classifiers: dict, plans, stage: StageFn) -> dict | None:
    """With the typographic family in the plan: a wrong class name written on each test image at its
    levels, against a control word (vfmaudit.downstream.typographic)."""
    from vfmaudit.downstream.typographic import typographic_results, words, written

    plan = next((p for p in plans if p.name == "typographic"), None)
    levels = [lv for lv in (plan.levels if plan else []) if lv > 0]
    if not levels or not classifiers:
        return None
    images = np.asarray(test_images)
    target, names, controls = words(y_test, class_names, config.seed)
    embedded = {}
    for j, lv in enumerate(levels):
        stage("typographic attack: writing class names and control words", j, len(levels))
        for kind, ws in (("class", names), ("control", controls)):
            def make(ws=ws, lv=lv) -> np.ndarray:
                return encode_images(encoder, written(images, ws, lv, config.seed), config.batch_size)

            embedded[kind, lv] = np.asarray(cache.get(f"emb_typographic_{kind}@{lv:g}", make))
    attack = {lv: embedded["class", lv] for lv in levels}
    control = {lv: embedded["control", lv] for lv in levels}
    from PIL import Image

    shown = images[:4]
    examples = written(shown, names[:4], levels[-1], config.seed)
    strip = np.concatenate([np.concatenate([a, b], axis=0) for a, b in zip(shown, examples)], axis=1)
    Image.fromarray(strip).save(Path(config.out) / "typographic_examples.png")  # clean above, attacked below
    return {"targets": "another class per test image, seeded", "control": "a word that is no class name",
            "examples": "typographic_examples.png",
            **typographic_results(classifiers, _outcome, levels, attack, control, target, y_test)}


def _shift(config, cache: ArrayCache, encoder, train: np.ndarray, y_train: np.ndarray, class_names: list[str],
           classifiers: dict, results: dict, stage: StageFn) -> tuple[dict, list[dict]]:
    """Each shift set's classes matched to the training classes, encoded, and classified."""
    from vfmaudit.downstream.shift import class_indices, read_class_map, shift_results

    class_map = read_class_map(config.class_map)
    out, skipped = {}, []
    for name, spec in config.shift_sets():
        stage(f"shift set {name}: encoding and classifying", 0, 0)
        shift_data = load_dataset(spec, config.max_per_class)
        index = class_indices(shift_data.class_names, class_names, class_map, spec)
        emb, kept, skip = _encoded_set(cache, "shift", name, spec, shift_data.items, encoder, config.batch_size)
        y = index[shift_data.labels[kept]]
        out[name] = {"spec": spec, "images": int(len(y)),
                     **shift_results(classifiers, train, y_train, knn_predict, emb, y, len(class_names), results)}
        skipped += skip
    return out, skipped


def _ood(config, cache: ArrayCache, encoder, train: np.ndarray, y_train: np.ndarray, classifiers: dict,
         clean: np.ndarray, emb: dict, plans, ood_items: dict, stage: StageFn) -> tuple[dict, list[dict]]:
    """The OOD sets (their items as run_downstream listed them) encoded, cached as the other embeddings, and
    every score's detection figures."""
    from vfmaudit.downstream.ood import OOD_METRICS, ood_results, scorers

    sets, skipped = {}, []
    for name, spec in config.ood_sets():
        stage(f"encoding the OOD set {name}", 0, 0)
        sets[name], _, skip = _encoded_set(cache, "ood", name, spec, ood_items[name], encoder, config.batch_size)
        skipped += skip
    logits = {task: entry[2] for task, entry in classifiers.items() if len(entry) > 2}  # probe, zero-shot
    fns, params = scorers(train, y_train, logits)
    stage(f"OOD detection: {len(fns)} scores x {len(sets)} set(s)", 0, 0)
    return {"params": params, "metrics": list(OOD_METRICS), "scores": list(fns),
            "sets": ood_results(fns, clean, emb, plans, sets)}, skipped


def _ood_items(config, spec: str) -> list:
    """An OOD set's items: a dataset's (builtin:NAME, a CSV) or any image source's, listed, not decoded."""
    from vfmaudit.data.source import read_items

    is_dataset = spec.startswith("builtin:") or Path(spec).suffix.lower() == ".csv"
    return list(load_dataset(spec, config.max_per_class).items if is_dataset else read_items([spec]))


def _cumulative_radius(clean: np.ndarray, variants: list[np.ndarray], order: list[int]) -> np.ndarray:
    """(N, L): per image, the ball of the clean embedding and the variants up to each level's severity."""
    n = len(clean)
    radius = np.zeros((n, len(variants)))
    for rank, j in enumerate(order):
        pts = np.stack([clean] + [variants[order[r]] for r in range(rank + 1)], axis=1)
        radius[:, j] = divergence_radius(l2_normalize(pts))
    return radius


def _robustness(plans, clean: np.ndarray, emb: dict) -> tuple[dict, dict]:
    """Per family: the mean cumulative divergence radius and mean cosine per level; per-image radii."""
    robustness, radius_of = {}, {}
    clean_unit = l2_normalize(clean)
    for p in plans:
        fam = perturb.get(p.name)
        vs = [np.asarray(emb[(p.name, lv)]) for lv in p.levels]
        order = sorted(range(len(p.levels)), key=lambda j: abs(p.levels[j] - fam.identity))
        radius_of[p.name] = _cumulative_radius(clean, vs, order)
        cos = np.stack([np.sum(clean_unit * l2_normalize(v), axis=1) for v in vs], axis=1)
        robustness[p.name] = {"levels": list(p.levels), "radius_mean": radius_of[p.name].mean(axis=0).tolist(),
                              "cosine_mean": cos.mean(axis=0).tolist()}
    return robustness, radius_of


def _classifiers(config, tasks, train: np.ndarray, y_train: np.ndarray, class_names: list[str],
                 templates: list[str], stage: StageFn = no_stages) -> dict:
    """task key -> (embeddings -> probabilities or labels, parameters[, embeddings -> logits]), fitted on
    the clean training set; the logits (probe, zero-shot) feed the OOD scores."""
    classifiers = {}
    if "linear-probe" in tasks:
        stage(f"fitting the linear probe on {len(train)} training embeddings", 0, 0)
        probe = LinearProbe(train, y_train, seed=config.seed)
        classifiers["linear_probe"] = (probe.proba, {"C": probe.C, "C_chosen_by": probe.C_chosen}, probe.logits)
    if "knn" in tasks:
        for k in KNN_KS:
            classifiers[f"knn_{k}"] = (lambda x, k=k: knn_predict(train, y_train, x, k), {"k": k})
    if "zero-shot" in tasks:
        from vfmaudit.models.text import build_text_encoder

        stage(f"zero-shot: encoding {len(templates)} prompt(s) for {len(class_names)} classes", 0, 0)
        text = build_text_encoder(*text_source(config.model, config.pretrained, config.seed))
        weights = zero_shot_weights(text.encode, class_names, templates)
        classifiers["zero_shot"] = (lambda x: zero_shot_proba(x, weights), {"templates": templates},
                                    lambda x: zero_shot_logits(x, weights))  # the third: logits, for OOD scores
    return classifiers


def _outcome(out: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """A classifier's output -> (probabilities or None, predicted labels): kNN votes give labels only."""
    return (out, out.argmax(axis=1)) if out.ndim == 2 else (None, out)


def _class_metrics(proba: np.ndarray | None, pred: np.ndarray, y: np.ndarray) -> dict:
    d = {"accuracy": float(np.mean(pred == y))}
    if proba is not None:
        d["ece"] = expected_calibration_error(proba, y)
    return d


def _classification_results(classifiers: dict, clean: np.ndarray, emb: dict, plans, y_test: np.ndarray,
                            radius_of: dict, stage: StageFn = no_stages) -> tuple[dict, dict]:
    """Per classifier: clean metrics and per (family, level) accuracy, drop and ECE; the flips per image."""
    results, flips_for = {}, {}
    for i, (task, (predict, params, *_)) in enumerate(classifiers.items()):
        stage("classifying clean and perturbed test images (classifiers)", i, len(classifiers))
        proba_clean, pred_clean = _outcome(predict(clean))
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
    return results, flips_for


def _retrieval_results(clean: np.ndarray, emb: dict, plans, y_test: np.ndarray) -> dict:
    """Perturbed queries against the clean gallery: recall@1, recall@5 and mAP per (family, level)."""
    entry = {"clean": {"recall@1": recall_at_k(clean, clean, 1), "recall@5": recall_at_k(clean, clean, 5),
                       "map": mean_average_precision(clean, clean, y_test)}, "families": {}}
    for p in plans:
        rows = {"levels": list(p.levels), "recall@1": [], "recall@5": [], "map": []}
        for lv in p.levels:
            q = np.asarray(emb[(p.name, lv)])
            rows["recall@1"].append(recall_at_k(q, clean, 1))
            rows["recall@5"].append(recall_at_k(q, clean, 5))
            rows["map"].append(mean_average_precision(q, clean, y_test))
        entry["families"][p.name] = rows
    return entry


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
