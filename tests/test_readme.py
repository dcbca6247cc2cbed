"""README and behaviour agree: the catalogue table is the registry, and the examples run."""

import re
from pathlib import Path

from vfmaudit import perturb

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_catalogue_table_matches_registry():
    rows = re.findall(r"^\| `(\w+)` \| \[([^\]]+)\] \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", README, re.M)
    assert [r[0] for r in rows] == list(perturb.families())
    for name, domain, identity, units, description in rows:
        f = perturb.get(name)
        assert domain == f"{f.lo:g}, {f.hi:g}" and identity.strip() == f"{f.identity:g}"
        assert units.strip() == f.units and description.strip() == f.description


def test_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 3
    for code in blocks:
        exec(compile(code.replace("/tmp/vfm-demo", str(tmp_path / "demo")), "README.md", "exec"), {})
