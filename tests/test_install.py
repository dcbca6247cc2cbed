"""The install itself: every declared dependency present, exactly one OpenCV build."""

import re
from importlib import metadata
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10: tomli is declared for it, so a missing one is a failure, not a skip
    import tomli as tomllib

PYPROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                        "opencv-contrib-python-headless")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def test_exactly_one_opencv_build_is_installed():
    # two builds overwrite each other's cv2 files; which one wins depends on install order
    present = [d for d in OPENCV_DISTRIBUTIONS if _installed(d)]
    assert present == ["opencv-python-headless"], f"OpenCV distributions installed: {present}"


def test_no_extra_pulls_a_second_opencv_build():
    for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items():
        for req in reqs:
            assert _name(req) not in OPENCV_DISTRIBUTIONS[:1] + OPENCV_DISTRIBUTIONS[2:], (extra, req)
            if _installed(_name(req)):
                needs = [_name(r) for r in metadata.requires(_name(req)) or [] if "extra ==" not in r]
                assert "opencv-python" not in needs, f"{req} (extra {extra}) pulls opencv-python"


@pytest.mark.parametrize("requirement", PYPROJECT["project"]["dependencies"]
                         + PYPROJECT["project"]["optional-dependencies"]["torch"]
                         + PYPROJECT["project"]["optional-dependencies"]["dev"])
def test_declared_dependency_is_installed(requirement):
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate():
        pytest.skip(f"{requirement} does not apply to this Python")
    assert _installed(req.name), f"{requirement} is declared but not installed"


def test_dynamo_exporter_dependency_imports():
    import onnxscript  # noqa: F401  torch.onnx.export(dynamo=True) needs it
