"""Audits at dataset scale: the same images from a folder, local WebDataset tars, local Parquet, and
the same files on a real S3 server (moto, started on 127.0.0.1) give identical per-image values;
damaged and unreachable sources are one line (exit 2) or a listed skip; resume skips finished
shards; Parquet tables; no credential is ever written."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from cli_runner import CliRun, run_cli
from helpers import image_struct, noisy_photos, tiny_onnx, write_shards, write_tar
from s3_server import CREDENTIALS, moto_server, upload

N = 10
PER_SHARD = 4  # 10 images: shards of 4, 4 and 2
OPTIONS = ["-p", "jpeg,brightness,gaussian_noise", "--levels", "3", "--batch-size", "4", "-q"]
ARGS: list[str] = []  # set by `model`: -m <the ONNX file> and OPTIONS
BUCKET = "eval-sets"


@pytest.fixture(scope="module", autouse=True)
def model(tmp_path_factory) -> str:
    path = tiny_onnx(tmp_path_factory.mktemp("onnx"))
    ARGS[:] = ["-m", path, *OPTIONS]
    return path


@pytest.fixture(scope="module")
def sets(tmp_path_factory, photo_batch) -> dict:
    root = tmp_path_factory.mktemp("sources")
    (root / "folder").mkdir()
    folder = noisy_photos(root / "folder", photo_batch, N)
    files = sorted(folder.glob("*.png"))
    blobs = [f.read_bytes() for f in files]
    tars = write_shards(root / "tars", blobs, PER_SHARD, [str(i % 3) for i in range(N)])
    table = pa.table({"image": image_struct(blobs), "label": list(range(N)), "caption": [f"c{i}" for i in range(N)]})
    pq.write_table(table, root / "set.parquet", row_group_size=3)
    return {"root": root, "folder": folder, "files": files, "blobs": blobs, "tars": tars,
            "parquet": root / "set.parquet"}


@pytest.fixture(scope="module")
def s3(sets):
    """The tars and the Parquet file in a bucket of a real S3 server; its endpoint."""
    with moto_server() as endpoint:
        files = {f"wds/{p.name}": p.read_bytes() for p in sorted(sets["tars"].glob("*.tar"))}
        files["pq/set.parquet"] = sets["parquet"].read_bytes()
        upload(endpoint, BUCKET, files)
        yield endpoint


@pytest.fixture()
def s3_env(s3, monkeypatch):
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    return s3


def values(out: Path, name: str = "per_image.csv") -> list[tuple]:
    """(family, metric values) per row, in order: the ids aside."""
    with open(out / name, newline="") as f:
        return [(r["family"], *(r[k] for k in r if k not in ("image", "family"))) for r in csv.DictReader(f)]


def audit(src, out: Path, *extra) -> CliRun:
    return run_cli("audit", *([src] if isinstance(src, (str, Path)) else src), *ARGS, "--out", out, *extra)


# -- the same values from every store ---------------------------------------------------------
def test_folder_tars_parquet_and_s3_give_identical_per_image_values(sets, s3_env, tmp_path):
    runs = {"folder": sets["folder"], "tars": sets["tars"], "pattern": str(sets["tars"] / "shard-{000000..000002}.tar"),
            "parquet": sets["parquet"], "s3_tars": f"s3://{BUCKET}/wds/", "s3_pattern":
            f"s3://{BUCKET}/wds/shard-{{000000..000002}}.tar", "s3_parquet": f"s3://{BUCKET}/pq/set.parquet"}
    for name, src in runs.items():
        res = audit(src, tmp_path / name)
        assert res.returncode == 0, (name, res.stderr)
    reference = values(tmp_path / "folder")
    assert len(reference) == N * 3
    for name in runs:
        assert values(tmp_path / name) == reference, name
    ids = [r["image"] for r in csv.DictReader(open(tmp_path / "s3_tars" / "per_image.csv"))]
    assert ids[0] == "shard-000000/000000" and ids[-1] == "shard-000002/000009"
    pids = [r["image"] for r in csv.DictReader(open(tmp_path / "s3_parquet" / "per_image.csv"))]
    assert pids[0] == "set/0" and pids[-1] == "set/9"
    # report.html shows the worst images' strips from inside the shards, as it does from files
    thumbs = {name: (tmp_path / name / "report.html").read_text().count("data:image/") for name in runs}
    assert thumbs["folder"] > 0 and len(set(thumbs.values())) == 1, thumbs
    report = json.loads((tmp_path / "s3_tars" / "report.json").read_text())
    assert report["source"]["kinds"] == ["webdataset"] and report["source"]["shards"] == 3
    assert report["images"] == {"audited": N, "skipped": 0}


def test_tars_and_parquet_list_their_items_as_the_folder_decodes_them(sets):
    """Below the CLI: the images themselves, streamed and re-read by offset / row group."""
    from vfmaudit.data import load_image, open_source

    expected = [load_image(f) for f in sets["files"]]
    for spec in (sets["tars"], sets["parquet"]):
        source = open_source([str(spec)])
        streamed = [it.load() for it in source.items()]
        located = source.list_items()
        assert len(streamed) == len(located) == N
        for i in (0, 5, 3, 9, 1):  # out of order: the re-reader reads other blocks again
            assert np.array_equal(located[i].load(), expected[i])
        assert all(np.array_equal(a, b) for a, b in zip(streamed, expected))
    labels = [it.label for it in open_source([str(sets["tars"])]).items()]
    assert labels == [str(i % 3) for i in range(N)]


def test_an_hf_save_to_disk_folder_and_arrow_files_are_read_with_class_names(sets, tmp_path):
    """A datasets save_to_disk folder: Arrow IPC stream files listed in state.json, ClassLabel names
    in dataset_info.json."""
    from vfmaudit.data import open_source

    hf = tmp_path / "hf"
    hf.mkdir()
    table = pa.table({"img": image_struct(sets["blobs"]), "label": [i % 2 for i in range(N)]})
    for k, part in enumerate((table.slice(0, 6), table.slice(6))):
        with pa.ipc.new_stream(hf / f"data-0000{k}-of-00002.arrow", part.schema) as w:
            w.write_table(part)
    (hf / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00002.arrow"},
                                                               {"filename": "data-00001-of-00002.arrow"}]}))
    (hf / "dataset_info.json").write_text(json.dumps({"features": {
        "img": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": ["cat", "dog"]}}}))
    source = open_source([str(hf)])
    items = list(source.items())
    assert [s.kind for s in source.shards] == ["parquet", "parquet"]
    assert [it.label for it in items] == ["cat", "dog"] * 5
    assert items[7].id == "data-00001-of-00002/1"
    assert np.array_equal(source.list_items()[8].load(), np.asarray(Image.open(sets["files"][8]).convert("RGB")))


# -- damaged inputs: a listed skip, or one line before any work -----------------------------------
def test_damaged_members_and_shards_are_listed_skips_not_fatal(sets, tmp_path):
    blobs = sets["blobs"]
    bad = tmp_path / "bad"
    bad.mkdir()
    write_tar(bad / "a.tar", [("000.png", blobs[0]), ("001.png", b"not a png at all"), ("002.txt", b"no image"),
                              ("003.png", blobs[3])])
    whole = write_tar(tmp_path / "whole.tar", [(f"{i:03d}.png", blobs[i]) for i in range(4)]).read_bytes()
    (bad / "b.tar").write_bytes(whole[:len(whole) // 2 + 700])  # cut inside the third member
    res = audit(bad, tmp_path / "out")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    skipped = {s["input"]: s["reason"] for s in report["skipped"]}
    assert "a/001" in skipped and "not an image" in skipped["a/001"]
    assert "a/002" in skipped and "no image in the sample (it has: txt)" in skipped["a/002"]
    assert "b" in skipped and "truncated or corrupt tar after" in skipped["b"]
    audited = {r["image"] for r in csv.DictReader(open(tmp_path / "out" / "per_image.csv"))}
    assert {"a/000", "a/003", "b/000"} <= audited and len(audited) == report["images"]["audited"]


def one_line_exit_2(res, *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    for needle in needles:
        assert needle in line, line


def test_parquet_without_an_image_column_or_with_a_wrong_name_is_one_line(sets, tmp_path):
    pq.write_table(pa.table({"label": [1, 2], "caption": ["a", "b"]}), tmp_path / "noimg.parquet")
    out = tmp_path / "out"
    one_line_exit_2(audit(tmp_path / "noimg.parquet", out), "has no image column", "label (int64)", "--image-key")
    one_line_exit_2(audit(sets["parquet"], out, "--image-key", "picture"), "no column 'picture'",
                    "image (struct<bytes: binary, path: string>)", "caption (string)")
    one_line_exit_2(audit(sets["parquet"], out, "--image-key", "caption"), "'caption' is string, not image bytes")
    assert not out.exists()  # nothing written


def test_patterns_that_match_nothing_or_miss_shards_are_one_line(sets, tmp_path):
    out = tmp_path / "out"
    one_line_exit_2(audit(str(sets["tars"] / "none-{000..003}.tar"), out), "matches no file")
    one_line_exit_2(audit(str(sets["tars"] / "shard-{000000..000004}.tar"), out), "2 of the 5 shards",
                    "shard-000003.tar")
    one_line_exit_2(audit(str(sets["tars"] / "nothing-*.tar"), out), "matches no file")
    one_line_exit_2(audit(str(sets["root"] / "missing.tar"), out), "no such file")
    assert not out.exists()


def test_a_missing_bucket_and_an_unreachable_endpoint_are_one_line(s3_env, tmp_path):
    out = tmp_path / "out"
    one_line_exit_2(audit("s3://no-such-bucket/wds/shard-000000.tar", out), "bucket no-such-bucket",
                    "does not exist")
    one_line_exit_2(audit("s3://no-such-bucket/wds/", out), "no-such-bucket")
    res = audit(f"s3://{BUCKET}/wds/", out, "--storage-option", "endpoint_url=http://127.0.0.1:9")
    one_line_exit_2(res, "cannot be reached", "endpoint")
    assert not out.exists()


def test_missing_credentials_are_one_line_in_a_fresh_process(s3, tmp_path, model):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=s3, AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true")
    res = subprocess.run([sys.executable, "-m", "vfmaudit", "audit", f"s3://{BUCKET}/wds/", *ARGS, "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    one_line_exit_2(res, "no credentials found", "AWS_ACCESS_KEY_ID")
    assert not (tmp_path / "out").exists()


def test_a_source_whose_extra_is_not_installed_is_one_line(sets, tmp_path):
    """pyarrow (and fsspec) made unimportable in a fresh interpreter: the data extra is named."""
    code = ("import sys; sys.modules['pyarrow'] = None; sys.modules['fsspec'] = None; "
            "from vfmaudit.cli import main; main(sys.argv[1:])")
    for src, needle in ((sets["parquet"], "pyarrow"), (sets["tars"], "fsspec")):
        res = subprocess.run([sys.executable, "-c", code, "audit", str(src), *ARGS, "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, timeout=300)
        one_line_exit_2(res, "pip install 'vfmaudit[data]'", needle)
    assert not (tmp_path / "o").exists()


def test_no_credential_is_printed_or_written(sets, s3_env, tmp_path):
    secret = "sEcReT-value-1234"
    res = audit(f"s3://{BUCKET}/pq/set.parquet", tmp_path / "out", "--storage-option", f"secret={secret}",
                "--storage-option", "key=testing", "--storage-option", "client_kwargs.region_name=us-east-1",
                "--json", tmp_path / "result.json")
    assert res.returncode == 0, res.stderr
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] + [tmp_path / "result.json"]
    for p in written:
        assert secret.encode() not in p.read_bytes(), p
    assert secret not in res.stdout + res.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["source"]["storage_options"]["secret"] == "***"
    assert report["source"]["storage_options"]["client_kwargs"] == {"region_name": "us-east-1"}
    bad = audit(f"s3://{BUCKET}/pq/set.parquet", tmp_path / "o2", "--storage-option",
                "endpoint_url=http://127.0.0.1:9", "--storage-option", f"secret={secret}")
    assert bad.returncode == 2 and secret not in bad.stderr


# -- resume and tables ---------------------------------------------------------------------------
def test_resume_skips_finished_shards_unopened(sets, tmp_path):
    shards = sorted(sets["tars"].glob("*.tar"))
    work = tmp_path / "tars"
    work.mkdir()
    for p in shards:
        (work / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    assert audit(work, out).returncode == 0
    full = values(out)
    done = [json.loads(line) for line in (out / "shards_done.jsonl").read_text().splitlines()]
    assert [d["shard"] for d in done] == ["shard-000000", "shard-000001", "shard-000002"]
    assert [d["inputs"] for d in done] == [4, 4, 2]
    # the state of a run stopped inside the last shard: its rows and its done line gone
    (out / "shards_done.jsonl").write_text("".join(json.dumps(d) + "\n" for d in done[:2]))
    for name in ("per_image.csv", "per_level.csv"):
        lines = (out / name).read_text().splitlines(keepends=True)
        (out / name).write_text("".join(line for line in lines if not line.startswith("shard-000002/")))
    # a finished shard that a resumed run opened would now be listed as corrupt
    (work / "shard-000000.tar").write_bytes(b"\0" * 10)
    res = audit(work, out, "--resume")
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["skipped"] == [] and report["images"]["audited"] == N
    assert report["source"]["shards_reused"] == 2
    assert sorted(values(out)) == sorted(full)


def test_parquet_tables_are_read_by_pyarrow_pandas_and_every_reader_of_the_csv(sets, tmp_path):
    import pandas as pd

    assert audit(sets["tars"], tmp_path / "csv").returncode == 0
    res = audit(sets["tars"], tmp_path / "pq", "--tables", "parquet")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "pq"
    assert not (out / "per_image.csv").exists() and (out / "per_image.parquet").exists()
    table = pq.read_table(out / "per_image.parquet")
    assert table.schema.field("cosine").type == pa.float64() and table.schema.field("image").type == pa.string()
    frame = pd.read_parquet(out / "per_level.parquet")
    csv_rows = list(csv.DictReader(open(tmp_path / "csv" / "per_level.csv")))
    assert len(frame) == len(csv_rows)
    assert np.allclose(frame["cosine"].to_numpy(), [float(r["cosine"]) for r in csv_rows], rtol=0, atol=0)
    a = json.loads((tmp_path / "csv" / "report.json").read_text())["families"]
    b = json.loads((out / "report.json").read_text())["families"]
    assert a == b
    assert json.loads((out / "report.json").read_text())["tables"] == ["per_image.parquet", "per_level.parquet"]
    cmp = run_cli("report", "compare", tmp_path / "csv", out, "--out", tmp_path / "compare.html", "--json",
                  tmp_path / "compare.json")
    assert cmp.returncode == 0, cmp.stderr
    compared = json.loads((tmp_path / "compare.json").read_text())
    assert compared["moved_most"], compared  # the per-image rows, read from the Parquet table
    again = audit(sets["tars"], out, "--tables", "parquet", "--resume")  # resumes from the Parquet tables
    assert again.returncode == 0, again.stderr
    assert pq.read_table(out / "per_image.parquet").num_rows == N * 3
    both = audit(sets["tars"], tmp_path / "both", "--tables", "both")
    assert both.returncode == 0 and (tmp_path / "both" / "per_image.csv").exists()
    assert (tmp_path / "both" / "per_image.parquet").exists()
    one_line_exit_2(audit(sets["tars"], tmp_path / "x", "--tables", "xlsx"), "--tables must be one of")


# -- the other commands on sharded sources ---------------------------------------------------------
def assert_close(a, b, path="") -> None:
    """Equal structures, numbers to 1e-9 (a linear probe's float sums may differ in the last bits)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, abs=1e-9), path
    else:
        assert a == b, path



def test_downstream_from_labelled_shards_equals_the_class_folders(tmp_path):
    """The same images as class folders and as a WebDataset with txt labels: the same numbers."""
    from vfmaudit.data.datasets import load_dataset

    data = load_dataset("builtin:textures", 8)
    tree = tmp_path / "tree"
    members = []
    for i, (item, label) in enumerate(zip(data.items, data.labels)):
        name = data.class_names[label]
        (tree / name).mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(item.load()).save(buf, "PNG")
        (tree / name / f"{i:03d}.png").write_bytes(buf.getvalue())
        members += [(f"{i:05d}.png", buf.getvalue()), (f"{i:05d}.txt", name.encode())]
    write_tar(tmp_path / "set.tar", members)
    common = ["-m", ARGS[1], "--tasks", "knn,linear-probe", "-p", "jpeg", "--levels", "2", "-q"]
    a = run_cli("downstream", tree, *common, "--out", tmp_path / "a")
    b = run_cli("downstream", tmp_path / "set.tar", *common, "--out", tmp_path / "b")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    ra = json.loads((tmp_path / "a" / "downstream.json").read_text())
    rb = json.loads((tmp_path / "b" / "downstream.json").read_text())
    assert ra["dataset"]["classes"] == rb["dataset"]["classes"] == sorted(data.class_names)
    assert_close(ra["tasks"], rb["tasks"])
    unlabelled = write_tar(tmp_path / "nolabel.tar", [m for m in members if m[0].endswith(".png")])
    one_line_exit_2(run_cli("downstream", unlabelled, *common, "--out", tmp_path / "c"), "has no labels",
                    "--label-key")


def test_attack_calibrate_and_export_check_read_shards_from_s3(sets, s3_env, tmp_path, model):
    src = f"s3://{BUCKET}/wds/shard-{{000000..000001}}.tar"
    res = run_cli("attack", src, "-m", model, "--method", "square", "--queries", "20", "--eps", "4",
                  "--max-images", "3", "--out", tmp_path / "attack", "-q")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "attack" / "attack.json").read_text())
    assert report["images"]["attacked"] == 3  # --max-images: the stream stops there
    ids = [r["image"] for r in csv.DictReader(open(tmp_path / "attack" / "per_image.csv"))]
    assert ids and all(i.startswith("shard-000000/") for i in ids)
    res = run_cli("export", "check", model, "--images", src, "--json", tmp_path / "p.json")
    assert res.returncode in (0, 1), res.stderr  # the verdict is parity's; the images were read
    parity = json.loads((tmp_path / "p.json").read_text())
    assert [r["image"] for r in parity["per_image"]][:1] == ["shard-000000/000000"]
    assert len({r["image"] for r in parity["per_image"]}) == 2 * PER_SHARD  # the two shards' images
    res = run_cli("calibrate", model, "--images", f"s3://{BUCKET}/pq/set.parquet", "--out", tmp_path / "int8.onnx",
                  "--size", "8", "-q")
    assert res.returncode in (0, 1), res.stderr
    assert (tmp_path / "int8.onnx").exists()


