"""Named sets of (family, level or sub-domain) that other steps read: parity, calibration, profile.

One source of truth: the parity check, the calibration set and the INT8 robustness profile
take their edits from here, and `--perturbations NAME` accepts a preset name too.
"""

from __future__ import annotations

from dataclasses import dataclass

from vfmaudit.catalogue import Catalogue
from vfmaudit.perturb.families.imagenet_c.catalogue import EXTRA, FIFTEEN, SEVERITIES, family_name
from vfmaudit.perturb.registry import get


@dataclass(frozen=True, kw_only=True)
class PresetEntry:
    family: str
    level: float | None = None  # one fixed level
    lo: float | None = None  # or a sub-domain [lo, hi]; neither: the family's whole domain
    hi: float | None = None
    levels: tuple[float, ...] | None = None  # or explicit levels (ImageNet-C's severities 1..5): --levels does not apply

    def bounds(self) -> tuple[float | None, float | None]:
        if self.level is not None:
            return self.level, self.level
        return self.lo, self.hi


@dataclass(frozen=True, kw_only=True)
class Preset:
    name: str
    description: str
    entries: tuple[PresetEntry, ...]

    @property
    def families(self) -> list[str]:
        return [e.family for e in self.entries]


_PRESETS: Catalogue[Preset] = Catalogue("preset")


def register_preset(preset: Preset) -> Preset:
    return _PRESETS.add(preset.name, preset)


def unregister_preset(name: str) -> None:
    _PRESETS.remove(name)


def presets() -> dict[str, Preset]:
    return _PRESETS.all()


def get_preset(name: str) -> Preset:
    preset = _PRESETS.get(name)
    for e in preset.entries:  # a preset naming a family that is not registered fails here, by name
        fam = get(e.family)
        for v in (e.level, e.lo, e.hi, *(e.levels or ())):
            if v is not None:
                fam.check_level(v)
    return preset


E = PresetEntry
# the everyday edits: what `vfmaudit audit` measures unless told otherwise
EVERYDAY = ("jpeg", "brightness", "contrast", "saturation", "hue", "sharpness", "gaussian_blur", "gaussian_noise",
            "resize")
register_preset(Preset(
    name="everyday", description="the everyday edits (JPEG, colour, blur, noise, resize) over their whole domains: "
                                 "the default",
    entries=tuple(E(family=f) for f in EVERYDAY)))
register_preset(Preset(
    name="imagenet-c", description="the 15 ImageNet-C corruptions at severities 1..5 (Hendrycks & Dietterich 2019)",
    entries=tuple(E(family=family_name(c), levels=SEVERITIES) for c in FIFTEEN)))
register_preset(Preset(
    name="imagenet-c-extra", description="ImageNet-C's 4 extra (validation) corruptions at severities 1..5",
    entries=tuple(E(family=family_name(c), levels=SEVERITIES) for c in EXTRA)))
register_preset(Preset(
    name="parity", description="one strong everyday edit per kind: parity must hold off the clean manifold too",
    entries=(E(family="jpeg", level=30.0), E(family="gaussian_blur", level=2.0), E(family="brightness", level=1.5),
             E(family="gaussian_noise", level=0.1), E(family="imagenet_c_glass_blur", level=2.0))))
register_preset(Preset(
    name="calibration", description="everyday edits at mild-to-strong levels: the ranges production images fall in",
    entries=(E(family="jpeg", lo=30.0, hi=90.0), E(family="brightness", lo=0.6, hi=1.4),
             E(family="contrast", lo=0.6, hi=1.4), E(family="saturation", lo=0.5, hi=1.5),
             E(family="gaussian_blur", lo=0.5, hi=2.0), E(family="gaussian_noise", lo=0.02, hi=0.1),
             E(family="resize", lo=0.4, hi=0.8))))
register_preset(Preset(
    name="profile", description="families of the INT8 robustness profile (fp32 and INT8 side by side)",
    entries=tuple(E(family=f) for f in ("jpeg", "brightness", "contrast", "gaussian_blur", "gaussian_noise",
                                        "resize"))))
del E
