"""The house rules of docs/architecture.md, checked: layers import only downward."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "vfmaudit"

# lowest first; a module may import its own layer and the layers below it, never above
LAYERS = [
    {"errors", "_version", "files", "catalogue", "prefetch"},
    {"data", "perturb", "metrics", "models"},
    {"artefact"},
    {"runtime"},
    {"export", "calibration"},
    {"audit", "bench", "gate", "downstream", "finetune"},
    {"report"},
    {"api"},
    {"cli", "__main__"},
]


def layer_of(module: str) -> int:
    """module: dotted name inside the package, e.g. 'audit.runner' -> its layer index."""
    top = module.split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"vfmaudit.{top} belongs to no layer: add it to LAYERS and docs/architecture.md")


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every vfmaudit module a file imports, at any depth (module level or inside functions)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("vfmaudit.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "vfmaudit":  # `from vfmaudit import x`: x is a subpackage or a public name
                found += [(node.lineno, f"vfmaudit.{a.name}") for a in node.names]
            elif node.module.startswith("vfmaudit."):
                found.append((node.lineno, node.module))
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.parts == ("__init__",):
            continue  # the package root re-exports the API lazily: it sits above every layer
        yield path, ".".join(rel.parts)


PUBLIC_NAMES = {"__version__": "_version", "VfmauditError": "errors"}


@pytest.mark.parametrize("path,module", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_no_module_imports_a_higher_layer(path, module):
    mine = layer_of(module)
    upward = []
    for line, imported in imports_of(path):
        name = imported.split(".", 1)[1]
        if name in PUBLIC_NAMES:
            name = PUBLIC_NAMES[name]
        elif name.split(".")[0] not in {n for layer in LAYERS for n in layer}:
            import vfmaudit

            # a public name re-exported by the package root: where does it really live?
            name = vfmaudit._LAZY[name].split(".", 1)[1]
        if layer_of(name) > mine:
            upward.append(f"line {line}: vfmaudit.{module} (layer {mine}) imports {imported} (layer {layer_of(name)})")
    assert not upward, "\n".join(upward)


def test_every_package_is_in_a_layer():
    for path in PACKAGE.iterdir():
        if path.name.startswith("__pycache__"):
            continue
        if path.is_dir() or (path.suffix == ".py" and path.name != "__init__.py"):
            layer_of(path.stem)


def test_the_walker_sees_lazy_imports(tmp_path):
    """A function-local import of a higher layer is caught like a module-level one."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from vfmaudit.report import write_html\n    import vfmaudit.cli\n")
    assert [m for _, m in imports_of(f)] == ["vfmaudit.report", "vfmaudit.cli"]
