"""What a gate can measure: one module per measurement, each a thin call of an existing API function.

Every module in this folder registers its measurement when imported (the built-in ones first, in
the order below, then any other by name): adding a measurement is adding a module here.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from vfmaudit.gate.measurements._registry import (Measurement, MetricInfo, Option, get_measurement, measurements,
                                                  register_measurement, unregister_measurement)

_BUILT_IN_ORDER = ("audit", "parity", "int8", "bench", "agreement", "downstream")
_found = sorted(m.name for m in _pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
for _module in [m for m in _BUILT_IN_ORDER if m in _found] + [m for m in _found if m not in _BUILT_IN_ORDER]:
    _importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Measurement", "MetricInfo", "Option", "measurements", "get_measurement", "register_measurement",
           "unregister_measurement"]
