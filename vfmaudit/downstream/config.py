"""What a downstream evaluation is asked to do."""

from __future__ import annotations

from dataclasses import dataclass

from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.perturb.families.imagenet_c import options_fingerprint, resolve_options, set_options
from vfmaudit.perturb.plan import FamilyPlan, parse_perturbations
from vfmaudit.errors import VfmauditError

TASKS = ("linear-probe", "knn", "retrieval", "zero-shot")
DEFAULT_OUT = "vfmaudit-downstream"
DEFAULT_PROMPTS = "a photo of a {}.|a picture of a {}.|an image of a {}."


@dataclass
class DownstreamConfig:
    dataset: str = "builtin:textures"  # a folder (ImageFolder), a CSV of path,label, or builtin:NAME
    # or the training and test images as two class-per-folder trees (then dataset is not read)
    train: str | None = None
    test: str | None = None
    model: str = DEFAULT_MODEL
    pretrained: str | None = None
    backend: str = "auto"
    device: str = "cpu"
    tasks: str = "auto"  # "auto": linear-probe, knn, retrieval, and zero-shot for OpenCLIP models
    perturbations: str = "everyday"
    levels: int = 3
    batch_size: int = 32
    seed: int = 0
    test_fraction: float = 0.3
    max_per_class: int | None = None
    prompts: str = DEFAULT_PROMPTS  # zero-shot templates, "|"-separated, "{}" is the class name
    baseline_report: str | None = None  # an earlier run: ImageNet-C CE and mCE normalised by its errors
    imagenet_c_pixels: str | None = None  # as audit's: imagenet | scale; None: $VFMAUDIT_IMAGENET_C_PIXELS
    frost_dir: str | None = None  # as audit's: the original frost textures; None: $VFMAUDIT_FROST_DIR
    # out-of-distribution sets: "NAME=SPEC" or SPEC (a folder or file list of images of no training
    # class, a CSV, builtin:NAME); NAME defaults to the folder's or the built-in set's name
    ood: tuple[str, ...] = ()
    # shift sets: "NAME=SPEC" or SPEC, labelled (class folders, a CSV, builtin:NAME) with the training
    # classes' names or class_map's (folder name -> class name: JSON, or a CSV/TSV of two columns)
    shift: tuple[str, ...] = ()
    class_map: str | None = None
    out: str = DEFAULT_OUT
    resume: bool = False
    overwrite: bool = False
    # where the variants are encoded (not part of the fingerprint: results do not depend on it)
    engine: str = "local"  # local | ray
    ray_address: str | None = None
    workers: int = 2
    gpus_per_worker: float = 0.0

    def __post_init__(self) -> None:
        self.imagenet_c_pixels, self.frost_dir = resolve_options(self.imagenet_c_pixels, self.frost_dir)

    def plan(self) -> list[FamilyPlan]:
        set_options(self.imagenet_c_pixels, self.frost_dir)
        if self.baseline_report:  # unreadable: said before the work, not after it
            from vfmaudit.downstream.imagenet_c import load_baseline

            load_baseline(self.baseline_report)
        return parse_perturbations(self.perturbations, self.levels)

    def task_list(self) -> list[str]:
        if self.tasks.strip().lower() == "auto":
            return [t for t in TASKS if t != "zero-shot" or is_openclip(self.model)]
        tasks = [t.strip() for t in self.tasks.split(",") if t.strip()]
        for t in tasks:
            if t not in TASKS:
                raise VfmauditError(f"unknown task '{t}'; choose from: {', '.join(TASKS)} (or auto)", param="tasks")
        if not tasks:
            raise VfmauditError("tasks is empty; pass auto or a comma list such as linear-probe,knn", param="tasks")
        if not 0 < self.test_fraction < 1:
            raise VfmauditError(f"test_fraction must be between 0 and 1, got {self.test_fraction}",
                                param="test_fraction")
        return tasks

    def templates(self) -> list[str]:
        templates = [t.strip() for t in self.prompts.split("|") if t.strip()]
        if not templates or any("{}" not in t for t in templates):
            raise VfmauditError("prompts must be '|'-separated templates that each hold {} for the class name, "
                                "e.g. 'a photo of a {}.'", param="prompts")
        return templates

    def load_data(self):
        """The labelled set: --train and --test folders (a given split), or dataset."""
        from vfmaudit.data.datasets import cap_per_class, given_split, load_dataset

        if bool(self.train) != bool(self.test):
            raise VfmauditError("pass both train and test (two class-per-folder trees), or neither",
                                param=("train", "test"))
        if self.train:
            return cap_per_class(given_split(self.train, self.test), self.max_per_class)
        return load_dataset(self.dataset, self.max_per_class)

    def fingerprint(self) -> dict:
        """What must match for resume to reuse computed embeddings."""
        return {"dataset": self.dataset if not self.train else {"train": self.train, "test": self.test}, "model": self.model, "pretrained": self.pretrained, "backend": self.backend,
                "seed": self.seed, "test_fraction": self.test_fraction, "max_per_class": self.max_per_class,
                "plan": [{"family": p.name, "levels": list(p.levels)} for p in self.plan()],
                **({"ood": dict(self.ood_sets())} if self.ood else {}),
                **({"shift": dict(self.shift_sets()), "class_map": self.class_map} if self.shift else {}),
                **options_fingerprint(self.imagenet_c_pixels, self.frost_dir)}

    def ood_sets(self) -> list[tuple[str, str]]:
        """(name, spec) per OOD set; names are [A-Za-z0-9_] (gate paths, file names) and distinct."""
        return named_sets(self.ood, "ood")

    def shift_sets(self) -> list[tuple[str, str]]:
        """(name, spec) per shift set, named as the OOD sets are."""
        return named_sets(self.shift, "shift")


def named_sets(items, param: str) -> list[tuple[str, str]]:
    """NAME=SPEC or SPEC (named after the folder, file or built-in set) -> distinct [A-Za-z0-9_] names."""
    import re
    from pathlib import Path

    sets: list[tuple[str, str]] = []
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep:
            spec = item
            name = spec.split(":", 1)[1] if spec.startswith("builtin:") else Path(spec.rstrip("/")).stem
        name = re.sub(r"[^A-Za-z0-9_]", "_", name.strip())
        if not name or not spec.strip():
            raise VfmauditError(f"{param} {item!r}: pass NAME=FOLDER or FOLDER", param=param)
        if name in dict(sets):
            raise VfmauditError(f"{param}: two sets are named {name}; name them NAME=FOLDER", param=param)
        sets.append((name, spec.strip()))
    return sets


def is_openclip(model: str) -> bool:
    """True for an OpenCLIP spec, or an artefact exported from one (read from its metadata)."""
    if model.startswith("openclip:"):
        return True
    from vfmaudit.runtime import artefact_info, is_artefact_path

    if not is_artefact_path(model):
        return False
    try:
        info = artefact_info(model)
    except VfmauditError:
        return False
    return info is not None and info.spec.startswith("openclip:")


def text_source(model: str, pretrained: str | None, seed: int) -> tuple[str, str | None, int]:
    """The OpenCLIP spec, weights and seed a zero-shot text tower is built from (artefacts: their metadata)."""
    from vfmaudit.runtime import artefact_info, is_artefact_path

    info = artefact_info(model) if is_artefact_path(model) else None
    if info is not None:
        ref = info.reference_args()
        return ref["model"], ref["pretrained"], ref["seed"]
    return model, pretrained, seed
