"""Acceptance policies: a TOML file naming the candidate, the measurements and the checks.

Every problem (unknown key, wrong type, unknown metric, impossible threshold, missing file) is one
line naming the policy file, the key path and, where it helps, the closest valid name.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

from vfmaudit.data.source import SourceOptions, kind_of, open_source
from vfmaudit.data.storage import has_pattern, is_url, without_userinfo
from vfmaudit.errors import VfmauditError
from vfmaudit.gate.measurements import MetricInfo, get_measurement, measurements

THRESHOLDS = ("min", "max", "max_drop", "max_relative_drop")
REGRESSION = ("max_drop", "max_relative_drop")
_TOP_LEVEL = {"model": str, "pretrained": str, "seed": int, "reference": str, "reference_pretrained": str,
              "images": (list, str), "image_key": str, "label_key": str, "storage_options": dict, "device": str,
              "mlflow": dict, "check": list}
_MLFLOW_KEYS = {"tracking_uri": str, "experiment": str}  # the [mlflow] table: where gate runs are logged
_CHECK_KEYS = {"metric": str, "name": str, **{t: (int, float) for t in THRESHOLDS}}


@dataclass
class Check:
    metric: str
    measurement: str
    info: MetricInfo
    thresholds: dict[str, float]
    name: str = ""
    where: str = ""  # "check[2]": its place in the policy, for messages

    @property
    def is_regression(self) -> bool:
        return any(t in self.thresholds for t in REGRESSION)


@dataclass
class Policy:
    source: str  # the policy file, as given
    model: str
    pretrained: str | None = None
    seed: int = 0
    reference: str | None = None
    reference_pretrained: str | None = None
    images: list[str] = field(default_factory=list)  # empty: the built-in samples
    image_key: str | None = None  # where sharded images keep the image (a WebDataset extension, a Parquet column)
    label_key: str | None = None
    storage_options: dict = field(default_factory=dict)  # fsspec options of remote images (never reported)
    device: str = "cpu"
    options: dict[str, dict] = field(default_factory=dict)  # measurement -> options (defaults filled in)
    checks: list[Check] = field(default_factory=list)
    mlflow: dict = field(default_factory=dict)  # [mlflow]: tracking_uri, experiment (both optional)

    def source_options(self) -> SourceOptions:
        return SourceOptions(image_key=self.image_key, label_key=self.label_key,
                             storage_options=dict(self.storage_options))

    @property
    def needed(self) -> list[str]:
        """The measurements the checks need, in registry order: the others do not run."""
        wanted = {c.measurement for c in self.checks}
        return [m for m in measurements() if m in wanted]

    def to_json(self) -> dict:
        return {"source": self.source, "model": self.model, "pretrained": self.pretrained, "seed": self.seed,
                "reference": self.reference, "reference_pretrained": self.reference_pretrained,
                "images": self.images or "built-in samples (skimage.data)", "device": self.device,
                **({"mlflow": {k: (without_userinfo(v) if k == "tracking_uri" else v) for k, v in self.mlflow.items()}}
                   if self.mlflow else {}),
                "measurements": {m: self.options[m] for m in self.needed},
                "checks": [{"metric": c.metric, "name": c.name, **c.thresholds} for c in self.checks]}


def _closest(name: str, valid) -> str:
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else ""


def _type_name(t) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", bool: "true or false",
             type(None): "absent"}
    ts = t if isinstance(t, tuple) else (t,)
    if float in ts:  # an integer is a number too
        ts = tuple(x for x in ts if x is not int)
    return " or ".join(names.get(x, x.__name__) for x in ts if x is not type(None)) or "absent"


def _check_type(where: str, value, t) -> None:
    ts = t if isinstance(t, tuple) else (t,)
    ok = isinstance(value, ts) and not (isinstance(value, bool) and bool not in ts)
    if float in ts and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise VfmauditError(f"{where} must be {_type_name(t)}, got {type(value).__name__} {value!r}")


def _resolve_path(base: Path, value: str) -> str:
    """A relative file path in a policy is relative to the policy file's folder."""
    p = Path(value).expanduser()
    return value if p.is_absolute() or not (base / p).exists() else str(base / p)


