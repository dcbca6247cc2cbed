"""`run_attack` with method search: the data (labelled or not), the tested model's loss, the oracle,
the search per image (vfmaudit.attack.search), and its outputs: attack.json, per_image.csv, the page
and (--save-images) the clean and last accepted images."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vfmaudit.attack.search import (KNN_K, ORACLE_TEMPLATE, Chain, drift, search_image, search_space,
                                    summary)
from vfmaudit.errors import VfmauditError
from vfmaudit.files import write_json, write_text_atomic
from vfmaudit.metrics import l2_normalize

SCHEMA_VERSION = 1
PER_IMAGE_COLUMNS = ["image", "label", "oracle_clean", "steps", "chain", "stop", "queries", "cosine",
                     "divergence_radius", "correct_clean", "correct_final"]


@dataclass
class SearchData:
    ids: list[str]
    images: np.ndarray  # the attacked images at the tested model's input size
    skipped: list[tuple[str, str]]
    labels: np.ndarray | None = None  # None: unlabelled
    class_names: list[str] | None = None
    train_images: np.ndarray | None = None
    train_labels: np.ndarray | None = None


@dataclass
class SearchResult:
    config: object
    model: dict
    oracle: dict
    data: SearchData = field(repr=False)
    rows: list[dict]
    figures: dict
    final_images: np.ndarray | None = field(default=None, repr=False)
    out: str | None = None
    files: dict = field(default_factory=dict)
    shards: dict = field(default_factory=dict)  # the engine, how many shards, how many a resumed run reused
    _header: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def images(self) -> list[str]:
        return self.data.ids

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return self.data.skipped

    def to_json(self) -> dict:
        if self._header is None:
            from vfmaudit.artefact.provenance import report_header

            self._header = report_header("vfmaudit.attack", SCHEMA_VERSION)
        return {**self._header, "command": "attack", "method": "search", "config": asdict(self.config),
                "model": self.model, "oracle": self.oracle,
                "images": {"attacked": len(self.data.ids), "skipped": [list(s) for s in self.data.skipped]},
                "engine": self.shards, "search": self.figures, "per_image": self.rows, "budgets": [], "transfer": [],
                "files": self.files}


def _load(config, encoder) -> SearchData:
    """The labelled test split (config.dataset) with its training split, or the unlabelled images."""
    prepare = encoder.preprocess.prepare
    if not config.dataset:
        from vfmaudit.attack.inputs import load_images

        ids, images, skipped = load_images(config, prepare)
        return SearchData(ids, images, skipped)
    from vfmaudit.data.datasets import load_dataset
    from vfmaudit.downstream.runner import _prepare

    data = load_dataset(config.dataset, config.max_per_class)
    train_idx, test_idx = data.split(config.test_fraction, config.seed)
    train, train_kept, skip_train = _prepare([data.items[i] for i in train_idx], encoder.preprocess)
    test, test_kept, skip_test = _prepare([data.items[i] for i in test_idx], encoder.preprocess)
    if config.max_images is not None:
        test, test_kept = test[:config.max_images], test_kept[:config.max_images]
    train_ids, test_ids = np.asarray(train_idx)[train_kept], np.asarray(test_idx)[test_kept]
    if len(test_ids) == 0 or len(np.unique(data.labels[train_ids])) < 2:
        raise VfmauditError(f"{config.dataset}: too few readable images to split into training and test images "
                            f"({len(train_ids)} and {len(test_ids)})", param="dataset")
    skipped = [(s["input"], s["reason"]) for s in skip_train + skip_test]
    return SearchData([data.items[i].id for i in test_ids], test, skipped, data.labels[test_ids],
                      list(data.class_names), train, data.labels[train_ids])


def _classifier(config, encoder, data: SearchData):
    """The tested model's downstream classifier: (name, embeddings -> probabilities or kNN vote fractions)."""
    from vfmaudit.downstream.config import DEFAULT_PROMPTS, is_openclip, text_source
    from vfmaudit.downstream.tasks import LinearProbe, zero_shot_proba, zero_shot_weights

    name = config.classifier
    if name == "auto":
        name = "zero-shot" if is_openclip(config.model) else "linear-probe"
    if name == "zero-shot":
        from vfmaudit.models.text import build_text_encoder

        text = build_text_encoder(*text_source(config.model, config.pretrained, config.seed))
        templates = DEFAULT_PROMPTS.split("|")
        weights = zero_shot_weights(text.encode, data.class_names, templates)
        return name, {"templates": templates}, lambda e: zero_shot_proba(e, weights)
    train = l2_normalize(encoder.encode(data.train_images))
    if name == "linear-probe":
        probe = LinearProbe(train, data.train_labels, seed=config.seed)
        return name, {"C": probe.C, "C_chosen_by": probe.C_chosen}, probe.proba
    n_classes = len(data.class_names)
    k = min(KNN_K, len(train))

    def votes(e: np.ndarray) -> np.ndarray:  # the fraction of the k nearest training images per class
        sims = l2_normalize(e) @ train.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        return np.stack([np.bincount(row, minlength=n_classes) for row in data.train_labels[top]]) / k

    return name, {"k": k}, votes


