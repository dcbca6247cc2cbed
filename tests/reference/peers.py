"""The peer implementations, loaded where they can be: imagecorruptions 1.1.2 (bethgelab).

Its PyPI release needs two stand-ins on current libraries: `pkg_resources` (gone from current
setuptools; it only resolves the frost texture paths) and scikit-image's `multichannel=True`
(now `channel_axis=-1`); its fog also asks for `np.float_` (removed in NumPy 2). It is not a test dependency: installing it pulls in `opencv-python`,
a second OpenCV build over our `opencv-python-headless`. Install it with `pip install --no-deps
imagecorruptions==1.1.2`, or point VFMAUDIT_IMAGECORRUPTIONS_PATH at its unpacked wheel.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path


def load_imagecorruptions():
    """(the imagecorruptions.corruptions module, "") or (None, why it cannot be loaded)."""
    extra = os.environ.get("VFMAUDIT_IMAGECORRUPTIONS_PATH")
    if extra and extra not in sys.path:
        sys.path.insert(0, extra)
    if importlib.util.find_spec("imagecorruptions") is None:
        return None, ("imagecorruptions is not importable: pip install --no-deps imagecorruptions==1.1.2, or set "
                      "VFMAUDIT_IMAGECORRUPTIONS_PATH to its unpacked wheel")
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            return str(Path(importlib.util.find_spec(package).origin).parent / name)

        shim.resource_filename = resource_filename
        sys.modules["pkg_resources"] = shim
    import numpy as np

    if "float_" not in np.__dict__:  # its fog's plasma map asks for np.float_, removed in NumPy 2
        np.float_ = np.float64
    module = importlib.import_module("imagecorruptions.corruptions")
    if not getattr(module, "_vfmaudit_shimmed", False):
        original = module.gaussian

        def gaussian(image, *args, multichannel=None, **kwargs):
            if multichannel:
                kwargs["channel_axis"] = -1
            return original(image, *args, **kwargs)

        module.gaussian = gaussian
        module._vfmaudit_shimmed = True
    return module, ""