def test_a_gate_policy_reads_its_images_from_s3_and_dry_run_checks_the_bucket(sets, s3_env, tmp_path, model):
    policy = tmp_path / "policy.toml"
    policy.write_text(f'model = "{model}"\nimages = ["s3://{BUCKET}/wds/"]\n'
                      f'storage_options = {{ client_kwargs = {{ region_name = "us-east-1" }} }}\n'
                      f'[audit]\nperturbations = "jpeg"\nlevels = 2\n'
                      f'[[check]]\nmetric = "audit.jpeg.divergence_radius.p95"\nmax = 1.0\n')
    dry = run_cli("gate", policy, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    res = run_cli("gate", policy, "--out", tmp_path / "gate", "-q")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(open(tmp_path / "gate" / "audit" / "per_image.csv")))
    assert len(rows) == N and rows[0]["image"] == "shard-000000/000000"
    policy.write_text(policy.read_text().replace(BUCKET, "no-such-bucket"))
    one_line_exit_2(run_cli("gate", policy, "--dry-run"), "policy.toml: images:", "no-such-bucket")


# -- the pieces ---------------------------------------------------------------------------------
def test_brace_patterns_expand_like_webdataset():
    from vfmaudit.data.storage import expand_braces

    assert expand_braces("d/s-{000..002}.tar") == ["d/s-000.tar", "d/s-001.tar", "d/s-002.tar"]
    assert expand_braces("{a,b}-{8..10}.tar") == ["a-8.tar", "a-9.tar", "a-10.tar", "b-8.tar", "b-9.tar", "b-10.tar"]
    assert expand_braces("plain.tar") == ["plain.tar"]
    from vfmaudit.errors import VfmauditError

    with pytest.raises(VfmauditError, match="backwards"):
        expand_braces("s-{9..1}.tar")


