"""README and behaviour agree: the catalogue table is the registry, and the examples run."""

import re
from pathlib import Path

import numpy as np

from vfmaudit import perturb

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_catalogue_table_matches_registry():
    rows = re.findall(r"^\| `(\w+)` \| \[([^\]]+)\] \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", README, re.M)
    assert [r[0] for r in rows] == list(perturb.families())
    for name, domain, identity, units, description in rows:
        f = perturb.get(name)
        assert domain == f"{f.lo:g}, {f.hi:g}" and identity.strip() == f"{f.identity:g}"
        assert units.strip() == f.units and description.strip() == f.description


def test_imagenet_c_table_is_the_catalogue():
    from vfmaudit.perturb.families.imagenet_c.catalogue import catalogue_markdown

    assert catalogue_markdown() in README


def test_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 3
    before = set(perturb.families())
    try:
        for code in blocks:
            exec(compile(code.replace("/tmp/vfm-demo", str(tmp_path / "demo")), "README.md", "exec"), {})
        # the plugin example registered its family as a plugin module would
        img = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
        assert np.array_equal(perturb.apply(img, "posterize", 3), img & 0xE0)
    finally:
        for name in set(perturb.families()) - before:
            perturb.unregister(name)


def test_architecture_examples_register_a_family_and_a_metric():
    """docs/architecture.md's 'how to add' examples for a family and a metric run as written."""
    import numpy as np

    from vfmaudit.metrics import drift_metrics, unregister_metric

    doc = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "register_backend" not in b]
    assert len(blocks) == 2
    try:
        for code in blocks:
            exec(compile(code, "docs/architecture.md", "exec"), {})
        img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
        assert np.array_equal(perturb.apply(img, "posterize", 2), img & 0xC0)
        pts = np.random.default_rng(1).normal(size=(2, 4, 16))
        m = drift_metrics(pts[:, 0], pts[:, 1:])
        assert np.all(m["worst_cosine"] <= m["cosine"] + 1e-12)
    finally:
        perturb.unregister("posterize")
        unregister_metric("worst_cosine")


def test_no_stale_not_built_yet_or_issue_numbers_in_the_readme_or_help():
    """What is built is not announced as missing, and users' documents name no internal issue numbers."""
    import typer

    from vfmaudit.cli import app

    def helps(command, path=()):
        yield " ".join(path), command.get_help(typer.Context(command, info_name=" ".join(path) or "vfmaudit"))
        for name, sub in getattr(command, "commands", {}).items():
            yield from helps(sub, (*path, name))

    texts = {"README.md": README, **dict(helps(typer.main.get_command(app)))}
    for where, text in texts.items():
        assert not re.search(r"not built yet", text, re.I), where
        assert not re.search(r"\(issue \d+\)|\bissue \d+\b", text), where
