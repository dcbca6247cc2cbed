"""The `vfmaudit` command line: thin over the Python API."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from vfmaudit import __version__
from vfmaudit.audit.config import DEFAULT_MODEL, DEFAULT_OUT
from vfmaudit.errors import VfmauditError

app = typer.Typer(
    help="Audit and deploy vision encoders: how far embeddings drift under everyday image edits, "
         "whether exported artefacts are the same model, and whether they pass your policy.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
)
err = Console(stderr=True)
out = Console()


def user_errors(fn: Callable) -> Callable:
    """Bad input -> one line on stderr and exit 2; Ctrl-C -> a note that finished work is kept."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VfmauditError as e:
            err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted: finished work is on disk; rerun with --resume to continue",
                      markup=False, highlight=False)
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@user_errors
def audit(
    images: Optional[List[Path]] = typer.Argument(
        None, help="Image files and folders (searched recursively). None: the built-in sample photographs."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m",
                              help="openclip:ARCH (see open_clip.list_models()) or timm:NAME."),
    pretrained: Optional[str] = typer.Option(
        None, help="Weights: a local file (.pt/.pth/.bin/.safetensors) or a pretrained tag (downloads where "
                   "a network exists). Default: seeded random weights, reported as such."),
    backend: str = typer.Option("torch", help="Runtime backend."),
    device: str = typer.Option("cpu", help="cpu or cuda (torch backend)."),
    perturbations: str = typer.Option(
        "all", "--perturbations", "-p",
        help="'all' or a comma list of families, each optionally with a sub-domain NAME:LO:HI "
             "(e.g. jpeg,brightness:0.5:1.5). See `vfmaudit perturbations`."),
    levels: int = typer.Option(5, help="Levels per family, equally spaced over its domain."),
    batch_size: int = typer.Option(32, help="Images per encoder batch (and per streamed chunk)."),
    seed: int = typer.Option(0, help="Seed of random weights and of stochastic perturbations."),
    out_dir: Path = typer.Option(Path(DEFAULT_OUT), "--out", "-o", help="Folder for the results."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out without redoing finished images."),
    overwrite: bool = typer.Option(False, help="Discard an earlier run in --out and start again."),
    max_pixels: int = typer.Option(89_478_485, help="Larger images are skipped as decompression bombs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary table."),
) -> None:
    """Measure how far embeddings drift under each perturbation family.

    Writes report.json (summaries per family, skipped inputs, model, versions), per_image.csv
    (image x family: cosine, euclidean, divergence_radius), per_level.csv and report.html to --out.
    """
    from vfmaudit.audit import AuditConfig, run_audit
    from vfmaudit.report import print_summary

    config = AuditConfig(inputs=[str(p) for p in images or []], model=model, pretrained=pretrained,
                         backend=backend, device=device, perturbations=perturbations, levels=levels,
                         batch_size=batch_size, seed=seed, out=str(out_dir), resume=resume,
                         overwrite=overwrite, max_pixels=max_pixels)
    config.plan()  # validate families and levels before loading anything heavy
    with _progress(quiet) as progress:
        result = run_audit(config, progress=progress)
    if not quiet:
        print_summary(result.report, str(out_dir), out)


class _progress:
    """A rich progress bar fed by the audit's progress callback."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False)
        self.task = None

    def __enter__(self):
        return self

    def __call__(self, event: str, n: int) -> None:
        if self.quiet:
            return
        if event == "start":  # shown only once work starts, so early errors stay one line
            self.bar.start()
            self.task = self.bar.add_task("audit", total=n)
        elif self.task is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc):
        if self.task is not None:
            self.bar.stop()
        return False


@app.command("perturbations")
def list_perturbations() -> None:
    """List the perturbation families: domain, identity, units and what each does."""
    from vfmaudit import perturb

    t = Table(title="Perturbation families")
    for col in ("name", "domain", "identity", "units", "description"):
        t.add_column(col)
    for name, f in perturb.families().items():
        t.add_row(name, f"[{f.lo:g}, {f.hi:g}]", f"{f.identity:g}", f.units, f.description)
    out.print(t)


@app.command()
def version() -> None:
    """Print the vfmaudit version."""
    out.print(__version__)


def main(argv: list[str] | None = None) -> None:
    # typer may vendor its own click, so its exceptions are recognised by interface, not class
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="vfmaudit", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - last resort: one line, never a traceback
        name = type(e).__name__
        if name == "NoArgsIsHelpError":
            e.show()
            sys.exit(2)
        if name == "Abort":
            err.print("interrupted", markup=False)
            sys.exit(130)
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click's usage errors
            ctx = getattr(e, "ctx", None)
            where = f"vfmaudit {ctx.info_name}" if ctx is not None and ctx.parent is not None else "vfmaudit"
            err.print(f"error: {e.format_message()} (see {where} --help)", markup=False, highlight=False,
                      soft_wrap=True)
            sys.exit(e.exit_code)
        if os.environ.get("VFMAUDIT_DEBUG"):
            raise
        err.print(f"internal error: {name}: {e} (set VFMAUDIT_DEBUG=1 for the traceback)",
                  markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
