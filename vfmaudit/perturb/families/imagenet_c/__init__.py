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
                                                            SEVERITIES, SPECS, corrupt_batch, family_name, pixel_mode)
from vfmaudit.perturb.families.imagenet_c.frost import frost_source, set_frost_dir
from vfmaudit.perturb.families.imagenet_c.protocol import PROTOCOLS

__all__ = ["corrupt", "set_options", "options", "pixel_mode", "PROTOCOLS", "FIFTEEN", "EXTRA", "SPECS", "PREFIX", "SEVERITIES", "family_name", "set_frost_dir", "frost_source",
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


def set_options(pixels: str | None = None, frost_dir: str | None = None) -> None:
    """The process's ImageNet-C options, as environment variables (inherited by Ray workers and
    subprocesses): the pixel mode and the folder of the original frost textures (checked now)."""
    import os

    from vfmaudit.errors import VfmauditError
    from vfmaudit.perturb.families.imagenet_c.frost import ENV as FROST_ENV

    if pixels is not None:
        if pixels not in PIXEL_MODES:
            raise VfmauditError(f"unknown ImageNet-C pixel mode '{pixels}'; choose from {', '.join(PIXEL_MODES)}",
                                param="imagenet_c_pixels")
        os.environ[PIXELS_ENV] = pixels
    if frost_dir:
        set_frost_dir(frost_dir)  # sizes checked here, before any work
        os.environ[FROST_ENV] = str(frost_dir)


def options() -> dict:
    """What report.json records of them."""
    return {"pixels": pixel_mode(), "frost": frost_source()}
