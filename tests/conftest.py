import os

import numpy as np
import pytest

# nothing in the tests may reach a model hub: fail fast instead of waiting on the network
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _photo(name: str) -> np.ndarray:
    from vfmaudit.data.sources import _sample_loader

    return _sample_loader(name)()


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    """A few real photographs of different sizes (shipped with scikit-image)."""
    return [_photo("astronaut")[:200, :180], _photo("chelsea")[:150, :170], _photo("coffee")[:160, :160]]


@pytest.fixture(scope="session")
def photo_batch() -> np.ndarray:
    import cv2

    names = ["astronaut", "chelsea", "coffee", "rocket"]
    return np.stack([cv2.resize(_photo(n), (96, 80), interpolation=cv2.INTER_AREA) for n in names])


@pytest.fixture(scope="session")
def small_encoder():
    """A small OpenCLIP tower with seeded random weights, shared by the tests that only encode."""
    from vfmaudit.runtime import create_encoder

    return create_encoder("torch", model="openclip:ViT-S-32", seed=0, batch_size=16)


@pytest.fixture(scope="session")
def default_audit(tmp_path_factory):
    """The main job as a user starts it, once per test session: `vfmaudit audit` with no arguments, in a
    real process of the installed package. (its result, its output folder); read-only for the tests."""
    from cli_runner import run_process

    cwd = tmp_path_factory.mktemp("default_audit")
    return run_process("audit", cwd=cwd), cwd / "vfmaudit-out"
