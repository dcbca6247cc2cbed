"""What an audit is asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field

from vfmaudit.audit.tables import TABLE_FORMATS, require_parquet
from vfmaudit.data.decode import DEFAULT_MAX_PIXELS
from vfmaudit.data.source import SourceOptions, check_max_images, default_options
from vfmaudit.engines import engines, get_engine
from vfmaudit.errors import VfmauditError
from vfmaudit.metrics import metrics
from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.perturb.families.imagenet_c import options_fingerprint, resolve_options, set_options
from vfmaudit.perturb.plan import FamilyPlan, parse_perturbations, plan_json
from vfmaudit.runtime import Encoder, open_encoder

DEFAULT_OUT = "vfmaudit-out"


@dataclass
class AuditConfig:
    inputs: list[str] = field(default_factory=list)  # empty: the built-in sample photographs
    model: str = DEFAULT_MODEL
    pretrained: str | None = None
    backend: str = "auto"  # by --model: .onnx -> onnx, .engine -> tensorrt, else torch
    device: str = "cpu"
    perturbations: str = "everyday"  # a preset, "all" or "jpeg,brightness:0.5:1.5,..."
    levels: int = 5
    batch_size: int = 32
    seed: int = 0
    out: str = DEFAULT_OUT
    resume: bool = False
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int | None = None  # only the first this many readable images (None: all)
    reference_report: str | None = None  # an earlier audit: the ImageNet-C summary is also given relative to it
    protocol: str | None = None  # "imagenet-c": the released dataset's crop and JPEG 85 (perturb/families/imagenet_c)
    imagenet_c_pixels: str | None = None  # imagenet | scale (pixel-unit parameters x min(H, W) / 224); None: env
    frost_dir: str | None = None  # the original frost textures; None: $VFMAUDIT_FROST_DIR, else procedural
    image_key: str | None = None  # WebDataset: the image member's extension; Parquet/Arrow: the image column
    storage_options: dict | None = None  # fsspec options of remote sources (never reported); None: the default
    tables: str = "csv"  # csv | parquet | both: the per-image and per-level tables' formats
    # where it runs (not part of the fingerprint: results do not depend on it)
    engine: str = "local"  # local | ray
    ray_address: str | None = None  # None: start a local Ray instance; "auto" or ray://host:10001
    workers: int = 2  # encoder actors (ray)
    gpus_per_worker: float = 0.0
    shard_size: int = 256  # images per shard (ray): the unit of work, of resume and of retry

    def __post_init__(self) -> None:
        self.imagenet_c_pixels, self.frost_dir = resolve_options(self.imagenet_c_pixels, self.frost_dir)

    def plan(self) -> list[FamilyPlan]:
        if self.engine not in engines():
            get_engine(self.engine)  # the one-line error naming the engines
        if self.tables not in TABLE_FORMATS:
            raise VfmauditError(f"tables must be one of {', '.join(TABLE_FORMATS)}, got {self.tables!r}",
                                param="tables")
        if self.tables != "csv":
            require_parquet("tables " + self.tables)
        if self.workers < 1 or self.shard_size < 1 or self.gpus_per_worker < 0:
            raise VfmauditError("workers and shard_size must be >= 1, gpus_per_worker >= 0",
                                param=("workers", "shard_size", "gpus_per_worker"))
        check_max_images(self.max_images, self.engine)
        from vfmaudit.perturb.families.imagenet_c.protocol import check_protocol

        check_protocol(self.protocol)
        set_options(self.imagenet_c_pixels, self.frost_dir)  # here, so Ray actors (which plan too) get them
        if self.reference_report:  # unreadable: said before the work, not after it
            from vfmaudit.audit.imagenet_c import load_reference

            load_reference(self.reference_report)
        return parse_perturbations(self.perturbations, self.levels)

    def fingerprint(self) -> dict:
        """What must match for --resume to continue a run."""
        return {
            "inputs": sorted(self.inputs), "model": self.model, "pretrained": self.pretrained,
            "backend": self.backend, "seed": self.seed, "metrics": list(metrics()),
            "plan": plan_json(self.plan()), **({"protocol": self.protocol} if self.protocol else {}),
            **options_fingerprint(self.imagenet_c_pixels, self.frost_dir),
            **({"image_key": self.image_key} if self.image_key else {}),
            **({"max_images": self.max_images} if self.max_images is not None else {}),
        }

    def source_options(self) -> SourceOptions:
        """How the inputs are read: this config's options, else the process's (the CLI's flags, a gate policy's)."""
        default = default_options()
        storage = self.storage_options if self.storage_options is not None else default.storage_options
        return SourceOptions(image_key=self.image_key or default.image_key, label_key=default.label_key,
                             storage_options=dict(storage), max_pixels=self.max_pixels,
                             max_images=self.max_images if self.max_images is not None else default.max_images)

    def open_encoder(self) -> Encoder:
        return open_encoder(self.model, self.pretrained, self.backend, self.device, self.batch_size, self.seed)

