"""ImageNet-C (Hendrycks & Dietterich, ICLR 2019): its 15 corruptions and 4 extra ones, faithful to
make_imagenet_c.py, on a continuous severity in [0, 5], at any image size.

    >>> import numpy as np
    >>> from vfmaudit.perturb.families.imagenet_c import corrupt
    >>> corrupt(np.zeros((17, 31, 3), np.uint8), "fog", 3).shape
    (17, 31, 3)
"""

from __future__ import annotations

import numpy as np

from vfmaudit.perturb.families.imagenet_c.catalogue import (BY_NAME, EXTRA, FIFTEEN, PIXEL_MODES, PIXELS_ENV, PREFIX,
                                                            SEVERITIES, SPECS, corrupt_batch, family_name, pixel_mode,
                                                            set_pixel_mode)
from vfmaudit.perturb.families.imagenet_c.frost import frost_source, set_frost_dir
from vfmaudit.perturb.families.imagenet_c.protocol import PROTOCOLS

__all__ = ["corrupt", "resolve_options", "set_options", "options", "options_fingerprint", "pixel_mode", "PROTOCOLS", "FIFTEEN", "EXTRA", "SPECS", "PREFIX", "SEVERITIES", "family_name", "set_frost_dir", "frost_source",
           "PIXEL_MODES"]


def corrupt(image: np.ndarray, corruption: str, severity: float, seed: int = 0, pixels: str = "imagenet",
            protocol: str | None = None) -> np.ndarray:
    """One ImageNet-C corruption of a uint8 RGB image (H, W, 3) at a severity in [0, 5].

    pixels="imagenet" keeps the pixel-unit parameters of the 224-px original at every size (what
    published numbers mean); "scale" multiplies them by min(H, W) / 224. protocol="imagenet-c" is
    the released dataset's: Resize(256), CenterCrop(224), the corruption, JPEG quality 85 (the
    result is 224 x 224).
    """
    if protocol:
        from vfmaudit.perturb.families.imagenet_c.protocol import as_released, check_protocol, imagenet_c_crop

        check_protocol(protocol)
        return as_released(corrupt(imagenet_c_crop(image), corruption, severity, seed, pixels))
    from vfmaudit.errors import VfmauditError
    from vfmaudit.perturb import apply, get
    from vfmaudit.perturb._batch import as_batch, image_seeds

    name = corruption[len(PREFIX):] if corruption.startswith(PREFIX) else corruption
    if name not in BY_NAME:
        raise VfmauditError(f"unknown ImageNet-C corruption '{corruption}'; choose from {', '.join(BY_NAME)}")
    if pixels not in PIXEL_MODES:
        raise VfmauditError(f"pixels must be one of {', '.join(PIXEL_MODES)}, got '{pixels}'")
    if pixels == pixel_mode():
        return apply(image, family_name(name), severity, seed)
    # the other mode than the process's: the family's own path, with the mode passed down
    fam = get(family_name(name))
    severity = fam.check_level(severity)
    batch, single = as_batch(image)
    if fam.is_identity(severity):
        out = batch.copy()
    else:
        out = corrupt_batch(BY_NAME[name], batch, severity, image_seeds(batch, seed, fam.name, severity), pixels)
    return out[0] if single else out


def resolve_options(pixels: str | None = None, frost_dir: str | None = None) -> tuple[str, str | None]:
    """A run's ImageNet-C options with the environment's defaults filled in (VFMAUDIT_IMAGENET_C_PIXELS, else
    imagenet; VFMAUDIT_FROST_DIR, else procedural frost), so a config carries them explicitly to Ray actors
    (whose environment may differ) and into its resume fingerprint. The pixel mode is checked here."""
    import os

    from vfmaudit.errors import VfmauditError
    from vfmaudit.perturb.families.imagenet_c.frost import ENV as FROST_ENV

    pixels = pixels or os.environ.get(PIXELS_ENV) or "imagenet"
    if pixels not in PIXEL_MODES:
        raise VfmauditError(f"unknown ImageNet-C pixel mode '{pixels}'; choose from {', '.join(PIXEL_MODES)}",
                            param="imagenet_c_pixels")
    return pixels, (frost_dir or os.environ.get(FROST_ENV) or None)


def set_options(pixels: str | None = None, frost_dir: str | None = None) -> None:
    """This process's ImageNet-C options for a run: the pixel mode and the folder of the original frost
    textures (checked now); None: the environment's (see resolve_options). Nothing is written to the
    environment, so one run's options do not leak into the next run in the same process."""
    pixels, frost_dir = resolve_options(pixels, frost_dir)
    set_pixel_mode(pixels)
    set_frost_dir(frost_dir)  # sizes checked here, before any work


def options_fingerprint(pixels: str, frost_dir: str | None) -> dict:
    """The options where they change results, for resume fingerprints: {} at the defaults."""
    return {**({"imagenet_c_pixels": pixels} if pixels != "imagenet" else {}),
            **({"frost_dir": frost_dir} if frost_dir else {})}


def options() -> dict:
    """What report.json records of them."""
    return {"pixels": pixel_mode(), "frost": frost_source()}