def _oracle(config, data: SearchData):
    """(description, images -> the oracle's label per image, the label each attacked image must keep)."""
    from vfmaudit.downstream.config import is_openclip, text_source
    from vfmaudit.runtime import open_encoder

    oracle = open_encoder(config.oracle, config.oracle_pretrained, "auto", device=config.device,
                          batch_size=config.batch_size, seed=config.seed)
    labelled = data.labels is not None
    mode = config.oracle_mode
    if mode == "auto":
        mode = "zero-shot" if labelled and is_openclip(config.oracle) else "nearest"
    if mode == "zero-shot":
        from vfmaudit.downstream.tasks import zero_shot_weights
        from vfmaudit.models.text import build_text_encoder

        text = build_text_encoder(*text_source(config.oracle, config.oracle_pretrained, config.seed))
        weights = zero_shot_weights(text.encode, data.class_names, [ORACLE_TEMPLATE])
        predict = lambda images: np.argmax(oracle.encode(images) @ weights.T, axis=1)  # noqa: E731
        how = f"zero-shot over the class names, prompt '{ORACLE_TEMPLATE}'"
        keep = data.labels
    else:
        gallery = data.train_images if labelled else data.images
        gallery_labels = data.train_labels if labelled else np.arange(len(data.images))
        g = oracle.encode(gallery)
        predict = lambda images: gallery_labels[np.argmax(oracle.encode(images) @ g.T, axis=1)]  # noqa: E731
        how = ("the label of its nearest neighbour among the clean training images" if labelled else
               "its nearest neighbour among the clean images must be the image itself")
        keep = data.labels if labelled else np.arange(len(data.images))
    return {"model": oracle.describe(), "mode": mode, "rule": how}, predict, keep


class Searcher:
    """Everything one image's search needs, built once per process (the driver, or each Ray actor):
    the tested model, the data, the oracle, the classifier and the loss."""

    def __init__(self, config, progress: Callable[[str, int, int], None] | None = None) -> None:
        from vfmaudit.perturb.plan import parse_perturbations
        from vfmaudit.runtime import open_encoder

        progress = progress or (lambda *a: None)
        self.config = config
        self.space = search_space(parse_perturbations(config.perturbations, config.levels))
        progress(f"opening {config.model}", 0, 0)
        self.encoder = open_encoder(config.model, config.pretrained, config.backend, device=config.device,
                                    batch_size=config.batch_size, seed=config.seed)
        self.data = data = _load(config, self.encoder)
        self.labelled = data.labels is not None
        progress(f"opening the oracle {config.oracle}", 0, 0)
        self.oracle_info, self.oracle_predict, self.keep = _oracle(config, data)
        self.clean_emb = self.encoder.encode(data.images)
        if self.labelled:
            self.clf_name, self.clf_params, self.scores = _classifier(config, self.encoder, data)
        else:
            self.clf_name, self.clf_params, self.scores = None, {}, None
        self.oracle_clean = self.oracle_predict(data.images) == self.keep
        self.clean_pred = np.argmax(self.scores(self.clean_emb), axis=1) if self.labelled else None

    def loss(self, emb: np.ndarray, i: int) -> np.ndarray:
        if not self.labelled:
            return 1.0 - l2_normalize(emb) @ self.clean_emb[i].astype(np.float64)
        p = self.scores(emb)[:, self.data.labels[i]]
        if self.clf_name == "knn":  # vote fractions are steps of 1/k: 1 - cos to the clean embedding breaks ties
            return 1.0 - p + 1e-3 * (1.0 - l2_normalize(emb) @ self.clean_emb[i])
        return -np.log(np.maximum(p, 1e-12))  # the classifier's cross-entropy at the label

    def search(self, i: int) -> tuple[dict, np.ndarray]:
        """Image i's chain as its per-image row, and the image after its last accepted edit."""
        config, data = self.config, self.data
        clean_loss = float(self.loss(self.clean_emb[i:i + 1], i)[0])
        if self.oracle_clean[i]:
            chain = search_image(i, data.images[i], clean_loss, self.encoder.encode, self.loss,
                                 lambda imgs, j: self.oracle_predict(imgs) == self.keep[j], self.space,
                                 config.max_edits, config.queries, config.seed)
        else:  # the oracle does not recognise the clean image: nothing to search from
            chain = Chain([], "oracle_rejects_clean", 0, 0, data.images[i], [])
        cos, radius = drift(self.clean_emb[i], chain)
        row = {"image": data.ids[i], "label": data.class_names[data.labels[i]] if self.labelled else None,
               "oracle_clean": bool(self.oracle_clean[i]), "chain": [s.to_json() for s in chain.steps],
               "chain_spec": chain.spec(), "stop": chain.stop, "rejected": chain.rejected, "queries": chain.queries,
               "oracle_queries": chain.oracle_queries, "loss_clean": clean_loss,
               "loss_final": chain.steps[-1].loss if chain.steps else clean_loss, "cosine": cos,
               "divergence_radius": radius}
        if self.labelled:
            final_emb = chain.embeddings[-1][None] if chain.embeddings else self.clean_emb[i:i + 1]
            row["correct_clean"] = bool(self.clean_pred[i] == data.labels[i])
            row["correct_final"] = bool(np.argmax(self.scores(final_emb)[0]) == data.labels[i])
        return row, chain.image


