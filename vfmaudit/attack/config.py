"""`AttackConfig`: what `vfmaudit attack` runs, checked before any model is built."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfmaudit.attack.attacker import WHITE_BOX
from vfmaudit.attack.threat import NORMS
from vfmaudit.attack.whitebox import LOSSES
from vfmaudit.errors import VfmauditError, one_line

USUAL_LINF = 16  # /255: beyond it a budget gets a warning (the field's budgets are 1-16/255)

METHODS = ("pgd", "apgd", "square", "search")
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
    max_images: the first this many readable images (None: all); engine: local or ray, over shards of
    shard_size images (with out, each written as it finishes: resume continues a killed run)."""

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
    # where the shards run (vfmaudit.attack.engines) and resuming an interrupted run in out
    engine: str = "local"
    ray_address: str | None = None
    workers: int = 2
    gpus_per_worker: float = 0.0
    shard_size: int = 64
    resume: bool = False
    overwrite: bool = False  # replace an earlier attack's outputs in out (without it, or resume, it is refused)
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
        if self.norm == "linf" and max(self.eps) >= 255:  # every pixel may take any value: nothing is measured
            raise VfmauditError(f"eps {max(self.eps):g}/255 covers the whole pixel range (L-inf budgets are in grey "
                                f"levels, 1/255 each; the usual ones are 1 to 16)", param="eps")
        if self.max_images is not None and self.max_images < 1:
            raise VfmauditError(f"max_images must be >= 1, got {self.max_images}", param="max_images")
        for name in ("steps", "restarts", "batch_size", "queries", "levels", "workers", "shard_size"):
            if getattr(self, name) < 1:
                raise VfmauditError(f"{name} must be >= 1, got {getattr(self, name)}", param=name)
        self._check_engine()
        from vfmaudit.runtime import is_artefact_path

        for path in self.transfer_to:  # every file checked before the first step: an attack takes hours
            _check_transfer_target(path)
        if self.method in WHITE_BOX and is_artefact_path(self.model):
            raise VfmauditError(f"{self.method} is a white-box attack: it needs a torch model spec "
                                f"(openclip:ARCH or timm:NAME), not the artefact {self.model}; attack the model it "
                                "was exported from", param="model")

    def warnings(self) -> list[str]:
        """Budgets above the usual range: legal, but rarely what a user means."""
        if self.norm == "linf" and max(self.eps) > USUAL_LINF:
            return [f"eps {max(self.eps):g}/255 is above the usual L-inf budgets (1 to {USUAL_LINF}/255): the "
                    f"change is visible, and the worst case then says little about robustness"]
        return []

    def check_l2_budget(self, images: np.ndarray) -> None:
        """An L2 budget at least the images' diameter (every [0, 1] image within reach): bad input."""
        diameter = math.sqrt(images[0].size) if len(images) else math.inf
        if self.norm == "l2" and max(self.eps) >= diameter:
            raise VfmauditError(f"eps {max(self.eps):g} reaches every image: the diameter of the model's "
                                f"{images.shape[1]}x{images.shape[2]} inputs in [0, 1] pixels is {diameter:.0f} "
                                f"(the usual L2 budgets are 0.1 to 2)", param="eps")

    def _check_engine(self) -> None:
        from vfmaudit.engines import get_engine

        get_engine(self.engine)  # an unknown engine, or Ray not installed: one line
        if self.gpus_per_worker < 0:
            raise VfmauditError(f"gpus_per_worker must be >= 0, got {self.gpus_per_worker:g}", param="gpus_per_worker")
        if self.engine != "local" and not self.out:
            raise VfmauditError(f"engine {self.engine} hands its shards back through files in out: pass --out DIR too",
                                param=("engine", "out"))
        if self.resume and not self.out:
            raise VfmauditError("resume continues a run in out: pass --out DIR too", param=("resume", "out"))
        if self.resume and self.overwrite:
            raise VfmauditError("resume continues the run in out, overwrite discards it: pass one of them",
                                param=("resume", "overwrite"))

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


def _check_transfer_target(path: str) -> None:
    """An exported artefact the attack's images are replayed on: its kind, that it exists, and for ONNX that
    it parses (a TensorRT engine is opened where TensorRT is)."""
    from vfmaudit.runtime import is_artefact_path

    takes = "transfer_to takes exported artefacts (.onnx, .engine) that the attack's images are replayed on"
    if not is_artefact_path(path):
        raise VfmauditError(f"transfer_to {path}: not an exported artefact; {takes}", param="transfer_to")
    if not Path(path).is_file():
        raise VfmauditError(f"transfer_to {path} is not a file; {takes}", param="transfer_to")
    if Path(path).suffix.lower() == ".onnx":
        import onnx

        try:
            onnx.load(str(path), load_external_data=False)
        except Exception as e:  # noqa: BLE001 - protobuf's and onnx's errors alike: the file is no model
            raise VfmauditError(f"transfer_to {path} is not a readable ONNX model ({one_line(e, 160)}); {takes}",
                                param="transfer_to") from None
