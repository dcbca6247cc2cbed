"""The house rules of docs/architecture.md, checked: layers import only downward, and no module
imports itself back through a circle of imports (at module level or inside functions alike)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "vfmaudit"

# lowest first; a module may import its own layer and the layers below it, never above
LAYERS = [
    {"errors", "_version", "files", "catalogue", "prefetch", "plugins", "engines", "lazy", "progress"},
    {"data", "perturb", "metrics", "models"},
    {"artefact"},
    {"runtime"},
    {"export", "calibration"},
    {"audit", "bench", "gate", "downstream", "finetune", "attack"},
    {"tracking"},
    {"report"},
    {"api"},
    {"cli", "__main__"},
]
PUBLIC_NAMES = {"__version__": "_version", "VfmauditError": "errors"}


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
                # `from vfmaudit.pkg import name`: name may be a submodule (then that is what is imported)
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def _is_module(dotted: str, package: Path = PACKAGE) -> bool:
    rel = Path(*dotted.split("."))
    return (package / rel).with_suffix(".py").is_file() or (package / rel / "__init__.py").is_file()


def resolve(imported: str, package: Path = PACKAGE) -> str:
    """'vfmaudit.audit.config.AuditConfig' -> 'audit.config': the module (or package) that import loads."""
    import vfmaudit

    name = imported.split(".", 1)[1]
    if name in PUBLIC_NAMES:
        return PUBLIC_NAMES[name]
    if "." not in name and not _is_module(name, package) and name in vfmaudit._LAZY:
        return vfmaudit._LAZY[name].split(".", 1)[1]  # a public name re-exported by the package root
    parts = name.split(".")
    while len(parts) > 1 and not _is_module(".".join(parts), package):
        parts.pop()  # a name inside a module, not a submodule
    return ".".join(parts)


def _modules(package: Path = PACKAGE):
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).with_suffix("")
        if rel.parts == ("__init__",):
            continue  # the package root re-exports the API lazily: it sits above every layer
        parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
        yield path, ".".join(parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports (an import of a package's name is an edge to its __init__)."""
    graph = {}
    for path, module in _modules(package):
        graph[module] = {resolve(imported, package) for _, imported in imports_of(path)} - {module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def _cycle_path(graph: dict[str, set[str]], group: list[str]) -> str:
    """One circle through a group, for the message: a -> b -> a."""
    members, start = set(group), group[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in members)
        back = [w for w in nxt if w == start]
        if back and len(path) > 1:
            return " -> ".join(path + [start])
        unseen = [w for w in nxt if w not in seen]
        if not unseen:
            return " <-> ".join(group)
        path.append(unseen[0])
        seen.add(unseen[0])


@pytest.mark.parametrize("path,module", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_no_module_imports_a_higher_layer(path, module):
    mine = layer_of(module)
    upward = [f"line {line}: vfmaudit.{module} (layer {mine}) imports {imported} (layer {layer_of(resolve(imported))})"
              for line, imported in imports_of(path) if layer_of(resolve(imported)) > mine]
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(_cycle_path(graph, g) for g in cycles)


def test_every_package_is_in_a_layer():
    for path in PACKAGE.iterdir():
        if path.name.startswith("__pycache__") or path.name == "__init__.py":
            continue
        if path.is_dir() or path.suffix == ".py":
            layer_of(path.stem)


def test_the_walker_sees_lazy_imports(tmp_path):
    """A function-local import of a higher layer is caught like a module-level one."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from vfmaudit.report import write_html\n    import vfmaudit.cli\n")
    assert [m for _, m in imports_of(f)] == ["vfmaudit.report.write_html", "vfmaudit.cli"]
    assert [resolve(m) for _, m in imports_of(f)] == ["report", "cli"]


def _write_package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "vfmaudit"
    for name, text in files.items():
        f = pkg / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return pkg


def test_the_cycle_finder_catches_circles_of_two_and_more(tmp_path):
    """The checker itself: a two-module circle (one side inside a function), a three-module circle
    through a package's __init__, and a clean chain, in a throwaway package tree."""
    pkg = _write_package(tmp_path, {
        "__init__.py": "",
        "a/__init__.py": "from vfmaudit.a.runner import run\n",
        "a/runner.py": "from vfmaudit.a.engine import go\n",
        "a/engine.py": "def go():\n    from vfmaudit.a.runner import helper\n",
        "b/__init__.py": "from vfmaudit.b.one import x\n",
        "b/one.py": "from vfmaudit.c import y\n",
        "c/__init__.py": "from vfmaudit.c.two import y\n",
        "c/two.py": "from vfmaudit.b import z\n",
        "d/__init__.py": "", "d/low.py": "", "d/high.py": "from vfmaudit.d.low import q\n",
    })
    graph = import_graph(pkg)
    assert graph["a.engine"] == {"a.runner"} and graph["d.high"] == {"d.low"}
    cycles = find_cycles(graph)
    assert ["a.engine", "a.runner"] in cycles
    assert ["b", "b.one", "c", "c.two"] in cycles
    assert not any("d.low" in g or "d.high" in g for g in cycles)
    assert "a.engine -> a.runner -> a.engine" in _cycle_path(graph, ["a.engine", "a.runner"]) or \
        "a.runner -> a.engine -> a.runner" in _cycle_path(graph, ["a.engine", "a.runner"])


def test_an_upward_import_is_caught(tmp_path):
    """The layer check itself, on a throwaway module of the ground floor that imports the CLI."""
    pkg = _write_package(tmp_path, {"__init__.py": "", "perturb/__init__.py": "",
                                    "perturb/bad.py": "def f():\n    from vfmaudit.cli.audit import audit\n"})
    [(path, module)] = [(p, m) for p, m in _modules(pkg) if m == "perturb.bad"]
    [(_, imported)] = imports_of(path)
    assert layer_of(module) == 1 and layer_of(resolve(imported, pkg)) == len(LAYERS) - 1
