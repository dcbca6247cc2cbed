"""Results on disk as they are computed, so an interrupted audit resumes where it stopped."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from vfmaudit.errors import ResumeMismatch, VfmauditError
from vfmaudit.files import check_resumable
from vfmaudit.audit.tables import (PER_IMAGE, PER_LEVEL, filter_rows, image_columns, iter_rows, level_columns,
                                   parquet_path, read_header, restore_csv)
from vfmaudit.audit.tables import write_rows as _write_rows

RUN_FILE = "run.json"
SKIPPED = "skipped.jsonl"
SMALL_INPUTS = "small_inputs.jsonl"  # audited, but far below the model's input size
SHARDS_DONE = "shards_done.jsonl"  # shards read to their end with every image's rows on disk (resume skips them)
OUR_FILES = (RUN_FILE, PER_IMAGE, PER_LEVEL, SKIPPED, SMALL_INPUTS, SHARDS_DONE, "report.json", "report.html",
             parquet_path(PER_IMAGE).name, parquet_path(PER_LEVEL).name)


class ResultsStore:
    def __init__(self, out_dir: str | Path, families: list[str]):
        self.dir = Path(out_dir)
        self.families = list(families)
        self.done: set[str] = set()
        self.skipped: dict[str, str] = {}
        self.small: dict[str, list[int]] = {}  # id -> [height, width]
        self.shards_done: dict[str, int] = {}  # shard name -> its inputs (audited and skipped)
        self.shards_done_before: set[str] = set()  # finished by an earlier run (resume)
        self.image_columns, self.level_columns = image_columns(), level_columns()
        self.duplicates: dict[str, int] = {}  # file -> rows found twice (e.g. written by two runs at once)

    # -- opening ------------------------------------------------------------------------
    def open(self, fingerprint: dict, resume: bool, overwrite: bool) -> "ResultsStore":
        if self.dir.exists() and not self.dir.is_dir():
            raise VfmauditError(f"out {self.dir} is a file; pass a folder", param="out")
        self.dir.mkdir(parents=True, exist_ok=True)
        run_file = self.dir / RUN_FILE
        if run_file.exists() and not overwrite:
            if not resume:
                raise VfmauditError(
                    f"{self.dir} already holds an audit; pass resume to continue it, "
                    f"overwrite to start again, or out to write elsewhere", param=("resume", "overwrite", "out"))
            try:
                previous = json.loads(run_file.read_text())["fingerprint"]
            except (OSError, ValueError, KeyError):
                raise VfmauditError(f"{run_file} is unreadable; pass overwrite to start again",
                                    param="overwrite") from None
            check_resumable(previous, fingerprint, self.dir)
            for name, columns in ((PER_IMAGE, self.image_columns), (PER_LEVEL, self.level_columns)):
                restore_csv(self.dir / name, columns)  # a finished run that kept only the Parquet tables
                if read_header(self.dir / name) not in (None, columns):
                    raise ResumeMismatch(f"cannot resume: {name} in {self.dir} has other metric columns than "
                                         f"this version computes; pass overwrite to start again", param="overwrite")
            self._load_previous()
        else:
            for name in OUR_FILES:
                (self.dir / name).unlink(missing_ok=True)
            run_file.write_text(json.dumps({"fingerprint": fingerprint}, indent=2))
            _write_rows(self.dir / PER_IMAGE, self.image_columns, [], "w")
            _write_rows(self.dir / PER_LEVEL, self.level_columns, [], "w")
            (self.dir / SKIPPED).write_text("")
            (self.dir / SMALL_INPUTS).write_text("")
            (self.dir / SHARDS_DONE).write_text("")
        return self

    def _load_previous(self) -> None:
        fams: dict[str, set[str]] = defaultdict(set)
        for r in iter_rows(self.dir / PER_IMAGE):
            fams[r["image"]].add(r["family"])
        self.done = {img for img, f in fams.items() if f >= set(self.families)}
        # keep only whole images: rows of an image cut off mid-way are recomputed (streamed, not loaded)
        # and each (image, family[, level]) once: a file written twice (by a version without the
        # folder lock) would otherwise count rows twice
        for name, columns, key in ((PER_IMAGE, self.image_columns, ("image", "family")),
                                   (PER_LEVEL, self.level_columns, ("image", "family", "level"))):
            seen: set[tuple] = set()
            twice = [0]

            def keep(r: dict, key=key, seen=seen, twice=twice) -> bool:
                if r["image"] not in self.done:
                    return False
                k = tuple(r[c] for c in key)
                if k in seen:
                    twice[0] += 1
                    return False
                seen.add(k)
                return True

            filter_rows(self.dir / name, columns, keep)
            if twice[0]:
                self.duplicates[name] = twice[0]
        self.skipped = _read_notes(self.dir / SKIPPED, "reason")
        # an image redone is measured (and noted) again
        self.small = {k: v for k, v in _read_notes(self.dir / SMALL_INPUTS, "size").items() if k in self.done}
        self.shards_done = _read_notes(self.dir / SHARDS_DONE, "inputs", key="shard")
        self.shards_done_before = set(self.shards_done)
        self.write_notes()

    # -- writing ------------------------------------------------------------------------
    def add_results(self, image_rows: list[dict], level_rows: list[dict]) -> None:
        # levels first: an image counts as done once its per-image rows are on disk
        _write_rows(self.dir / PER_LEVEL, self.level_columns, level_rows, "a")
        _write_rows(self.dir / PER_IMAGE, self.image_columns, image_rows, "a")
        self.done.update(r["image"] for r in image_rows)

    def add_small(self, small: list[tuple[str, int, int]]) -> None:
        if not small:
            return
        with open(self.dir / SMALL_INPUTS, "a") as f:
            for item_id, h, w in small:
                self.small[item_id] = [h, w]
                f.write(json.dumps({"input": item_id, "size": [h, w]}) + "\n")

    def write_notes(self) -> None:
        """skipped.jsonl and small_inputs.jsonl anew from memory (after a resume or a merge of shards)."""
        _write_notes(self.dir / SKIPPED, "reason", self.skipped)
        _write_notes(self.dir / SMALL_INPUTS, "size", self.small)

    def add_shard_done(self, shard: str, n_inputs: int) -> None:
        """After every row of the shard is on disk: a resumed run does not open it again."""
        self.shards_done[shard] = n_inputs
        _append_durably(self.dir / SHARDS_DONE, {"shard": shard, "inputs": n_inputs})

    def add_skipped(self, item_id: str, reason: str) -> None:
        self.skipped[item_id] = reason
        _append_durably(self.dir / SKIPPED, {"input": item_id, "reason": reason})


def _append_durably(path: Path, record: dict) -> None:
    """One JSON line, on disk when this returns."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_notes(path: Path, field: str, key: str = "input") -> dict:
    """{record[key]: record[field]} of a JSONL file of {key: ..., field: ...} lines (a cut-off last line skipped)."""
    notes: dict = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
                notes[rec[key]] = rec[field]
            except (ValueError, KeyError):
                continue  # a line cut off by an interruption
    return notes


def _write_notes(path: Path, field: str, notes: dict) -> None:
    path.write_text("".join(json.dumps({"input": k, field: v}) + "\n" for k, v in notes.items()))
