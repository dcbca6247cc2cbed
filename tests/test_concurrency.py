"""Two processes on one output: folder locks, atomic cache entries, duplicate rows counted once."""

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_runner import run_cli
from helpers import noisy_photos, rows
from vfmaudit.errors import VfmauditError
from vfmaudit.files import LOCK_NAME, OutputInUse, lock_folder, lock_output_file

AUDIT = ["-m", "timm:test_vit", "-p", "jpeg,brightness,gaussian_noise", "--levels", "4", "--batch-size", "8"]


@pytest.fixture(scope="module")
def many_images(tmp_path_factory, photo_batch):
    return noisy_photos(tmp_path_factory.mktemp("many"), photo_batch, 48)


def start_audit(images, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "vfmaudit", "audit", str(images), *AUDIT, "--out", str(out),
                             "-q", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after_first_rows(proc, out: Path, timeout: float = 300) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if (out / "per_image.csv").exists() and len(rows(out / "per_image.csv")) >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            pytest.fail(f"the audit ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the audit wrote no rows in time")


def assert_each_row_once(out: Path, n_images: int) -> None:
    image_rows = rows(out / "per_image.csv")
    level_rows = rows(out / "per_level.csv")
    assert len(image_rows) == n_images * 3
    assert len({(r["image"], r["family"]) for r in image_rows}) == len(image_rows)
    assert len({(r["image"], r["family"], r["level"]) for r in level_rows}) == len(level_rows) == n_images * 3 * 4
    report = json.loads((out / "report.json").read_text())
    assert all(f["n_images"] == n_images for f in report["families"].values())
    assert report["images"]["audited"] == n_images


def test_a_resume_while_another_process_holds_the_folder_is_refused_then_runs(tmp_path, many_images):
    """The lock is held by a helper process for as long as the test needs (no race on who gets there
    first): the resume is refused in one line, and once the holder lets go it runs, each row once."""
    out = tmp_path / "cr"
    kill_after_first_rows(start_audit(many_images, out), out)
    with held_elsewhere(_hold_lock, out) as holder:
        before = (out / "per_image.csv").read_bytes()
        refused = run_cli("audit", many_images, *AUDIT, "--out", out, "--resume", "-q")
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert f"is being written by another vfmaudit process (pid {holder.pid}" in refused.stderr
        assert "--out" in refused.stderr and str(out) in refused.stderr
        assert (out / "per_image.csv").read_bytes() == before  # nothing touched
    res = run_cli("audit", many_images, *AUDIT, "--out", out, "--resume", "-q")
    assert res.returncode == 0, res.stderr
    assert_each_row_once(out, 48)


def test_a_killed_runs_lock_does_not_block_resume(tmp_path, many_images):
    out = tmp_path / "killed"
    kill_after_first_rows(start_audit(many_images, out), out)
    assert (out / LOCK_NAME).exists()  # the file stays; the OS released the lock with the process
    res = run_cli("audit", many_images, *AUDIT, "--out", out, "--resume", "-q")
    assert res.returncode == 0, res.stderr
    assert_each_row_once(out, 48)


def test_duplicated_rows_are_counted_once_and_reported(tmp_path, photo_batch):
    images = tmp_path / "imgs"
    images.mkdir()
    for i, img in enumerate(photo_batch):
        Image.fromarray(img).save(images / f"p{i}.png")
    out = tmp_path / "dup"
    args = ["audit", images, "-p", "jpeg,brightness", "--levels", "3", "--out", out]
    assert run_cli(*args).returncode == 0
    for name in ("per_image.csv", "per_level.csv"):  # as two unlocked runs used to leave it
        lines = (out / name).read_text().splitlines(keepends=True)
        (out / name).write_text("".join(lines + lines[1:3]))
    res = run_cli(*args, "--resume")
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 2 and "2 duplicated row(s) in per_image.csv were ignored" in res.stderr
    report = json.loads((out / "report.json").read_text())
    assert all(f["n_images"] == 4 and f["cosine"]["n"] == 4 for f in report["families"].values())
    assert len(rows(out / "per_image.csv")) == 4 * 2 and len(report["warnings"]) == 2


def _hold_lock(path: str, ready, release) -> None:
    with lock_folder(path):
        ready.set()
        release.wait(60)


def _hold_file_lock(path: str, ready, release) -> None:
    with lock_output_file(path):
        ready.set()
        release.wait(60)


@contextlib.contextmanager
def held_elsewhere(hold, path):
    """`hold(path, ready, release)` in a spawned process for as long as the block runs; yields the process."""
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=hold, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        yield holder
    finally:
        release.set()
        holder.join(60)


def test_lock_names_the_holder_and_is_reentrant_in_one_process(tmp_path):
    with held_elsewhere(_hold_lock, tmp_path / "o") as holder:
        with pytest.raises(OutputInUse, match=f"pid {holder.pid}") as refused:
            with lock_folder(tmp_path / "o"):
                pass
        assert isinstance(refused.value, VfmauditError) and refused.value.param == "out"
    with lock_folder(tmp_path / "o"), lock_folder(tmp_path / "o"):  # the same process may nest it
        with lock_output_file(tmp_path / "o" / "x.onnx"):
            pass
    with lock_folder(tmp_path / "o"):  # and it was released
        pass


def test_calibrate_into_a_file_another_process_is_writing_is_refused(tmp_path):
    """The INT8 output file's lock holds across processes: a second calibrate stops in one line,
    naming the holder, and leaves the file alone."""
    from vfmaudit import export_onnx

    fp32 = export_onnx("timm:test_resnet", tmp_path / "r18.onnx", exporter="torchscript").path
    out = tmp_path / "r18.int8.onnx"
    with held_elsewhere(_hold_file_lock, out) as holder:
        res = run_cli("calibrate", fp32, "--out", out, "--size", "8", "--cache-dir", tmp_path / "c", "-q")
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert f"pid {holder.pid}" in lines[0] and not out.exists()


def _quantize_once(fp32: str, out: str, cache_dir: str, queue) -> None:
    from vfmaudit.artefact import read_onnx_info
    from vfmaudit.calibration import build_calibration_set, quantize_onnx
    from vfmaudit.data import sample_items

    calib = build_calibration_set(sample_items(4), read_onnx_info(fp32).preprocess, size=8, cache_dir=cache_dir)
    quantize_onnx(fp32, out, calib, batch_size=4, cache_dir=cache_dir)
    queue.put(out)


def test_two_processes_filling_one_range_cache_leave_one_valid_entry(tmp_path):
    """Two calibrations of one file and set at once: both finish, one ranges entry is published (written
    under a private name, then renamed), and it is valid JSON both models agree with."""
    import onnx
    from onnx import numpy_helper

    from vfmaudit import export_onnx

    fp32 = str(export_onnx("timm:test_resnet", tmp_path / "r18.onnx", exporter="torchscript").path)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_quantize_once, args=(fp32, str(tmp_path / f"q{i}.onnx"), str(tmp_path / "c"), queue))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    assert [p.exitcode for p in procs] == [0, 0]
    entries = sorted((tmp_path / "c").glob("ranges-*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text())
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".") and "ranges" in p.name]
    a, b = (onnx.load(str(tmp_path / f"q{i}.onnx")) for i in range(2))
    scales = lambda m: {i.name: numpy_helper.to_array(i) for i in m.graph.initializer if "scale" in i.name}  # noqa: E731
    sa, sb = scales(a), scales(b)
    assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def _build_set(items_ids, cache_dir, out_queue) -> None:
    from vfmaudit.calibration import build_calibration_set
    from vfmaudit.data import sample_items
    from vfmaudit.models.preprocess import PreprocessSpec

    items = [it for it in sample_items() if it.id in items_ids]
    spec = PreprocessSpec(size=(64, 64), resize=64)
    calib = build_calibration_set(items, spec, size=48, seed=3, cache_dir=cache_dir)
    out_queue.put((calib.path.name, np.asarray(calib.images).tobytes().hex()[:4096], len(calib)))


def test_two_concurrent_builds_of_one_calibration_set_leave_one_valid_entry(tmp_path):
    from vfmaudit.calibration import build_calibration_set
    from vfmaudit.data import sample_items
    from vfmaudit.models.preprocess import PreprocessSpec

    ids = [it.id for it in sample_items()[:4]]
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_build_set, args=(ids, str(tmp_path), q)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert got[0] == got[1]
    files = sorted(f.name for f in tmp_path.iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".npy")  # no temporaries left
    cached = build_calibration_set([it for it in sample_items() if it.id in ids], PreprocessSpec(size=(64, 64), resize=64),
                                   size=48, seed=3, cache_dir=tmp_path)
    assert cached.cached and len(cached) == got[0][2] == len(cached.index)
    assert np.asarray(cached.images).tobytes().hex()[:4096] == got[0][1]


def test_atomically_written_files_get_ordinary_permissions(tmp_path):
    from vfmaudit.files import write_json

    path = write_json({"a": 1}, tmp_path / "r.json")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600: reports are read by others
