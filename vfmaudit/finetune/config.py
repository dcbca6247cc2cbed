"""What a robust fine-tuning run is asked to do."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.perturb.plan import FamilyPlan, parse_perturbations
from vfmaudit.data.source import check_max_images
from vfmaudit.errors import VfmauditError

DEFAULT_OUT = "vfmaudit-finetune"


@dataclass
class FinetuneConfig:
    inputs: list[str] = field(default_factory=list)  # empty: crops of the built-in sample photographs
    model: str = DEFAULT_MODEL
    pretrained: str | None = None
    out: str = DEFAULT_OUT
    perturbations: str = "jpeg,gaussian_blur"  # the families trained for, with optional sub-domains
    lam: float = 1.0  # weight of the utility term cos(f(x), f'(x))
    epochs: int | None = None
    steps: int | None = None  # overrides epochs
    batch_size: int = 16
    lr: float = 1e-5
    weight_decay: float = 0.05
    warmup: float = 0.1  # share of the steps spent warming the learning rate up
    clip_grad: float = 1.0
    train: str = "last:2"  # last:N blocks | norm | all
    held_out: float = 0.25
    seed: int = 0
    device: str = "cpu"
    resume: bool = False
    overwrite: bool = False
    eval_perturbations: str = "everyday"  # families compared before/after (trained and not trained)
    eval_levels: int = 3
    crops_per_image: int = 8  # built-in default only: crops per sample photograph
    adversarial: str | None = None  # "linf:4" (1/255 units) or "l2:0.5": train against PGD with FARE's loss
    attack_steps: int = 10  # PGD steps per training batch (and for the before/after worst case)
    max_images: int | None = None  # only the first this many readable images (None: all)

    def adversarial_budget(self) -> tuple[str, float] | None:
        """(norm, eps) of adversarial, or None; checked."""
        if not self.adversarial:
            return None
        norm, sep, eps = str(self.adversarial).partition(":")
        try:
            value = float(eps)
        except ValueError:
            value = -1.0
        if not sep or norm not in ("linf", "l2") or not value > 0:
            raise VfmauditError(f"adversarial must be linf:EPS (EPS in 1/255) or l2:EPS (on [0, 1] pixels) with "
                                f"EPS > 0, e.g. linf:4, got '{self.adversarial}'", param="adversarial")
        return norm, value

    def plan(self) -> list[FamilyPlan]:
        return parse_perturbations(self.perturbations, 2)

    def validate(self) -> None:
        self.plan()
        parse_perturbations(self.eval_perturbations, self.eval_levels)
        trainable_spec(self.train)
        for name, value in (("batch_size", self.batch_size), ("eval_levels", self.eval_levels)):
            if value < 1:
                raise VfmauditError(f"{name} must be >= 1, got {value}", param=name)
        if self.steps is not None and self.steps < 1:
            raise VfmauditError(f"steps must be >= 1, got {self.steps}", param="steps")
        if self.epochs is not None and self.epochs < 1:
            raise VfmauditError(f"epochs must be >= 1, got {self.epochs}", param="epochs")
        check_max_images(self.max_images)
        if not 0 < self.held_out < 1:
            raise VfmauditError(f"held_out must be between 0 and 1, got {self.held_out}", param="held_out")
        if self.lr <= 0 or self.lam < 0:
            raise VfmauditError("lr must be > 0 and lam >= 0", param=("lr", "lam"))
        self.adversarial_budget()
        if self.attack_steps < 1:
            raise VfmauditError(f"attack_steps must be >= 1, got {self.attack_steps}", param="attack_steps")
        if not self.clip_grad > 0:  # clip_grad_norm_ to 0 would zero every step: no training at all
            raise VfmauditError(f"clip_grad must be > 0, got {self.clip_grad}", param="clip_grad")

    def fingerprint(self) -> dict:
        """What a checkpoint must match for resume (everything that changes the training itself)."""
        keep = ("inputs", "model", "pretrained", "perturbations", "lam", "epochs", "steps", "batch_size", "lr",
                "weight_decay", "warmup", "clip_grad", "train", "held_out", "seed", "crops_per_image", "adversarial",
                "attack_steps", "max_images")
        d = asdict(self)
        return {k: d[k] for k in keep}


def trainable_spec(text: str) -> tuple[str, int]:
    """'last:N' -> ("last", N); 'norm' / 'all' -> (name, 0)."""
    t = (text or "").strip().lower()
    if t in ("all", "norm"):
        return t, 0
    if t.startswith("last:"):
        try:
            n = int(t.split(":", 1)[1])
        except ValueError:
            n = 0
        if n >= 1:
            return "last", n
    raise VfmauditError(f"train must be last:N (the last N blocks), norm or all, got '{text}'", param="train")