def load_policy(path: str | Path, model: str | None = None, pretrained: str | None = None) -> Policy:
    """Read and validate a policy file; nothing is run or loaded.

    model / pretrained replace the policy's candidate (fine-tuning gates its own result).
    """
    try:
        import tomllib
    except ImportError:  # Python 3.10: the declared backport
        import tomli as tomllib

    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise VfmauditError(f"policy file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise VfmauditError(f"{src}: not valid TOML ({e})") from None
    sections = set(measurements())
    for key, value in data.items():
        if key in sections:
            continue
        if key not in _TOP_LEVEL:
            raise VfmauditError(f"{src}: unknown key '{key}'{_closest(key, [*_TOP_LEVEL, *sections])}")
        _check_type(f"{src}: {key}", value, _TOP_LEVEL[key])
    if model is not None:
        data = {**data, "model": model}
        data.pop("pretrained", None)
        if pretrained is not None:
            data["pretrained"] = pretrained
    if "model" not in data:
        raise VfmauditError(f"{src}: 'model' is missing: name the candidate (a model spec such as "
                            f"openclip:ViT-S-32, or an exported file such as model.onnx)")
    base = path.parent
    images = data.get("images", [])
    images = [images] if isinstance(images, str) else images
    for i, img in enumerate(images):
        _check_type(f"{src}: images[{i}]", img, str)
    policy = Policy(source=src, model=_resolve_path(base, data["model"]),
                    pretrained=_resolve_path(base, data["pretrained"]) if "pretrained" in data else None,
                    seed=data.get("seed", 0),
                    reference=_resolve_path(base, data["reference"]) if "reference" in data else None,
                    reference_pretrained=(_resolve_path(base, data["reference_pretrained"])
                                          if "reference_pretrained" in data else None),
                    images=[_resolve_path(base, i) for i in images], device=data.get("device", "cpu"),
                    image_key=data.get("image_key"), label_key=data.get("label_key"),
                    storage_options=data.get("storage_options", {}), mlflow=_mlflow_table(src, data.get("mlflow", {})))
    _check_files(policy)
    for name, m in measurements().items():
        given = data.get(name, {})
        if not isinstance(given, dict):
            raise VfmauditError(f"{src}: [{name}] must be a table of options, got {type(given).__name__}")
        if given and not m.available:
            raise VfmauditError(f"{src}: [{name}]: {m.unavailable_reason}")
        for key, value in given.items():
            if key not in m.options:
                raise VfmauditError(f"{src}: {name}.{key}: unknown option{_closest(key, m.options)} "
                                    f"(options: {', '.join(m.options) or 'none'})")
            _check_type(f"{src}: {name}.{key}", value, m.options[key].type)
        policy.options[name] = {**m.defaults(), **given}
        if given and m.validate is not None:
            _validate_values(policy, name, m, given)
    checks = data.get("check", [])
    if not checks:
        raise VfmauditError(f"{src}: no [[check]]: a policy needs at least one check (see the README's "
                            f"'Acceptance gates')")
    paths_of: dict[str, dict[str, MetricInfo]] = {}
    for i, raw in enumerate(checks):
        policy.checks.append(_parse_check(policy, f"check[{i + 1}]", raw, paths_of))
    return policy


def _validate_values(policy: Policy, name: str, m, given: dict) -> None:
    """The section's values as its command would check them: one line naming the file and the key."""
    try:
        m.validate(policy, policy.options[name])
    except VfmauditError as e:
        params = (e.param,) if isinstance(e.param, str) else tuple(e.param or ())
        key = next((p for p in params if p in given), None) or next((k for k in given if k in str(e)), None)
        where = f"{name}.{key}" if key else f"[{name}]"
        message = str(e)
        for p in params:  # the command's flag (--method) is the policy's key (method) here
            message = message.replace(f"--{p.replace('_', '-')}", p)
        raise VfmauditError(f"{policy.source}: {where}: {message}") from None


def _mlflow_table(src: str, table: dict) -> dict:
    for key, value in table.items():
        if key not in _MLFLOW_KEYS:
            raise VfmauditError(f"{src}: mlflow.{key}: unknown key{_closest(key, _MLFLOW_KEYS)} "
                                f"(the [mlflow] table has {', '.join(_MLFLOW_KEYS)})")
        _check_type(f"{src}: mlflow.{key}", value, _MLFLOW_KEYS[key])
        if not value.strip():
            raise VfmauditError(f"{src}: mlflow.{key} is empty: leave it out for the default")
    return dict(table)


def _check_files(policy: Policy) -> None:
    from vfmaudit.runtime import is_artefact_path

    for key in ("model", "reference"):
        value = getattr(policy, key)
        if value and is_artefact_path(value) and not Path(value).is_file():
            raise VfmauditError(f"{policy.source}: {key}: file not found: {value} (relative paths are read from "
                                f"the policy's folder)")
        if value and not is_artefact_path(value):
            from vfmaudit.models.spec import parse_spec

            try:
                parse_spec(value)
            except VfmauditError as e:
                raise VfmauditError(f"{policy.source}: {key}: {e}") from None
    for img in policy.images:
        if is_url(img) or has_pattern(img) or kind_of(img, policy.source_options())[0].sharded:
            try:  # listed and checked (the store reached, the columns found) before anything runs
                open_source([img], policy.source_options())
            except VfmauditError as e:
                raise VfmauditError(f"{policy.source}: images: {e}") from None
        elif not Path(img).exists():
            raise VfmauditError(f"{policy.source}: images: not found: {img}")


def _parse_check(policy: Policy, where: str, raw, paths_of: dict) -> Check:
    src = policy.source
    if not isinstance(raw, dict):
        raise VfmauditError(f"{src}: {where} must be a table ([[check]]), got {type(raw).__name__}")
    for key, value in raw.items():
        if key not in _CHECK_KEYS:
            raise VfmauditError(f"{src}: {where}.{key}: unknown key{_closest(key, _CHECK_KEYS)} "
                                f"(a check has metric, name, {', '.join(THRESHOLDS)})")
        _check_type(f"{src}: {where}.{key}", value, _CHECK_KEYS[key])
    if "metric" not in raw:
        raise VfmauditError(f"{src}: {where}: 'metric' is missing (a dotted path such as "
                            f"audit.jpeg.divergence_radius.p95)")
    metric = raw["metric"]
    head = metric.split(".", 1)[0]
    if head not in measurements():
        raise VfmauditError(f"{src}: {where}.metric: unknown measurement '{head}' in '{metric}'"
                            f"{_closest(head, measurements())} (measurements: {', '.join(measurements())})")
    m = get_measurement(head)
    if not m.available:
        raise VfmauditError(f"{src}: {where}.metric '{metric}': {m.unavailable_reason}")
    if head not in paths_of:
        paths_of[head] = m.metric_paths(policy, policy.options[head])
    paths = paths_of[head]
    if metric not in paths:
        raise VfmauditError(f"{src}: {where}.metric: unknown metric '{metric}'{_closest(metric, paths)} "
                            f"(the README's 'Acceptance gates' lists them)")
    thresholds = {k: float(raw[k]) for k in THRESHOLDS if k in raw}
    if not thresholds:
        raise VfmauditError(f"{src}: {where}: no threshold: give min, max, max_drop or max_relative_drop")
    info = paths[metric]
    lo, hi = info.range
    if any(not math.isfinite(v) for v in thresholds.values()):
        raise VfmauditError(f"{src}: {where}: thresholds must be finite numbers")
    if "min" in thresholds and "max" in thresholds and thresholds["min"] > thresholds["max"]:
        raise VfmauditError(f"{src}: {where}: min {thresholds['min']:g} > max {thresholds['max']:g}: "
                            f"no value can pass")
    if "min" in thresholds and thresholds["min"] > hi:
        raise VfmauditError(f"{src}: {where}: min {thresholds['min']:g} is above the largest possible "
                            f"{metric} ({hi:g}): no value can pass")
    if "max" in thresholds and thresholds["max"] < lo:
        raise VfmauditError(f"{src}: {where}: max {thresholds['max']:g} is below the smallest possible "
                            f"{metric} ({lo:g}): no value can pass")
    for k in REGRESSION:
        if k in thresholds and thresholds[k] < 0:
            raise VfmauditError(f"{src}: {where}: {k} must be >= 0 (how much worse than the baseline "
                                f"is allowed), got {thresholds[k]:g}")
    return Check(metric=metric, measurement=head, info=info, thresholds=thresholds, name=raw.get("name", ""),
                 where=where)
