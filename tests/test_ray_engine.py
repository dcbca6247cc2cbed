"""The audit on Ray, 2 workers: the local engine's outputs, worker deaths, resume.

Most tests join one Ray cluster the module starts with `ray start --head` (as a user's cluster is
started), through --ray-address; bench's test starts a local Ray instance of its own. The model is
timm's tiny test_vit exported to ONNX: what is tested is the engine, not the encoder, and an ONNX
actor starts without importing torch and timm (2 s, not 7 s, per actor; the test starts seven).
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import psutil
import ray  # noqa: F401 - declared in the dev extra: missing is a failure, not a skip

from cli_runner import run_cli
from helpers import colour_classes, noisy_photos, rows, tiny_onnx

OPTIONS = ["-p", "jpeg,brightness,gaussian_noise", "--levels", "3", "--batch-size", "4", "-q"]
ARGS: list[str] = []  # set by the `model` fixture: -m <the ONNX file> and OPTIONS


@pytest.fixture(scope="module", autouse=True)
def model(tmp_path_factory) -> str:
    path = tiny_onnx(tmp_path_factory.mktemp("onnx"))
    ARGS[:] = ["-m", path, *OPTIONS]
    return path


@pytest.fixture(scope="module")
def cluster():
    """A 2-CPU Ray cluster in its own temp folder: its address, and that folder (its processes name it)."""
    import shutil
    import tempfile

    temp = tempfile.mkdtemp(prefix="vr", dir="/tmp")  # short: Ray's socket paths must fit 107 characters
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    res = subprocess.run([str(Path(sys.executable).with_name("ray")), "start", "--head", "--port", "0", "--num-cpus",
                          "2", "--temp-dir", temp, "--include-dashboard", "false", "--disable-usage-stats"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    address = re.search(r"ray start --address='([^']+)'", res.stdout + res.stderr).group(1)
    yield address, temp
    for p in cluster_processes(temp):
        with contextlib.suppress(psutil.Error):
            p.kill()
    shutil.rmtree(temp, ignore_errors=True)


def cluster_processes(temp: str) -> list[psutil.Process]:
    """The cluster's own processes (their command lines name its temp folder) and their children."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(temp in c for c in p.info["cmdline"] or []):
            found.append(p)
            with contextlib.suppress(psutil.Error):
                found.extend(p.children(recursive=True))
    return found


def on(cluster) -> list[str]:
    return ["--ray-address", cluster[0]]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photo_batch):
    d = noisy_photos(tmp_path_factory.mktemp("ray_imgs"), photo_batch, 24)
    (d / "broken.png").write_bytes(b"not an image")
    return d


def assert_same_tables(a: Path, b: Path) -> None:
    for name, keys in (("per_image.csv", ("image", "family")), ("per_level.csv", ("image", "family", "level"))):
        ra, rb = rows(a / name), rows(b / name)
        assert [tuple(r[k] for k in keys) for r in ra] == [tuple(r[k] for k in keys) for r in rb]
        for x, y in zip(ra, rb):
            for col in x:
                if col not in keys:
                    assert abs(float(x[col]) - float(y[col])) <= 1e-6, (name, col, x, y)


def same_summaries(a_dir: Path, b_dir: Path) -> tuple[dict, dict]:
    """Both audits' report.json, after checking their summaries agree to 1e-6."""
    a = json.loads((a_dir / "report.json").read_text())
    b = json.loads((b_dir / "report.json").read_text())
    for fam in a["families"]:
        for m in ("cosine", "euclidean", "divergence_radius"):
            for stat in ("mean", "median", "p5", "p95", "worst"):
                assert a["families"][fam][m][stat] == pytest.approx(b["families"][fam][m][stat], abs=1e-6)
    return a, b


