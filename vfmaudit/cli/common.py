"""What every command shares: consoles, the error boundary, the progress bar, typed options.

Options used by several commands are declared once here (as Annotated types) so their flags and
help read the same everywhere.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import typing
from pathlib import Path
from typing import Annotated, Callable, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vfmaudit import perturb
from vfmaudit.data.decode import DEFAULT_MAX_PIXELS
from vfmaudit.data.source import SourceOptions, check_max_images, set_default_options, sources_help
from vfmaudit.data.storage import parse_storage_options
from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.errors import VfmauditError
from vfmaudit.files import write_json
from vfmaudit.runtime import auto_help, backends

err = Console(stderr=True)
out = Console()
if not out.is_terminal:  # piped or captured: wide enough that tables stay readable
    out = Console(width=160)

__all__ = ["DEFAULT_MODEL"]

# -- options shared by several commands ------------------------------------------------------
ModelSpecOpt = Annotated[str, typer.Option("--model", "-m", help="openclip:ARCH (see open_clip.list_models()), "
                                           "timm:NAME, or an exported artefact (model.onnx, model.engine).")]
TorchModelOpt = Annotated[str, typer.Option("--model", "-m", help="openclip:ARCH (see open_clip.list_models()) or "
                                            "timm:NAME: a torch model (an exported .onnx or .engine cannot be trained).")]
PretrainedOpt = Annotated[Optional[str], typer.Option(
    help="Weights: a local file (.pt/.pth/.bin/.safetensors) or a pretrained tag (downloads where a network "
         "exists). Default: seeded random weights, reported as such.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda (cuda:N).")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON here (the API's to_json()).")]
ImagesOpt = Annotated[Optional[List[str]], typer.Option(
    "--images", help=f"Images: {sources_help()} Default: the built-in sample photographs.")]
ImageKeyOpt = Annotated[Optional[str], typer.Option(
    help="Where a sharded source keeps the image: WebDataset, the member's extension(s), e.g. png or seg.png "
         "(default: the first of jpg, jpeg, png, webp); Parquet/Arrow, the column (default: a {bytes, path} struct "
         "or binary column, image/img preferred).")]
LabelKeyOpt = Annotated[Optional[str], typer.Option(
    help="Where a sharded source keeps the label: WebDataset, cls, txt, json.FIELD or another extension "
         "(default: the first of cls, label, txt); Parquet/Arrow, the column (default: label, labels, cls, class "
         "or target; ClassLabel names used).")]
StorageOptionOpt = Annotated[Optional[List[str]], typer.Option(
    "--storage-option", help="KEY=VALUE for the store behind a URL (fsspec options; s3fs for s3://), repeatable: "
                             "endpoint_url=http://127.0.0.1:9000, anon=true, profile=NAME, "
                             "client_kwargs.region_name=eu-west-1 (dotted keys nest; values read as JSON where they "
                             "parse). Credentials come from the store's own chain (AWS_* variables, ~/.aws, an "
                             "instance role); AWS_ENDPOINT_URL is honoured. Values are never printed or reported.")]
PerturbationsOpt = Annotated[str, typer.Option(
    "--perturbations", "-p",
    help=f"A preset ({', '.join(perturb.presets())}; default everyday: the everyday edits), 'all' (every family, "
         "the 19 ImageNet-C corruptions too), or a comma list of families and presets, each family optionally with a "
         "sub-domain NAME:LO:HI (e.g. jpeg,brightness:0.5:1.5,imagenet-c). ImageNet-C presets keep their severities "
         "1..5 whatever --levels says. See `vfmaudit perturbations` and `vfmaudit presets`.")]
LevelsOpt = Annotated[int, typer.Option(help="Levels per family, equally spaced over its domain; 1: the strongest "
                                             "level (the end farthest from the identity, e.g. JPEG quality 10). "
                                             "More than 32 (or than a discrete family has) warns.")]
ImagenetCPixelsOpt = Annotated[Optional[str], typer.Option(
    help="ImageNet-C pixel-unit parameters (blur radii, offsets): imagenet keeps the 224-px values at every "
         "size (what published numbers mean); scale multiplies them by min(H, W) / 224. Default: "
         "$VFMAUDIT_IMAGENET_C_PIXELS, else imagenet.")]
FrostDirOpt = Annotated[Optional[Path], typer.Option(
    help="A folder with the original ImageNet-C frost textures (frost1.png ... frost5.jpg; their sizes are "
         "checked); default: $VFMAUDIT_FROST_DIR, else procedural frost.")]
# the Ray engine's options, one wording for every command that has --engine
RayAddressOpt = Annotated[Optional[str], typer.Option(
    help="With --engine ray: the cluster, auto or ray://HOST:10001. Default: start a local Ray instance.")]
WorkersOpt = Annotated[int, typer.Option(help="With --engine ray: actors (one model each).")]
GpusPerWorkerOpt = Annotated[float, typer.Option(help="With --engine ray: GPUs per actor.")]
# --mlflow alone is passed as --mlflow= (cli.main): '' is "the default store"
MLFLOW_HELP = ("Log this run to MLflow: --mlflow alone uses $MLFLOW_TRACKING_URI, else MLflow's default store "
               "(sqlite:///mlflow.db here); --mlflow URI names the store (http://HOST:5000, sqlite:///FILE.db, "
               "databricks). One run: params, metrics, the output files, tags. "
               "Needs pip install 'vfmaudit[mlflow]'.")
MlflowOpt = Annotated[Optional[str], typer.Option("--mlflow", metavar="[URI]", help=MLFLOW_HELP)]
# one wording for every command that reads images (attack has its own: it also caps a labelled --dataset)
MaxImagesOpt = Annotated[Optional[int], typer.Option(
    help="Read only the first this many readable images of the inputs, in their order (unreadable ones before "
         "them are skipped and listed as usual). Default: all.")]
ParityImagesOpt = Annotated[int, typer.Option(
    "--max-images", help="Images compared (the first readable ones), each clean and with the parity edits.")]
OverwriteFileOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace --out if it exists (without it an existing file is refused).")]


def backend_help() -> str:
    return f"{', '.join(backends())} or auto; auto: {auto_help()}."


# -- the error boundary ----------------------------------------------------------------------
def _flags_of(fn: Callable) -> dict[str, str]:
    """CLI parameter name -> its first long flag, from the command's typer declarations."""
    flags: dict[str, str] = {}
    hints = typing.get_type_hints(fn, include_extras=True)
    import inspect

    for name, param in inspect.signature(fn).parameters.items():
        infos = [m for m in getattr(hints.get(name), "__metadata__", ()) if isinstance(m, typer.models.ParameterInfo)]
        if isinstance(param.default, typer.models.ParameterInfo):
            infos.append(param.default)
        if not infos or isinstance(infos[0], typer.models.ArgumentInfo):
            flags[name] = name.upper()
            continue
        info = infos[0]
        # inside Annotated, typer reads Option("--out", "-o")'s first argument as a flag, not a default
        first = [info.default] if isinstance(info.default, str) and info.default.startswith("-") else []
        decls = [d for decl in [*first, *(info.param_decls or ())] for d in decl.split("/")]
        longs = [d for d in decls if d.startswith("--")]
        flags[name] = longs[0] if longs else "--" + name.replace("_", "-")
    return flags


