"""Errors the user can act on. The CLI turns each into one line on stderr and exit code 2.

Library messages name Python parameters (`batch_size`); an error about one parameter says which
in `param`, and the CLI rewrites that name as the command's flag (`--batch-size`).
"""


class VfmauditError(Exception):
    """Bad input or a run that cannot start; the message says what was wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str = "", param: str | tuple[str, ...] | None = None):
        super().__init__(message)
        self.param = param


class UnknownPerturbation(VfmauditError):
    pass


class LevelOutOfDomain(VfmauditError):
    pass


class ImageDecodeError(VfmauditError):
    """One input could not be read as an image (the audit skips it and lists it)."""


class ModelSpecError(VfmauditError):
    pass


class WeightsError(VfmauditError):
    pass


class ResumeMismatch(VfmauditError):
    pass


def one_line(e: BaseException, limit: int = 500) -> str:
    """'Type: first line of the message', at most `limit` characters: how an error of someone else's
    code (a plugin, a backend, a bug of ours) is shown where a traceback must not be."""
    text = str(e)
    first = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {first}"[:limit]


# The import names of what the base install leaves out -> the extra that installs them (pyproject.toml's
# optional-dependencies; tests/test_lean_install.py checks the two agree).
EXTRA_OF_MODULE = {"torch": "torch", "torchvision": "torch", "open_clip": "torch", "timm": "torch",
                   "onnxscript": "torch", "safetensors": "torch",
                   "pyarrow": "data", "fsspec": "data", "s3fs": "data", "gcsfs": "data", "aiohttp": "data"}


# how an extra is named to a user
EXTRA_NEEDS = {"torch": "torch, open_clip and timm", "data": "pyarrow, fsspec and s3fs"}


class MissingDependency(VfmauditError):
    """A command needs a package of an extra this install does not have."""


def missing_dependency(e: BaseException, command: str = "this command", hint: str = "") -> MissingDependency | None:
    """The one-line error for an import of a package that an extra installs (None for any other error);
    hint: what the command can do without it."""
    name = getattr(e, "name", None) if isinstance(e, ModuleNotFoundError) else None
    module = (name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    without = hint or "the base install audits, checks and benchmarks exported .onnx and TensorRT files"
    return MissingDependency(f"{command} needs {EXTRA_NEEDS.get(extra, module)} (no module named '{module}' here): "
                             f"pip install 'vfmaudit[{extra}]'; without it, {without}")