def start(folder: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vfmaudit", "audit", str(folder), *ARGS, "--out", str(out),
                             "--engine", "ray", "--workers", "2", "--shard-size", "4", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_shards(out: Path, n: int, proc: subprocess.Popen, timeout: float = 300) -> list[Path]:
    t0 = time.time()
    while time.time() - t0 < timeout:
        done = sorted((out / "shards").glob("0*.json")) if (out / "shards").exists() else []
        if len(done) >= n:
            return done
        if proc.poll() is not None:
            pytest.fail(f"the audit ended first: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    pytest.fail("no shard finished in time")


def actor_pids(cluster, name: str) -> list[int]:
    """The processes of actors of class `name` on this module's cluster only, never another run's."""
    found = []
    for p in cluster_processes(cluster[1]):
        try:
            if name in " ".join(p.cmdline()):
                found.append(p.pid)
        except psutil.Error:  # ended meanwhile
            continue
    return found


def kill_interrupt_resume(inputs: Path, tmp_path: Path, cluster, actor: str) -> tuple[Path, dict]:
    """The local engine's run in tmp_path/local; then on Ray: one `actor` killed after the first shard,
    the driver interrupted after the third, the run resumed. Returns the Ray run's folder and the
    shard files kept from before the resume (name -> mtime), which the resume must not redo."""
    local = run_cli("audit", inputs, *ARGS, "--out", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    out = tmp_path / "ray"
    proc = start(inputs, out, *on(cluster))
    wait_for_shards(out, 1, proc)
    pids = actor_pids(cluster, actor)
    assert pids, f"no {actor} actor process found"
    os.kill(pids[0], signal.SIGKILL)
    wait_for_shards(out, 3, proc)  # the run goes on past the death
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    files = sorted((out / "shards").glob("0*.json"), key=lambda p: p.stat().st_mtime_ns)
    assert len(files) >= 3
    # On a loaded machine the workers can finish every shard before Ray's shutdown stops them. The
    # newest files then go: the state of a driver that died a little earlier, so some shards are redone.
    for late in files[4:]:
        late.unlink()
    finished = {p.name: p.stat().st_mtime_ns for p in files[:4]}
    res = run_cli("audit", inputs, *ARGS, "--out", out, "--engine", "ray", "--workers", "2", "--shard-size", "4",
                  "--resume", *on(cluster))
    assert res.returncode == 0, res.stderr
    for name, mtime in finished.items():  # finished shards were not redone
        assert (out / "shards" / name).stat().st_mtime_ns == mtime
    return out, finished


def test_a_killed_worker_and_an_interrupted_driver_lose_nothing_and_give_the_local_engines_outputs(
        folder, tmp_path, cluster):
    """One run meets both failures: a worker is killed after the first shard (Ray restarts it and its
    shard is redone), then the driver is interrupted; the resumed run redoes no finished shard, and its
    tables and summaries are the local engine's (nothing lost, nothing doubled, the broken file listed)."""
    out, finished = kill_interrupt_resume(folder, tmp_path, cluster, "ChunkScorer")
    keys = [(r["image"], r["family"]) for r in rows(out / "per_image.csv")]
    assert len(keys) == len(set(keys)) == 24 * 3
    assert_same_tables(tmp_path / "local", out)
    a, b = same_summaries(tmp_path / "local", out)
    assert a["skipped"] == b["skipped"] and len(b["skipped"]) == 1  # the broken file, listed by a worker
    # 25 inputs (the broken file is one) in shards of 4
    assert b["backend"]["engine"] == "ray" and b["backend"]["shards"] == 7 and b["images"]["audited"] == 24
    assert b["backend"]["shards_reused"] == len(finished)
    assert (out / "report.html").exists()


@pytest.fixture(scope="module")
def tar_shards(folder, tmp_path_factory) -> Path:
    """The folder's 24 photographs as 6 WebDataset shards of 4 (a batch each), a corrupt member in the third."""
    import io
    import tarfile

    d = tmp_path_factory.mktemp("ray_tars")
    files = sorted(folder.glob("img*.png"))
    for s in range(6):
        with tarfile.open(d / f"shard-{s:06d}.tar", "w") as tar:
            for i in range(4 * s, 4 * s + 4):
                data = files[i].read_bytes() if (s, i % 4) != (2, 1) else b"broken"
                info = tarfile.TarInfo(f"{i:06d}.png")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return d


def test_ray_data_on_shards_survives_a_killed_actor_and_resumes_with_the_local_engines_outputs(
        tar_shards, tmp_path, cluster):
    """Sharded sources run as a Ray Data pipeline: an encode actor killed mid-run is restarted and its
    chunk redone, an interrupted driver resumes without reading finished shards, and the tables and
    summaries are the local engine's (the corrupt member listed by both)."""
    out, finished = kill_interrupt_resume(tar_shards, tmp_path, cluster, "ChunkScorer")
    assert not list((out / "shards" / "parts").glob("*.json"))  # every chunk merged into its shard
    assert_same_tables(tmp_path / "local", out)
    a, b = same_summaries(tmp_path / "local", out)
    assert a["skipped"] == b["skipped"] and [s["input"] for s in b["skipped"]] == ["shard-000002/000009"]
    assert b["backend"]["pipeline"] == "ray data" and b["backend"]["shards"] == 6
    assert b["backend"]["shards_reused"] == len(finished) and b["images"]["audited"] == 23


def test_without_ray_the_engine_is_one_line(monkeypatch, tmp_path, folder):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    res = run_cli("audit", folder, *ARGS, "--out", tmp_path / "o", "--engine", "ray")
    assert res.returncode == 2 and "pip install 'vfmaudit[ray]'" in res.stderr and res.stderr.count("\n") == 1


def local_and_ray(common: list, tmp_path: Path, cluster, report: str, workers: int = 2) -> tuple[dict, dict]:
    """The same command on the local engine (in tmp_path/local) and on the module's cluster
    (tmp_path/ray): both reports."""
    local = run_cli(*common, "--out", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    ray = run_cli(*common, "--out", tmp_path / "ray", "--engine", "ray", "--workers", str(workers), *on(cluster))
    assert ray.returncode == 0, ray.stderr
    return (json.loads((tmp_path / "local" / report).read_text()),
            json.loads((tmp_path / "ray" / report).read_text()))


def test_downstream_on_ray_gives_the_local_numbers(tmp_path, cluster, model):
    common = ["downstream", "builtin:textures", "-m", model, "--max-per-class", "6", "-p",
              "gaussian_blur,jpeg", "--levels", "2", "--tasks", "linear-probe,knn,retrieval", "-q"]
    a, b = local_and_ray(common, tmp_path, cluster, "downstream.json")
    assert a["tasks"].keys() == b["tasks"].keys()
    for task in a["tasks"]:
        for fam, fam_rows in a["tasks"][task]["families"].items():
            for key, values in fam_rows.items():
                assert np.allclose(values, b["tasks"][task]["families"][fam][key], atol=1e-6), (task, fam, key)
    for fam in a["robustness"]:
        assert np.allclose(a["robustness"][fam]["radius_mean"], b["robustness"][fam]["radius_mean"], atol=1e-6)
    # the variants were encoded by the actors: the driver found them in the cache
    assert b["embeddings_reused"] >= 3


def test_attack_on_ray_gives_the_local_images_and_numbers(folder, tmp_path, cluster, model):
    """Square on the ONNX export, 3 shards over 2 actors: the same adversarial images (each batch has
    its own generator) and figures as the local engine; a resume reuses every shard the actors wrote."""
    common = ["attack", folder, "-m", model, "--method", "square", "--queries", "15", "--eps", "4", "--max-images",
              "5", "--batch-size", "2", "--shard-size", "2", "-q"]
    a, b = local_and_ray([*common, "--save-images"], tmp_path, cluster, "attack.json")
    assert b["engine"] == {"engine": "ray", "shards": 3, "reused": 0} and b["images"] == a["images"]
    for name in sorted(p.name for p in (tmp_path / "local" / "adversarial" / "eps_4").iterdir()):
        assert (tmp_path / "local" / "adversarial" / "eps_4" / name).read_bytes() == \
            (tmp_path / "ray" / "adversarial" / "eps_4" / name).read_bytes()
    assert len(a["per_image"]) == 5 and a["per_image"][0]["cosine"] < 1
    for x, y in zip(a["per_image"], b["per_image"]):
        assert x["image"] == y["image"] and x["cosine"] == pytest.approx(y["cosine"], abs=1e-6)
    again = run_cli(*common, "--out", tmp_path / "ray", "--resume", "--engine", "ray", *on(cluster))
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "ray" / "attack.json").read_text())["engine"]["reused"] == 3


def test_the_edit_search_on_ray_gives_the_local_chains(tmp_path, cluster):
    """The oracle-gated search, 2 shards on one actor (it builds the tested model, the oracle and the
    probe again; two actors are the Square test's): the local run's chains, figures and edited images."""
    data = colour_classes(tmp_path / "colours", per_class=6)
    common = ["attack", "--method", "search", "-m", "timm:test_vit", "--oracle", "openclip:ViT-S-32", "--dataset",
              data, "-p", "hue:-0.3:0.3,jpeg:10:60", "--levels", "2", "--max-edits", "2", "--batch-size", "4",
              "--shard-size", "4", "--save-images", "-q"]
    a, b = local_and_ray(common, tmp_path, cluster, "attack.json", workers=1)
    assert b["engine"] == {"engine": "ray", "shards": 2, "reused": 0}
    assert [r["chain_spec"] for r in a["per_image"]] == [r["chain_spec"] for r in b["per_image"]]
    assert any(r["chain_spec"] for r in a["per_image"])  # some edits were accepted
    for key in ("sa", "pa", "fmr", "approved"):
        assert a["search"][key] == b["search"][key]
    for x, y in zip(a["per_image"], b["per_image"]):
        assert x["cosine"] == pytest.approx(y["cosine"], abs=1e-6)
    for p in sorted((tmp_path / "local" / "edited").iterdir()):
        assert p.read_bytes() == (tmp_path / "ray" / "edited" / p.name).read_bytes()


def test_gpus_per_worker_on_a_cluster_without_gpus_is_one_line_not_a_hang(folder, tmp_path, cluster):
    res = run_cli("audit", folder, *ARGS, "--out", tmp_path / "o", "--engine", "ray", "--workers", "1",
                  "--gpus-per-worker", "1", *on(cluster))
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "--gpus-per-worker 1 asks each actor for a GPU share" in lines[0] and "has 0 GPU(s)" in lines[0]


@pytest.mark.parametrize("address,needle", [
    ("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1 (Connection refused): start it (ray start --head)"),
    ("localhost", "--ray-address must be auto, HOST:PORT or ray://HOST:PORT, got 'localhost'"),
])
@pytest.mark.parametrize("command", ["audit", "downstream"])
def test_an_unreachable_or_malformed_ray_address_is_one_line_in_seconds(folder, tmp_path, address, needle, command):
    t0 = time.monotonic()
    inputs = [folder, *ARGS] if command == "audit" else ["builtin:textures", *ARGS[:2], "-q"]
    res = run_cli(command, *inputs, "--out", tmp_path / "o", "--engine", "ray", "--ray-address", address)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr
    assert time.monotonic() - t0 < 60  # not ray.init's minutes of retries
    assert not (tmp_path / "o").exists()  # before any work


def test_a_user_error_in_a_worker_reaches_the_driver_as_its_own_one_line(cluster):
    """A VfmauditError raised in an actor is raised again in the driver as itself (the CLI's one line),
    not as Ray's wrapped traceback."""
    from vfmaudit.engines.ray import map_actor_pool, ray_session
    from vfmaudit.errors import VfmauditError

    class Failing:  # local: pickled by value for the actors
        def __call__(self, batch):
            raise VfmauditError(f"item {int(batch['a'][0])} is unusable", param="inputs")

    with pytest.raises(VfmauditError) as caught, ray_session(cluster[0]):
        list(map_actor_pool([{"a": 7}], Failing, {}, 1))
    assert str(caught.value) == "item 7 is unusable" and type(caught.value) is VfmauditError


def test_bench_audit_on_ray_measures_scaling_beside_the_local_engine(tmp_path, photo_batch, model):
    (tmp_path / "imgs").mkdir()
    images = noisy_photos(tmp_path / "imgs", photo_batch, 4)
    res = run_cli("bench", "audit", images, "-m", model, "-p", "jpeg", "--levels", "2", "--engine", "ray",
                  "--workers", "1", "--json", tmp_path / "b.json")
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["schema"] == "vfmaudit.bench.audit_scaling" and data["images"] == 4
    local, ray_row = data["rows"]
    assert (local["engine"], ray_row["engine"], ray_row["workers"]) == ("local", "ray", 1)
    for row in data["rows"]:
        assert row["images_per_s"] == pytest.approx(4 / row["seconds"])
    assert ray_row["speedup_vs_1_ray_worker"] == 1.0 and data["fingerprint"]["cpu_cores"] == os.cpu_count()
