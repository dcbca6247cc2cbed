"""Family modules; each registers its families when imported. Registration order is catalogue order.

The built-in modules are imported in the order below (the catalogue order the reports and the
README use); every other module in this folder is then imported in name order, so adding a
family is adding a module here (docs/architecture.md).
"""

import importlib
import pkgutil

_BUILT_IN_ORDER = ("jpeg", "color", "filters", "noise", "distortion")

_found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
for _module in [m for m in _BUILT_IN_ORDER if m in _found] + [m for m in _found if m not in _BUILT_IN_ORDER]:
    importlib.import_module(f"{__name__}.{_module}")
