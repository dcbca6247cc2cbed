"""Parquet and Arrow files (a Hugging Face `save_to_disk` folder too): one shard per file, read a
row group (or record batch) at a time, only the image, label and key columns.

The image column is the one `--image-key` names, else a struct with a binary `bytes` field (what
`datasets` writes for an Image feature: {bytes, path}) or a binary column, preferring the names
image/img/jpg/png. Labels: `--label-key`, else a column named label, labels, cls, class or target;
the names of a `datasets` ClassLabel (in the file's metadata or the folder's dataset_info.json)
become the labels' text.
"""

from __future__ import annotations

import json
from typing import Iterator

from vfmaudit.data.patterns import folder_entries, list_matching, split_name
from vfmaudit.data.source import LastBlock, Sample, Shard, SourceKind, SourceOptions, register_source_kind
from vfmaudit.data.storage import filesystem, first_line, store_errors
from vfmaudit.errors import VfmauditError, missing_dependency

SUFFIXES = (".parquet", ".pq", ".arrow")
IMAGE_NAMES = ("image", "img", "jpg", "jpeg", "png", "webp")
LABEL_NAMES = ("label", "labels", "cls", "class", "target")
KEY_NAMES = ("__key__",)
HF_STATE, HF_DICT, HF_INFO = "state.json", "dataset_dict.json", "dataset_info.json"
ROWS_PER_BATCH = 64
_blocks = LastBlock()


def _pyarrow():
    try:
        import pyarrow  # noqa: PLC0415 - the data extra
        import pyarrow.ipc  # noqa: F401,PLC0415
        import pyarrow.parquet  # noqa: F401,PLC0415
    except ImportError as e:
        raise (missing_dependency(e, "reading Parquet and Arrow files", "images from local folders and files")
               or VfmauditError(f"reading Parquet and Arrow files needs pyarrow: pip install 'vfmaudit[data]' "
                                f"({first_line(e)})")) from None
    return pyarrow


def _claims(spec: str, options: SourceOptions) -> bool:
    if list_matching(spec, SUFFIXES, options, claim_only=True):
        return True
    entries = folder_entries(spec, options) if not spec.lower().endswith((".tar", ".tgz", ".gz")) else None
    return bool(entries) and (HF_STATE in entries or HF_DICT in entries)


def _join(spec: str, name: str) -> str:
    return spec.rstrip("/") + "/" + name


def _shards(spec: str, options: SourceOptions) -> list[Shard]:
    pa = _pyarrow()
    entries = folder_entries(spec, options) if not spec.lower().rstrip("/").endswith(SUFFIXES) else None
    names: dict[str, tuple] = {}
    if entries and HF_DICT in entries and HF_STATE not in entries:
        splits = json.loads(_read_text(_join(spec, HF_DICT), options)).get("splits", [])
        raise VfmauditError(f"{spec} is a Hugging Face DatasetDict with the splits {', '.join(splits)}; pass one: "
                            f"{_join(spec, splits[0] if splits else 'train')}", param="inputs")
    if entries and HF_STATE in entries:
        state = json.loads(_read_text(_join(spec, HF_STATE), options))
        urls = [_join(spec, f["filename"]) for f in state.get("_data_files", [])]
        if not urls:
            raise VfmauditError(f"{spec}: {HF_STATE} lists no data file", param="inputs")
        if HF_INFO in entries:
            names = _class_names(json.loads(_read_text(_join(spec, HF_INFO), options)).get("features") or {})
    else:
        urls = list_matching(spec, SUFFIXES, options)
    shards = []
    for url in urls:
        schema, fmt = _schema(pa, url, options)
        info = _columns(schema, url, options)
        meta = (schema.metadata or {}).get(b"huggingface")
        file_names = dict(names)
        if meta:
            try:
                file_names.update(_class_names(json.loads(meta).get("info", {}).get("features") or {}))
            except ValueError:
                pass
        label_names = file_names.get(info["label"]) if info["label"] else None
        shards.append(Shard("parquet", url, split_name(url, SUFFIXES),
                            info=(("format", fmt), ("names", label_names), *info.items())))
    return shards


def _read_text(url: str, options: SourceOptions) -> str:
    fs, path = filesystem(url, options.storage_options)
    with store_errors(url):
        return fs.cat_file(path).decode("utf-8")


def _class_names(features: dict) -> dict[str, tuple]:
    return {col: tuple(f["names"]) for col, f in features.items()
            if isinstance(f, dict) and f.get("_type") == "ClassLabel" and f.get("names")}


def _format(head: bytes) -> str:
    if head[:4] == b"PAR1":
        return "parquet"
    if head[:6] == b"ARROW1":
        return "ipc-file"
    if head[:4] == b"\xff\xff\xff\xff":
        return "ipc-stream"
    return "unknown"


def _schema(pa, url: str, options: SourceOptions):
    fs, path = filesystem(url, options.storage_options)
    with store_errors(url):
        with fs.open(path, "rb") as f:
            fmt = _format(f.read(8))
            f.seek(0)
            try:
                if fmt == "parquet":
                    return pa.parquet.ParquetFile(f).schema_arrow, fmt
                if fmt == "ipc-file":
                    return pa.ipc.open_file(f).schema, fmt
                if fmt == "ipc-stream":
                    return pa.ipc.open_stream(f).schema, fmt
            except pa.ArrowException as e:
                raise VfmauditError(f"{url}: not a readable {fmt} file ({first_line(e)})", param="inputs") from None
    raise VfmauditError(f"{url} is neither a Parquet nor an Arrow file (its first bytes say neither)", param="inputs")


