"""vfmaudit: audit and deploy vision encoders.

Robustness of embeddings under everyday image edits (exact minimum-enclosing-ball radius),
export parity, and acceptance checks for CI.
"""

__version__ = "0.1.0"

from vfmaudit.errors import VfmauditError  # noqa: E402

__all__ = ["__version__", "VfmauditError"]
