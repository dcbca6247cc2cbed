"""`vfmaudit perturbations|presets|metrics|backends|engines|plugins|version`: the registries, as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfmaudit._version import __version__
from vfmaudit.cli.common import out, user_errors
from vfmaudit.errors import VfmauditError


@user_errors
def list_perturbations(
    image: Annotated[Optional[Path], typer.Argument(help="With --apply: the image to edit.")] = None,
    apply: Annotated[Optional[str], typer.Option(
        help="Apply a chain of edits FAMILY:LEVEL,FAMILY:LEVEL in order to IMAGE (the chain_spec that "
             "`vfmaudit attack --method search` records) and write --out, instead of listing the families.")]
        = None,
    seed: Annotated[int, typer.Option(help="With --apply: the seed of stochastic edits (the run's --seed).")] = 0,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="With --apply: the edited image (PNG: "
                                                     "the exact bytes).")] = None,
) -> None:
    """List the perturbation families: domain, identity, units and what each does; or, with
    --apply, edit one image with a chain of them (byte for byte what the edit search did)."""
    from vfmaudit import perturb
    from vfmaudit.report.console import print_catalogue_table

    if apply is not None or image is not None or out_file is not None:
        _apply_chain(apply, image, seed, out_file)
        return

    rows = [[name, f"[{f.lo:g}, {f.hi:g}]", f"{f.identity:g}", f.units, f.description]
            for name, f in perturb.families().items()]
    print_catalogue_table("Perturbation families", ["name", "domain", "identity", "units", "description"], rows, out)


def _apply_chain(chain: str | None, image: Path | None, seed: int, out_file: Path | None) -> None:
    import numpy as np
    from PIL import Image

    from vfmaudit.attack.search import apply_chain, parse_chain
    from vfmaudit.data.decode import load_image

    edits = parse_chain(chain or "")
    if image is None or out_file is None:
        raise VfmauditError("--apply edits one image: pass IMAGE and --out FILE.png", param="apply")
    if not image.is_file():
        raise VfmauditError(f"{image} is not a file: pass the image to edit", param="image")
    edited = apply_chain(np.ascontiguousarray(load_image(image)), edits, seed)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(edited).save(out_file, format="PNG")
    out.print(f"wrote {out_file} ({len(edits)} edit(s))", markup=False, highlight=False)


def list_presets() -> None:
    """List the named perturbation presets (usable as --perturbations NAME) and their edits."""
    from vfmaudit import perturb
    from vfmaudit.report.console import print_catalogue_table

    def edit(e) -> str:
        lo, hi = e.bounds()
        if e.levels:  # explicit levels, e.g. ImageNet-C's severities: imagenet_c_fog@1,2,3,4,5
            return f"{e.family}@{','.join(f'{v:g}' for v in e.levels)}"
        return e.family if lo is None else (f"{e.family}@{lo:g}" if lo == hi else f"{e.family}:{lo:g}:{hi:g}")

    rows = [[p.name, ", ".join(edit(e) for e in p.entries), p.description] for p in perturb.presets().values()]
    print_catalogue_table("Perturbation presets", ["name", "edits", "what for"], rows, out)


def list_metrics() -> None:
    """List the robustness metrics every audit computes: direction, range, meaning."""
    from vfmaudit.metrics import metrics
    from vfmaudit.report.console import print_catalogue_table

    rows = [[name, m.direction, f"[{m.range[0]:g}, {m.range[1]:g}]", "yes" if m.per_level else "no", m.description]
            for name, m in metrics().items()]
    print_catalogue_table("Metrics", ["name", "direction", "range", "per level", "description"], rows, out)


def _installed(packages: tuple[str, ...]) -> str:
    """The backend's distributions installed here with their versions, or which are missing (the lean
    install has no torch); read from the installed metadata, nothing imported."""
    from importlib import metadata

    if not packages:
        return ""
    found, missing = [], []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    return ", ".join(found) if found else "not installed: " + ", ".join(missing)


def list_backends() -> None:
    """List the encoder backends: the files each runs, its precisions, its options, what of it is installed."""
    from vfmaudit.report.console import print_catalogue_table
    from vfmaudit.runtime import backends

    rows = [[name, ", ".join(b.suffixes) or "model specs", ", ".join(b.precisions), ", ".join(b.options),
             _installed(b.packages), b.description] for name, b in backends().items()]
    print_catalogue_table("Backends", ["name", "runs", "precisions", "options", "installed", "description"], rows,
                          out)


def list_sources() -> None:
    """List the source kinds an images argument can name (chosen by its form; KIND: forces one)."""
    from vfmaudit.data import source_kinds
    from vfmaudit.report.console import print_catalogue_table

    rows = [[name, k.forms, f"the {k.extra} extra" if k.extra else "the base install (URLs: the data extra)",
             _installed(k.packages) if k.packages else "yes", k.description] for name, k in source_kinds().items()]
    print_catalogue_table("Sources", ["name", "forms", "needs", "installed", "description"], rows, out)


def list_engines() -> None:
    """List the engines a command's work can run on (--engine)."""
    from vfmaudit.engines import engines
    from vfmaudit.report.console import print_catalogue_table

    rows = [[name, e.description] for name, e in engines().items()]
    print_catalogue_table("Engines", ["name", "description"], rows, out)


def list_plugins() -> None:
    """List the installed plugins (entry-point group vfmaudit.plugins) and whether each loaded.

    A plugin is a module of another distribution that registers families, presets, metrics,
    backends or gate measurements; set VFMAUDIT_NO_PLUGINS=1 to start without them.
    """
    from vfmaudit import metrics, perturb, runtime  # noqa: F401 - loading the registries loads the plugins
    from vfmaudit.plugins import GROUP, plugins
    from vfmaudit.report.console import print_catalogue_table

    found = plugins()
    rows = [[p.name, p.module, p.distribution, "loaded" if p.loaded else f"failed: {p.error}"] for p in found]
    print_catalogue_table(f"Plugins (entry-point group {GROUP})", ["name", "module", "distribution", "status"],
                          rows, out)
    if not found:
        out.print(f"no plugin installed; a distribution adds one under [project.entry-points.\"{GROUP}\"]",
                  markup=False, highlight=False)


def version() -> None:
    """Print the vfmaudit version."""
    out.print(__version__)


def register(app: typer.Typer) -> None:
    app.command("perturbations")(list_perturbations)
    app.command("presets")(list_presets)
    app.command("metrics")(list_metrics)
    app.command("backends")(list_backends)
    app.command("engines")(list_engines)
    app.command("sources")(list_sources)
    app.command("plugins")(list_plugins)
    app.command()(version)
