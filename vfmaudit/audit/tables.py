"""The tables an audit streams to disk: per_image.csv and per_level.csv, and their Parquet copies.

Their metric columns are the metrics registry's, in its order. The CSV files are the run's journal
(appended as chunks finish, read back on resume); `tables="parquet"` or `"both"` writes
per_image.parquet / per_level.parquet at the end (typed: image and family strings, level and
metrics float64), and "parquet" alone then removes the CSV files. Every reader here reads either
form, so reports, `report compare`, the gate and resume work on both.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from vfmaudit.errors import VfmauditError, missing_dependency
from vfmaudit.metrics import metrics, per_level_metrics

PER_IMAGE = "per_image.csv"
PER_LEVEL = "per_level.csv"
TABLE_FORMATS = ("csv", "parquet", "both")
TEXT_COLUMNS = ("image", "family")  # every other column is a number


def image_columns() -> list[str]:
    return ["image", "family", *metrics()]


def level_columns() -> list[str]:
    return ["image", "family", "level", *per_level_metrics()]


def write_rows(path: Path, columns: list[str], rows: list[dict], mode: str) -> None:
    """Write (mode "w", with header) or append ("a") rows, durable on return."""
    with open(path, mode, newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        if mode == "w":
            w.writeheader()
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def require_parquet(what: str) -> None:
    """Before any work: Parquet tables need pyarrow (the data extra), said in one line."""
    try:
        import pyarrow.parquet  # noqa: F401,PLC0415
    except ImportError as e:
        raise missing_dependency(e, what, "the CSV tables (tables csv)") or VfmauditError(str(e)) from None


def parquet_path(path: Path) -> Path:
    return Path(path).with_suffix(".parquet")


def has_table(path: Path) -> bool:
    """The CSV table or its Parquet form exists."""
    return Path(path).exists() or parquet_path(path).exists()


def read_header(path: Path) -> list[str] | None:
    if not path.exists():
        if parquet_path(path).exists():
            import pyarrow.parquet as pq  # noqa: PLC0415 - only where a run wrote Parquet

            return pq.read_schema(parquet_path(path)).names
        return None
    with open(path, newline="") as f:
        return next(csv.reader(f), None)


def iter_rows(path: Path):
    """Complete rows one at a time, as text (a last line cut off by an interruption is skipped);
    from the Parquet form where the CSV file is absent, formatted as the CSV writes them."""
    path = Path(path)
    if not path.exists():
        if parquet_path(path).exists():
            yield from _parquet_rows(parquet_path(path))
        return
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if None not in r.values() and None not in r:
                yield r


def _parquet_rows(path: Path):
    import pyarrow.parquet as pq  # noqa: PLC0415

    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        cols = {name: batch.column(i).to_pylist() for i, name in enumerate(batch.schema.names)}
        for i in range(batch.num_rows):
            yield {k: (v[i] if k in TEXT_COLUMNS else f"{v[i]:.8g}") for k, v in cols.items()}


def write_parquet(path: Path) -> Path:
    """The CSV table at path as Parquet beside it, streamed (constant memory), written atomically."""
    import pyarrow as pa  # noqa: PLC0415 - the data extra
    import pyarrow.csv as pcsv  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    columns = read_header(path) or []
    schema = pa.schema([(c, pa.string() if c in TEXT_COLUMNS else pa.float64()) for c in columns])
    target = parquet_path(path)
    tmp = target.with_suffix(".parquet.tmp")
    reader = pcsv.open_csv(path, convert_options=pcsv.ConvertOptions(column_types=schema),
                           read_options=pcsv.ReadOptions(block_size=1 << 22))
    with pq.ParquetWriter(tmp, schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    tmp.replace(target)
    return target


def restore_csv(path: Path, columns: list[str]) -> None:
    """The CSV journal again from a Parquet-only run's table (a resumed run appends to it)."""
    path = Path(path)
    if path.exists() or not parquet_path(path).exists():
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(_parquet_rows(parquet_path(path)))
    tmp.replace(path)


def read_rows(path: Path) -> list[dict]:
    return list(iter_rows(path))


def filter_rows(path: Path, columns: list[str], keep) -> None:
    """Rewrite path with only the rows for which keep(row) is true, streaming through a temp file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in iter_rows(path):
            if keep(r):
                w.writerow(r)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
