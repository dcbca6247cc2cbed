"""The 19 ImageNet-C corruptions: one table each (make_imagenet_c.py's parameters at severities
1..5, an identity row at 0), registered as perturbation families named imagenet_c_<name>.

Sources: hendrycks/robustness ImageNet-C/create_c/make_imagenet_c.py (the tables and the
algorithms), ../shared/imagenet_c_params.md in the repository history of this project.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from vfmaudit.perturb._batch import map_into
from vfmaudit.perturb.families.imagenet_c import blur, digital, noise, weather
from vfmaudit.perturb.families.imagenet_c.severity import RECIPROCAL, ROUND, Param, SeverityTable, table
from vfmaudit.perturb.registry import Family, register

PREFIX = "imagenet_c_"
Corruption = Callable[[np.ndarray, dict, int], np.ndarray]


@dataclass(frozen=True)
class Spec:
    name: str  # the original's name
    category: str  # noise, blur, weather, digital; extra for the four validation corruptions
    fn: Corruption
    table: SeverityTable
    stochastic: bool
    description: str
    interpolation: str  # how severities between the integers are made (the README catalogue prints it)

    @property
    def writes_into(self) -> bool:
        """Whether fn takes out= (the batch's image to write into): no result array copied into the batch."""
        return _takes_out(self.fn)


@lru_cache(maxsize=None)
def _takes_out(fn: Corruption) -> bool:
    return "out" in inspect.signature(fn).parameters


P = Param
SPECS: tuple[Spec, ...] = (
    Spec("gaussian_noise", "noise", noise.gaussian_noise, table(
        P("c", 0.0, (.08, .12, .18, .26, .38), meaning="std of N(0, c) added on [0, 1]")), True,
        "additive Gaussian noise", "c linear"),
    Spec("shot_noise", "noise", noise.shot_noise, table(
        P("c", math.inf, (60, 25, 12, 5, 3), RECIPROCAL, meaning="Poisson rate: poisson(x c) / c")), True,
        "Poisson (photon) noise", "linear in 1/c (the noise variance); 1/c = 0 at severity 0"),
    Spec("impulse_noise", "noise", noise.impulse_noise, table(
        P("c", 0.0, (.03, .06, .09, .17, .27), meaning="fraction of channel values set to 0 or 255")), True,
        "salt-and-pepper noise", "c linear"),
    Spec("defocus_blur", "blur", blur.defocus_blur, table(
        P("radius", 0.0, (3, 4, 6, 8, 10), pixels=True, meaning="disk radius (px)"),
        P("alias_blur", 0.0, (0.1, 0.5, 0.5, 0.5, 0.5), pixels=True, meaning="anti-alias Gaussian sigma (px)")),
        False, "aliased disk kernel", "both linear; above radius 8 the grid is -ceil(r)..ceil(r)"),
    Spec("glass_blur", "blur", blur.glass_blur, table(
        P("sigma", 0.0, (0.7, 0.9, 1, 1.1, 1.5), pixels=True, meaning="Gaussian sigma (px)"),
        P("max_delta", 0, (1, 2, 2, 3, 4), ROUND, pixels=True, meaning="largest pixel swap offset (px)"),
        P("iterations", 0, (2, 1, 3, 2, 2), ROUND, meaning="shuffle passes")), True,
        "blur, local pixel shuffle, blur", "sigma linear; max_delta and iterations linear, rounded half up"),
    Spec("motion_blur", "blur", blur.motion_blur, table(
        P("radius", 0, (10, 15, 15, 15, 20), pixels=True, meaning="ImageMagick radius (px): 2r+1 taps"),
        P("sigma", 0.0, (3, 5, 8, 12, 15), pixels=True, meaning="ImageMagick sigma (px)")), True,
        "ImageMagick MotionBlur at a random angle in [-45, 45] degrees",
        "both linear (the width is 2 ceil(radius) + 1 taps)"),
    Spec("zoom_blur", "blur", blur.zoom_blur, table(
        P("end", 1.0, (1.11, 1.16, 1.21, 1.26, 1.31), meaning="np.arange(1, end, step): the zoom factors"),
        P("step", 0.01, (.01, .01, .02, .02, .03), meaning="zoom factor step")), False,
        "average of centre zooms", "end and step linear; the factors are np.arange(1, end, step) at every severity"),
    Spec("snow", "weather", weather.snow, table(
        P("loc", 0.1, (0.1, 0.2, 0.55, 0.55, 0.55), meaning="snow layer mean"),
        P("scale", 0.3, (0.3, 0.3, 0.3, 0.3, 0.3), meaning="snow layer std"),
        P("zoom", 3, (3, 2, 4, 4.5, 2.5), meaning="layer zoom"),
        P("threshold", 0.5, (0.5, 0.5, 0.9, 0.85, 0.85), meaning="flake threshold"),
        P("radius", 10, (10, 12, 12, 12, 12), pixels=True, meaning="flake motion blur radius (px)"),
        P("sigma", 4, (4, 4, 8, 8, 12), pixels=True, meaning="flake motion blur sigma (px)"),
        P("mix", 1.0, (0.8, 0.7, 0.7, 0.65, 0.55), meaning="weight of the image against its whitened copy"),
        P("amount", 0.0, (1, 1, 1, 1, 1), meaning="flake layer gain (vfmaudit's, 1 at every severity)")), True,
        "snow flakes (motion-blurred noise) over a whitened image",
        "all linear; below severity 1 the flakes fade in (amount) and mix rises to 1"),
    Spec("frost", "weather", weather.frost, table(
        P("image", 1.0, (1, 0.8, 0.7, 0.65, 0.6), meaning="image weight"),
        P("frost", 0.0, (0.4, 0.6, 0.7, 0.7, 0.75), meaning="frost texture weight")), True,
        "a frost texture added (procedural unless VFMAUDIT_FROST_DIR names the original files)", "both linear"),
    Spec("fog", "weather", weather.fog, table(
        P("strength", 0.0, (1.5, 2, 2.5, 2.5, 3), meaning="fog weight"),
        P("wibbledecay", 2.0, (2, 2, 1.7, 1.5, 1.4), meaning="plasma fractal roughness decay")), True,
        "plasma fractal fog", "both linear"),
    Spec("brightness", "weather", digital.brightness, table(
        P("c", 0.0, (.1, .2, .3, .4, .5), meaning="added to HSV value, clipped")), False,
        "HSV value raised", "c linear"),
    Spec("contrast", "digital", digital.contrast, table(
        P("c", 1.0, (.4, .3, .2, .1, .05), meaning="(x - mean) c + mean, per-channel spatial mean")), False,
        "contrast towards the channel means", "c linear"),
    Spec("elastic_transform", "digital", digital.elastic_transform, table(
        P("alpha", 0.0, (244 * 2, 244 * 2, 244 * 0.05, 244 * 0.07, 244 * 0.12), pixels=True,
          meaning="displacement gain (px)"),
        P("sigma", 244 * 0.7, (244 * 0.7, 244 * 0.08, 244 * 0.01, 244 * 0.01, 244 * 0.01), pixels=True,
          meaning="displacement smoothing sigma (px)"),
        P("affine", 0.0, (244 * 0.1, 244 * 0.2, 244 * 0.02, 244 * 0.02, 244 * 0.02), pixels=True,
          meaning="affine point jitter (px)")), True,
        "random affine, then a smooth random displacement field (with the original's affine step)", "all linear"),
    Spec("pixelate", "digital", digital.pixelate, table(
        P("c", 1.0, (.6, .5, .4, .3, .25), meaning="down-scale factor (BOX down, BOX up)")), False,
        "pixelation", "c linear"),
    Spec("jpeg_compression", "digital", digital.jpeg_compression, table(
        P("quality", 100, (25, 18, 15, 10, 7), ROUND, meaning="JPEG quality (libjpeg, 4:2:0)")), False,
        "JPEG re-encoding", "quality linear, rounded half up"),
    Spec("speckle_noise", "extra", noise.speckle_noise, table(
        P("c", 0.0, (.15, .2, .35, .45, .6), meaning="std of the multiplicative noise: x + x N(0, c)")), True,
        "multiplicative Gaussian noise", "c linear"),
    Spec("gaussian_blur", "extra", blur.gaussian_blur, table(
        P("sigma", 0.0, (1, 2, 3, 4, 6), pixels=True, meaning="Gaussian sigma (px)")), False,
        "Gaussian blur (skimage: mode nearest, truncate 4)", "sigma linear"),
    Spec("spatter", "extra", weather.spatter, table(
        P("loc", 0.65, (0.65, 0.65, 0.65, 0.65, 0.67), meaning="liquid layer mean"),
        P("scale", 0.3, (0.3, 0.3, 0.3, 0.3, 0.4), meaning="liquid layer std"),
        P("sigma", 4, (4, 3, 2, 1, 1), pixels=True, meaning="liquid layer blur (px)"),
        P("threshold", 0.69, (0.69, 0.68, 0.68, 0.65, 0.65), meaning="drop threshold"),
        P("intensity", 0.6, (0.6, 0.6, 0.5, 1.5, 1.5), meaning="water: tint intensity; mud: mask blur sigma"),
        P("mud", 0, (0, 0, 0, 1, 1), ROUND, meaning="0 water drops, 1 mud"),
        P("amount", 0.0, (1, 1, 1, 1, 1), meaning="layer gain (vfmaudit's, 1 at every severity)")), True,
        "water drops (severities 1-3) or mud (4-5)",
        "all linear; water turns to mud at severity 3.5; below 1 the drops fade in (amount)"),
    Spec("saturate", "extra", digital.saturate, table(
        P("gain", 1.0, (0.3, 0.1, 2, 5, 20), meaning="HSV saturation gain"),
        P("offset", 0.0, (0, 0, 0, 0.1, 0.2), meaning="added to the saturation, clipped")), False,
        "HSV saturation scaled", "both linear"),
)
del P

FIFTEEN = tuple(s.name for s in SPECS if s.category != "extra")
SEVERITIES = (1.0, 2.0, 3.0, 4.0, 5.0)  # the benchmark's: the presets' levels, what the summaries call complete
EXTRA = tuple(s.name for s in SPECS if s.category == "extra")
BY_NAME = {s.name: s for s in SPECS}


def family_name(corruption: str) -> str:
    return PREFIX + corruption


PIXELS_ENV = "VFMAUDIT_IMAGENET_C_PIXELS"
PIXEL_MODES = ("imagenet", "scale")
_pixel_mode: str | None = None  # set_pixel_mode's, for this process (a run's option); None: the environment


def set_pixel_mode(mode: str | None) -> None:
    global _pixel_mode
    _pixel_mode = mode


def pixel_mode() -> str:
    """imagenet (the 224-px parameters at every size, the default) or scale (pixel lengths x min(H, W) / 224):
    the run's option (set_pixel_mode), else VFMAUDIT_IMAGENET_C_PIXELS, else imagenet."""
    mode = _pixel_mode or os.environ.get(PIXELS_ENV, "imagenet") or "imagenet"
    if mode not in PIXEL_MODES:
        from vfmaudit.errors import VfmauditError

        raise VfmauditError(f"{PIXELS_ENV}={mode}: choose from {', '.join(PIXEL_MODES)}")
    return mode


def pixel_scale(height: int, width: int, mode: str | None = None) -> float:
    return min(height, width) / 224.0 if (mode or pixel_mode()) == "scale" else 1.0


def corrupt_batch(spec: Spec, batch: np.ndarray, level: float, seeds: np.ndarray, mode: str | None = None) -> np.ndarray:
    """spec's corruption of a uint8 (N, H, W, 3) batch, one seed per image, in pixel mode `mode` (None: the process's)."""
    params = spec.table.at(level, pixel_scale(*batch.shape[1:3], mode))
    writes_into = spec.writes_into

    def into(img: np.ndarray, i: int, out: np.ndarray) -> None:
        result = spec.fn(img, params, int(seeds[i]), out=out) if writes_into else spec.fn(img, params, int(seeds[i]))
        if result is not out:  # a new array (an OpenCV call, an identity copy): into the batch
            out[...] = result

    return map_into(into, batch)


def _apply_batch(spec: Spec) -> Callable[[np.ndarray, float, np.ndarray], np.ndarray]:
    return lambda batch, level, seeds: corrupt_batch(spec, batch, level, seeds)


for _spec in SPECS:
    register(Family(name=family_name(_spec.name), lo=0.0, hi=5.0, identity=0.0, units="ImageNet-C severity",
                    apply_batch=_apply_batch(_spec), stochastic=_spec.stochastic,
                    description=f"ImageNet-C {_spec.name}: {_spec.description}"))


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def catalogue_markdown() -> str:
    """The README's ImageNet-C table, rendered from the tables above (a test compares the two)."""
    lines = ["| family | category | parameter: severity 1, 2, 3, 4, 5 (identity at 0) | scaled in `scale` mode | "
             "between severities |", "|---|---|---|---|---|"]
    for s in SPECS:
        cells = "<br>".join(f"{p.name}: {', '.join(_fmt(v) for v in p.values)} ({_fmt(p.identity)})"
                            for p in s.table.params)
        scaled = ", ".join(p.name for p in s.table.params if p.pixels) or "none"
        lines.append(f"| `{family_name(s.name)}` | {s.category} | {cells} | {scaled} | {s.interpolation} |")
    return "\n".join(lines) + "\n"
