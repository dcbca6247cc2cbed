"""The attack over shards: the images found do not depend on the shard size or the store, a killed
run resumes without redoing a finished shard and gives the uninterrupted run's outputs, and the
engine options are checked before any model is built. (The Ray engine: tests/test_ray_engine.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cli_runner import run_cli
from helpers import noisy_photos, rows
from vfmaudit.attack import AttackConfig, run_attack

MODEL = "timm:test_vit"
# 6 images in 3 shards of 2; 20 steps make a shard last long enough (0.5 s here) to kill the run between two
OPTIONS = dict(model=MODEL, eps=(2.0, 4.0), steps=20, batch_size=2, shard_size=2)
CLI = ["-m", MODEL, "--eps", "2,4", "--steps", "20", "--batch-size", "2", "--shard-size", "2", "-q"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photo_batch):
    return noisy_photos(tmp_path_factory.mktemp("attack_shard_imgs"), photo_batch, 6)


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("attack_ref") / "ref"
    return run_attack(AttackConfig(images=[str(folder)], out=str(out), **OPTIONS)), out


def test_the_images_found_do_not_depend_on_the_shard_size_or_the_store(folder, reference):
    """Each batch has its own generator: shards of 2 written to disk and one shard of 6 in memory find
    the same images; the batch's seed does matter (another seed, other images)."""
    ref, _ = reference
    whole = run_attack(AttackConfig(images=[str(folder)], **{**OPTIONS, "shard_size": 6}))
    assert ref.shards == {"engine": "local", "shards": 3, "reused": 0} and whole.shards["shards"] == 1
    for eps in (2.0, 4.0):
        assert np.array_equal(ref.adversarial_images[eps], whole.adversarial_images[eps])
        assert not np.array_equal(ref.adversarial_images[eps], ref.clean_images)
    assert ref.per_image == whole.per_image
    other = run_attack(AttackConfig(images=[str(folder)], **{**OPTIONS, "seed": 1, "max_images": 2}))
    assert not np.array_equal(other.adversarial_images[4.0], ref.adversarial_images[4.0][:2])


def _wait_for(path, proc, timeout=300.0):
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the attack ended first: {proc.stderr.read()[-2000:]}")
        if time.time() - t0 > timeout:
            pytest.fail(f"{path.name} was not written in time")
        time.sleep(0.02)


def test_a_killed_run_resumes_without_redoing_finished_shards(folder, reference, tmp_path):
    ref, ref_out = reference
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "vfmaudit", "attack", str(folder), *CLI, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for(out / "shards" / "00000.npy", proc)
    proc.send_signal(signal.SIGKILL)  # no handler runs: only what was on disk survives
    proc.wait(timeout=60)
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("0*.npy")}
    assert 1 <= len(finished) < 3 and not (out / "attack.json").exists(), finished
    res = run_cli("attack", folder, *CLI, "--out", out, "--resume")
    assert res.returncode == 0, res.stderr
    for name, mtime in finished.items():
        assert (out / "shards" / name).stat().st_mtime_ns == mtime  # not redone
    report = json.loads((out / "attack.json").read_text())
    assert report["engine"] == {"engine": "local", "shards": 3, "reused": len(finished)}
    assert rows(out / "per_image.csv") == rows(ref_out / "per_image.csv")  # the uninterrupted run's numbers
    assert report["budgets"] == json.loads((ref_out / "attack.json").read_text())["budgets"]


def test_resume_with_other_options_is_refused_in_one_line(folder, reference, tmp_path):
    _, ref_out = reference
    out = tmp_path / "copy"
    import shutil

    shutil.copytree(ref_out, out)
    res = run_cli("attack", folder, *CLI[:-1], "--eps", "2,8", "-q", "--out", out, "--resume")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "cannot resume the run" in lines[0] and "eps" in lines[0] and "--overwrite to start again" in lines[0]
    # with --overwrite the run starts again: the earlier shards are not mixed in
    fresh = run_cli("attack", folder, *CLI, "--max-images", "2", "--out", out, "--overwrite")
    assert fresh.returncode == 0, fresh.stderr
    assert sorted(p.name for p in (out / "shards").glob("0*.npy")) == ["00000.npy"]


@pytest.mark.parametrize("args, needle", [
    (["--engine", "ray"], "pass --out DIR too"),
    (["--resume"], "pass --out DIR too"),
    (["--engine", "spark"], "'spark'; choose from local, ray"),
    (["--shard-size", "0"], "--shard-size must be >= 1"),
    (["--workers", "0"], "--workers must be >= 1"),
])
def test_engine_options_are_checked_in_one_line(folder, args, needle):
    res = run_cli("attack", folder, "-m", MODEL, *args, "-q")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, res.stderr)