class SearchJob:
    """The edit search over a shard of images: (the final images as (1, n, H, W, 3), the rows)."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher

    def shard(self, span: tuple[int, int]) -> tuple[np.ndarray, list[dict]]:
        rows, finals = [], []
        for i in range(*span):
            row, image = self.searcher.search(i)
            rows.append(row)
            finals.append(image)
        return np.stack(finals)[None], rows

    def share(self, folder: Path) -> None:
        """Nothing: each actor loads the data and builds the models and classifier again (deterministic)."""

    @classmethod
    def on_actor(cls, config, folder: Path) -> "SearchJob":
        return cls(Searcher(config))


def run_search(config, progress: Callable[[str, int, int], None],
               on_complete: Callable[[SearchResult, Path], dict] | None = None,
               out_dir: Path | None = None) -> SearchResult:
    """The oracle-gated edit search; see vfmaudit.attack.search for the algorithm and definitions.
    out_dir: where the shards (and the outputs) go; the caller holds its lock."""
    from vfmaudit.attack.engines import run_shards
    from vfmaudit.attack.store import AttackStore, fingerprint

    searcher = Searcher(config, progress)
    data, n = searcher.data, len(searcher.data.ids)
    store = AttackStore.open(out_dir, fingerprint(config, data.ids), config.resume)
    spans, shards = run_shards(config, SearchJob(searcher), store, n, "searching edits", progress)
    rows = [r for k in range(len(spans)) for r in store.rows(k)]
    finals = store.assemble(spans, [0.0])[0.0]
    figures = summary(rows, searcher.labelled)
    if figures["approved"] == 0:
        raise VfmauditError(f"the oracle {config.oracle} gives none of the {n} clean images its label, so there is "
                            "nothing to search from: pass an oracle that recognises these images (pretrained "
                            "weights, --oracle-pretrained)", param="oracle")
    figures.update({"classifier": searcher.clf_name, "classifier_params": searcher.clf_params,
                    "space": [{"family": f, "level": lv} for f, lv in searcher.space], "max_edits": config.max_edits,
                    "queries": config.queries, "seed": config.seed,
                    "reproduce": "vfmaudit perturbations --apply CHAIN_SPEC --seed SEED CLEAN.png: the chain applies "
                                 "to the image at the tested model's input size (clean/<index>.png with "
                                 "--save-images)"})
    result = SearchResult(config=config, model=searcher.encoder.describe(), oracle=searcher.oracle_info, data=data,
                          rows=rows, figures=figures, final_images=finals, out=str(out_dir) if out_dir else None,
                          shards=shards)
    if out_dir:
        _write(result, out_dir, on_complete)
    return result


def _write(result: SearchResult, out: Path, on_complete) -> None:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    if result.config.save_images:
        for folder, images in (("clean", result.data.images), ("edited", result.final_images)):
            (out / folder).mkdir(exist_ok=True)
            for i, img in enumerate(images):
                Image.fromarray(img).save(out / folder / f"{i:05d}.png")
        result.files["images"] = {"clean": "clean/", "edited": "edited/ (the last accepted edit)",
                                  "names": "<index>.png, the index of per_image order"}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PER_IMAGE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for r in result.rows:
        writer.writerow({**r, "steps": len(r["chain"]), "chain": r["chain_spec"]})
    write_text_atomic(out / "per_image.csv", buf.getvalue())
    result.files.update({"json": "attack.json", "csv": "per_image.csv"})
    if on_complete:
        result.files.update(on_complete(result, out))
    write_json(result.to_json(), out / "attack.json")


__all__ = ["run_search", "SearchResult"]
