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
_LONGEST_FILES = ("test_ray_engine.py", "test_lean_install.py", "test_export.py", "test_bf16.py", "test_audit.py", "test_concurrency.py",
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


def shared_folder(tmp_path_factory, name: str, make) -> "Path":
    """A folder `make(folder)` fills once per test session: under pytest-xdist the first worker to ask
    makes it, the others wait for it (a file lock) and read it."""
    from filelock import FileLock

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # common to every worker of this session
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(str(done) + ".lock"):
        if not done.is_file():
            folder.mkdir(exist_ok=True)
            make(folder)
            done.write_text("")
    return folder


EXTRAS_SUBSET = {"h": "horizontal_stripes", "c": "checks"}  # folder name -> training class


@pytest.fixture(scope="session")
def downstream_extras(tmp_path_factory):
    """One `vfmaudit downstream` with every extra (shift sets with a class map, OOD sets, the typographic
    attack) on a small timm model, shared by the shift, OOD and typographic tests: (its --out folder, the
    noise OOD folder with one broken file, the two-class shift folder, the class map, the report)."""
    import json

    from PIL import Image

    from cli_runner import run_cli
    from vfmaudit.data.datasets import load_dataset

    def make(root):
        noise, subset = root / "noise", root / "subset"
        noise.mkdir()
        rng = np.random.default_rng(1)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(noise / f"n{i}.png")
        (noise / "broken.png").write_bytes(b"not an image")
        sketches = load_dataset("builtin:textures-sketch", 4)
        for folder, cls in EXTRAS_SUBSET.items():
            (subset / folder).mkdir(parents=True)
            c = sketches.class_names.index(cls)
            for j, i in enumerate(np.flatnonzero(sketches.labels == c)):
                Image.fromarray(sketches.items[i].load()).save(subset / folder / f"{j}.png")
        (root / "map.csv").write_text("folder,class\n" + "".join(f"{k},{v}\n" for k, v in EXTRAS_SUBSET.items()))
        res = run_cli("downstream", *EXTRAS_COMMON, "--ood", "builtin:digits", "--ood", f"static={noise}",
                      "--shift", "builtin:textures-sketch", "--shift", f"two={subset}", "--class-map",
                      root / "map.csv", "--out", root / "out")
        assert res.returncode == 0, res.stderr

    root = shared_folder(tmp_path_factory, "downstream_extras", make)
    return (root / "out", root / "noise", root / "subset", root / "map.csv",
            json.loads((root / "out" / "downstream.json").read_text()))


EXTRAS_MODEL = "timm:test_vit"
EXTRAS_COMMON = ["builtin:textures", "-m", EXTRAS_MODEL, "--tasks", "linear-probe,knn", "-p", "jpeg,typographic",
                 "--levels", "3", "--max-per-class", "6", "-q"]