def cli_message(e: VfmauditError, flags: dict[str, str]) -> str:
    """The library's message with the parameters it names written as this command's flags."""
    msg = str(e)
    params = (e.param,) if isinstance(e.param, str) else tuple(e.param or ())
    for p in params:
        dashed = "--" + p.replace("_", "-")
        flag = dashed if dashed in flags.values() else flags.get(p)
        if flag:
            # a whole word only: not part of a path or file name (exists.out, out/report.json)
            msg = re.sub(rf"(?<![\w./-]){re.escape(p)}(?![\w/-]|\.\w)", flag, msg)
    return msg


def user_errors(fn: Callable) -> Callable:
    """Bad input -> one line on stderr and exit 2; Ctrl-C -> a note that finished work is kept."""
    flags = _flags_of(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VfmauditError as e:
            err.print(f"error: {cli_message(e, flags)}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted: finished work is on disk; rerun with --resume to continue",
                      markup=False, highlight=False)
            raise typer.Exit(130) from None

    return wrapper


# -- small helpers ---------------------------------------------------------------------------
def paths(items: Optional[List]) -> list[str] | None:
    return [str(p) for p in items] if items else None


def use_sources(image_key: str | None = None, label_key: str | None = None,
                storage_option: Optional[List[str]] = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                max_images: int | None = None) -> SourceOptions:
    """The command's source flags as the readers' options (and the process default every reader uses)."""
    check_max_images(max_images)
    options = SourceOptions(image_key=image_key, label_key=label_key,
                            storage_options=parse_storage_options(storage_option), max_pixels=max_pixels,
                            max_images=max_images)
    set_default_options(options)
    return options


def int_list(text: str, param: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise VfmauditError(f"{param} must be comma-separated integers, e.g. 1,8,32", param=param) from None
    if not values or min(values) < 1:
        raise VfmauditError(f"{param} must be positive integers, e.g. 1,8,32", param=param)
    return values


def names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def write_result_json(result, path: Optional[Path], announce: bool = True) -> None:
    """--json: exactly the result object's to_json()."""
    if path:
        write_json(result.to_json(), path)
        if announce:
            out.print(f"wrote {path}", markup=False, highlight=False)


class Stages:
    """What a long command is doing, fed by an API call's progress(what, i, n) (n = 0: a stage).

    On a terminal: one spinner line, updated in place, with the count and elapsed time. Elsewhere
    (a CI log, a pipe): one plain line per stage, and counted work at most every tenth of the way,
    each printed once it has lasted DELAY_S (so a run that fails at once stays one error line).
    Nothing with quiet.
    """

    DELAY_S = 1.0

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.status = None
        self.last: tuple[str, int] | None = None
        self.t0 = 0.0
        self.pending = None  # the line waiting for its DELAY_S

    def __enter__(self) -> "Stages":
        self.t0 = time.perf_counter()
        if not self.quiet and err.is_terminal:
            self.status = err.status("starting...")
            self.status.__enter__()
        return self

    def __call__(self, what: str, i: int = 0, n: int = 0) -> None:
        if self.quiet:
            return
        text = f"{what}: {i}/{n}" if n else what
        if self.status is not None:
            self.status.update(f"{text} ({time.perf_counter() - self.t0:.0f} s)")
            self.status.start()  # no-op while it runs; resumes after suspend()
            return
        tenth = (10 * i // n) if n else -1
        if self.last == (what, tenth):
            return
        self.last = (what, tenth)
        self._cancel()
        if self.DELAY_S <= 0:
            err.print(text, markup=False, highlight=False, soft_wrap=True)
            return
        self.pending = threading.Timer(self.DELAY_S, err.print, args=(text,),
                                       kwargs={"markup": False, "highlight": False, "soft_wrap": True})
        self.pending.daemon = True
        self.pending.start()

    def suspend(self) -> None:
        """Stop the spinner while another live display (a progress bar) has the terminal; the next stage resumes it."""
        self._cancel()
        if self.status is not None:
            self.status.stop()

    def _cancel(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None

    def __exit__(self, *exc) -> bool:
        self._cancel()
        if self.status is not None:
            self.status.__exit__(*exc)
        return False


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


class AuditProgress:
    """A rich progress bar fed by an audit's progress callback; shown only once work starts.

    Where stderr is no terminal (a CI log, a pipe) there is no bar: one line when the stage starts.
    """

    def __init__(self, quiet: bool, label: str = "auditing", unit: str = "images"):
        self.quiet = quiet
        self.label, self.unit = label, unit
        self.bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                            TextColumn("{task.fields[doing]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=err, transient=False)
        self.task = None
        self.credited = 0.0  # of the current chunk, by its families ("part") before it is finished

    def __enter__(self):
        return self

    def __call__(self, event: str, n: int | None) -> None:
        if self.quiet:
            return
        if event == "start" and not err.is_terminal:
            count = f"{n} {self.unit}" if n is not None else f"{self.unit} as the shards stream in"
            err.print(f"{self.label}: {count}", markup=False, highlight=False)
            return
        if event == "start":  # so early errors stay one line
            self.bar.start()
            self.task = self.bar.add_task("audit", total=n, doing="")
        elif self.task is not None:
            self.bar.update(self.task, advance=n - self.credited, doing="")
            self.credited = 0.0

    def part(self, share: float, family: str) -> None:
        """One family of the chunk in work is in: the bar moves within the chunk, naming the family."""
        if self.task is not None and not self.quiet:
            self.credited += share
            self.bar.update(self.task, advance=share, doing=family)

    def finish(self) -> None:
        """Take the bar off the terminal (the work it counted is over)."""
        if self.task is not None:
            self.bar.stop()

    def __exit__(self, *exc):
        self.finish()
        return False
