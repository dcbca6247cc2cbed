import os

import numpy as np
import pytest

# nothing in the tests may reach a model hub: fail fast instead of waiting on the network
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # two workers on two cores: one thread each (and in the processes they start), not two threads
    # fighting over each core
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# The longest files first: `--dist loadfile` deals files to the workers in collection order, so a
# long file dealt last would keep one worker busy after the other has finished.
_LONGEST_FILES = ("test_ray_engine.py", "test_export.py", "test_bf16.py", "test_audit.py", "test_concurrency.py",
                  "test_precision.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(_LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole, in order


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
def default_audit(tmp_path_factory, worker_id):
    """The main job as a user starts it, once per test session: `vfmaudit audit` with no arguments, in a
    real process of the installed package. (its result, its output folder); read-only for the tests.
    Under pytest-xdist the workers share one run (the first to ask runs it, the others wait for it and
    read its recorded result) instead of auditing once per worker."""
    import json
    import subprocess

    from cli_runner import run_process
    from filelock import FileLock

    if worker_id == "master":
        cwd = tmp_path_factory.mktemp("default_audit")
        return run_process("audit", cwd=cwd), cwd / "vfmaudit-out"
    shared = tmp_path_factory.getbasetemp().parent  # common to every worker of this session
    cwd, record = shared / "default_audit", shared / "default_audit.json"
    with FileLock(str(record) + ".lock"):
        if not record.is_file():
            cwd.mkdir(exist_ok=True)
            done = run_process("audit", cwd=cwd)
            record.write_text(json.dumps({"returncode": done.returncode, "stdout": done.stdout,
                                          "stderr": done.stderr}))
        got = json.loads(record.read_text())
    return subprocess.CompletedProcess(["vfmaudit", "audit"], got["returncode"], got["stdout"],
                                       got["stderr"]), cwd / "vfmaudit-out"