def _describe(schema) -> str:
    return ", ".join(f"{f.name} ({f.type})" for f in schema)


def _image_field(pa, field) -> str | None:
    """'' for a binary column, 'bytes' for a {bytes, path} struct, None for anything else."""
    t = field.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return ""
    if pa.types.is_struct(t):
        idx = t.get_field_index("bytes")
        if idx >= 0 and (pa.types.is_binary(t.field(idx).type) or pa.types.is_large_binary(t.field(idx).type)):
            return "bytes"
    return None


def _columns(schema, url: str, options: SourceOptions) -> dict:
    pa = _pyarrow()
    names = schema.names
    if options.image_key:
        if options.image_key not in names:
            raise VfmauditError(f"{url} has no column {options.image_key!r}; its columns: {_describe(schema)}",
                                param="image_key")
        image, part = options.image_key, _image_field(pa, schema.field(options.image_key))
        if part is None:
            raise VfmauditError(f"{url}: column {image!r} is {schema.field(image).type}, not image bytes (a binary "
                                f"column or a {{bytes, path}} struct); its columns: {_describe(schema)}",
                                param="image_key")
    else:
        found = [(n, _image_field(pa, schema.field(n))) for n in names]
        found = [(n, p) for n, p in found if p is not None]
        if not found:
            raise VfmauditError(f"{url} has no image column (a binary column or a {{bytes, path}} struct); its "
                                f"columns: {_describe(schema)}; pass image_key COLUMN", param="image_key")
        preferred = [f for f in found if f[0].lower() in IMAGE_NAMES]
        image, part = (preferred or found)[0]
    if options.label_key:
        if options.label_key not in names:
            raise VfmauditError(f"{url} has no column {options.label_key!r}; its columns: {_describe(schema)}",
                                param="label_key")
        label = options.label_key
    else:
        label = next((n for n in names if n.lower() in LABEL_NAMES), None)
    key = next((n for n in names if n in KEY_NAMES), None)
    return {"image": image, "part": part, "label": label, "key": key}


def _blocks_of(pa, f, fmt: str, columns: list[str]):
    """(block index, record batch) over a file: Parquet row groups, Arrow record batches."""
    if fmt == "parquet":
        pf = pa.parquet.ParquetFile(f)
        for g in range(pf.num_row_groups):
            yield g, pf.read_row_group(g, columns=columns)
    elif fmt == "ipc-file":
        reader = pa.ipc.open_file(f)
        for b in range(reader.num_record_batches):
            yield b, reader.get_batch(b).select(columns)
    else:
        for b, batch in enumerate(pa.ipc.open_stream(f)):
            yield b, batch.select(columns)


def _image_values(block, info: dict) -> list:
    col = block.column(info["image"])
    if info["part"] == "bytes":
        import pyarrow.compute as pc  # noqa: PLC0415

        paths = pc.struct_field(col, "path").to_pylist() if col.type.get_field_index("path") >= 0 else None
        data = pc.struct_field(col, "bytes").to_pylist()
        return [(d, paths[i] if paths else None) for i, d in enumerate(data)]
    return [(d, None) for d in col.to_pylist()]


def _read(shard: Shard, options: SourceOptions) -> Iterator[Sample]:
    pa = _pyarrow()
    info = dict(shard.info)
    columns = [c for c in (info["image"], info["label"], info["key"]) if c]
    fs, path = filesystem(shard.url, options.storage_options)
    row = 0
    with store_errors(shard.url):
        f = fs.open(path, "rb")
    try:
        try:
            for b, block in _blocks_of(pa, f, info["format"], columns):
                images = _image_values(block, info)
                labels = block.column(info["label"]).to_pylist() if info["label"] else [None] * len(images)
                keys = block.column(info["key"]).to_pylist() if info["key"] else None
                for i, ((data, where), label) in enumerate(zip(images, labels)):
                    key = str(keys[i]) if keys else str(row)
                    row += 1
                    text = _label_text(label, info.get("names"))
                    if data is None:
                        why = f"the row holds no image bytes (path: {where})" if where else "the image is null"
                        yield Sample(key, None, why, label=text)
                    else:
                        yield Sample(key, bytes(data), label=text, locator=(b, i))
        except (pa.ArrowException, OSError, ValueError) as e:
            yield Sample("", None, f"unreadable after {row} row(s): {first_line(e)}")
    finally:
        f.close()


def _label_text(label, names) -> str | None:
    if label is None:
        return None
    if names and isinstance(label, int) and 0 <= label < len(names):
        return str(names[label])
    return str(label)


def _reread(shard: Shard, locator, options: SourceOptions) -> bytes:
    pa = _pyarrow()
    info = dict(shard.info)
    b, i = locator

    def load():
        fs, path = filesystem(shard.url, options.storage_options)
        with store_errors(shard.url), fs.open(path, "rb") as f:
            for k, block in _blocks_of(pa, f, info["format"], [info["image"]]):
                if k == b:
                    return _image_values(block, info)
        raise VfmauditError(f"{shard.url} changed since it was listed (block {b} is gone); run again")

    data = _blocks.get((shard.url, b), load)[i][0]
    return bytes(data or b"")


register_source_kind(SourceKind(
    name="parquet", description="Parquet or Arrow files, or a Hugging Face save_to_disk folder: the image from a "
                                "{bytes, path} struct or a binary column (--image-key), labels from a column "
                                "(--label-key; ClassLabel names used)",
    forms="data.parquet, a folder of .parquet/.arrow files, an HF save_to_disk folder, s3://bucket/set/*.parquet",
    claims=_claims, shards=_shards, read=_read, reread=_reread, extra="data",
    packages=("pyarrow", "fsspec")))