def test_storage_options_parse_as_json_nest_by_dots_and_redact_secrets():
    from vfmaudit.data.storage import parse_storage_options, redacted
    from vfmaudit.errors import VfmauditError

    opts = parse_storage_options(["anon=true", "endpoint_url=http://127.0.0.1:9000", "client_kwargs.region_name=eu",
                                  "config_kwargs.retries={\"max_attempts\": 1}", "secret=x=y", "key=abc"])
    assert opts == {"anon": True, "endpoint_url": "http://127.0.0.1:9000", "client_kwargs": {"region_name": "eu"},
                    "config_kwargs": {"retries": {"max_attempts": 1}}, "secret": "x=y", "key": "abc"}
    shown = redacted(opts)
    assert shown["secret"] == shown["key"] == "***" and shown["endpoint_url"] == "http://127.0.0.1:9000"
    with pytest.raises(VfmauditError, match="KEY=VALUE"):
        parse_storage_options(["novalue"])


def test_webdataset_keys_split_at_the_first_dot_of_the_file_name():
    from vfmaudit.data.webdataset import split_key

    assert split_key("a/b/000123.seg.PNG") == ("a/b/000123", "seg.png")
    assert split_key("x.jpg") == ("x", "jpg")
    assert split_key("dir.v2/x.cls") == ("dir.v2/x", "cls")


def test_the_sources_catalogue_is_listed_by_the_cli():
    from vfmaudit.data import source_kinds

    res = run_cli("sources")
    assert res.returncode == 0
    for name in source_kinds():
        assert name in res.stdout


def test_a_shard_over_http_gives_the_local_values(sets, tmp_path):
    """An http(s):// URL through fsspec's HTTP filesystem: a local http.server on 127.0.0.1."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # the server's own log is not the CLI's stderr
            pass

    handler = functools.partial(Quiet, directory=str(sets["tars"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        res = audit(f"{base}/shard-{{000000..000002}}.tar", tmp_path / "http")
        assert res.returncode == 0, res.stderr
        assert audit(sets["tars"], tmp_path / "local").returncode == 0
        assert values(tmp_path / "http") == values(tmp_path / "local")
        one_line_exit_2(audit(f"{base}/missing-{{0..1}}.tar", tmp_path / "x"), "matches no file")
    finally:
        server.shutdown()
