"""WebDataset shards: POSIX tar files whose members are grouped into samples by key.

A member `dir/000123.seg.png` belongs to sample `dir/000123` under the extension `seg.png` (the
key ends at the first dot of the file name); a sample's members are consecutive, as webdataset's
writers put them. Shards are read as a stream (tarfile's "r|*" mode, gzip too), through fsspec
where they are remote, so a shard is read once, front to back, whatever its size.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from typing import Iterator

from vfmaudit.data.patterns import list_matching, split_name
from vfmaudit.data.source import Sample, Shard, SourceKind, SourceOptions, register_source_kind
from vfmaudit.data.storage import filesystem, first_line, store_errors

SUFFIXES = (".tar", ".tar.gz", ".tgz")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
LABEL_KEYS = ("cls", "label", "txt")  # tried in order where --label-key is not given


def _claims(spec: str, options: SourceOptions) -> bool:
    return list_matching(spec, SUFFIXES, options, claim_only=True)


def _shards(spec: str, options: SourceOptions) -> list[Shard]:
    urls = list_matching(spec, SUFFIXES, options)
    return [Shard("webdataset", url, split_name(url, SUFFIXES)) for url in urls]


def split_key(member: str) -> tuple[str, str]:
    """('dir/000123', 'seg.png') of 'dir/000123.seg.png' (the extension lower-cased)."""
    folder, base = posixpath.split(member)
    stem, _, ext = base.partition(".")
    return posixpath.join(folder, stem) if folder else stem, ext.lower()


def _read(shard: Shard, options: SourceOptions) -> Iterator[Sample]:
    fs, path = filesystem(shard.url, options.storage_options)
    n = 0
    key, members = None, {}
    seekable = not shard.url.endswith((".gz", ".tgz"))  # a compressed member has no offset to read it at
    with store_errors(shard.url):
        f = fs.open(path, "rb")
    try:
        try:
            tar = tarfile.open(fileobj=f, mode="r|*")
            for member in tar:
                if not member.isfile():
                    continue
                k, ext = split_key(member.name)
                if k.startswith(".") or not ext:
                    continue  # hidden files and members without an extension are no sample's
                if key is not None and k != key:
                    yield _sample(key, members, options, seekable)
                    n += 1
                    members = {}
                key = k
                reader = tar.extractfile(member)
                members[ext] = (member.offset_data, member.size, reader.read() if reader else b"")
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            # the samples before the damage are audited; the rest of the shard is one listed skip
            where = f"after {n} complete sample(s)" + (f" (at {key})" if key else "")
            yield Sample("", None, f"truncated or corrupt tar {where}: {first_line(e)}")
            return
        if key is not None:
            yield _sample(key, members, options, seekable)
        elif n == 0:
            yield Sample("", None, "the tar holds no sample (no member with an extension)")
    finally:
        f.close()


def _sample(key: str, members: dict, options: SourceOptions, seekable: bool) -> Sample:
    label = _label(members, options.label_key)
    wanted = [e.strip().lower() for e in options.image_key.split(",")] if options.image_key else IMAGE_EXTENSIONS
    for ext in wanted:
        if ext in members:
            offset, size, data = members[ext]
            return Sample(key, data, label=label, locator=(offset, size) if seekable else None)
    has = ", ".join(sorted(members)) or "nothing"
    hint = "--image-key names the member's extension" if not options.image_key else \
        f"no member with the extension {options.image_key}"
    return Sample(key, None, f"no image in the sample (it has: {has}); {hint}", label=label)


def _label(members: dict, label_key: str | None) -> str | None:
    keys = [label_key] if label_key else list(LABEL_KEYS)
    for key in keys:
        ext, _, field = key.partition(".") if key.startswith("json.") else (key.lower(), "", "")
        if ext not in members:
            continue
        raw = members[ext][2]
        if field:
            try:
                value = json.loads(raw)
                for part in field.split("."):
                    value = value[part]
            except (ValueError, KeyError, TypeError, IndexError):
                continue
            return str(value)
        return raw.decode("utf-8", errors="replace").strip()
    return None


def _reread(shard: Shard, locator, options: SourceOptions) -> bytes:
    offset, size = locator
    fs, path = filesystem(shard.url, options.storage_options)
    with store_errors(shard.url), fs.open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


register_source_kind(SourceKind(
    name="webdataset", description="WebDataset tar shards: samples grouped by key, the image from the first of "
                                   "jpg/jpeg/png/webp (--image-key), labels from cls/label/txt or json.FIELD "
                                   "(--label-key)",
    forms="shard.tar, a folder of .tar files, data/shard-{000000..000099}.tar, s3://bucket/shards/*.tar",
    claims=_claims, shards=_shards, read=_read, reread=_reread, extra="data", packages=("fsspec",)))
