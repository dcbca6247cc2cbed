"""Image files: files and folders on this machine (searched recursively), or under a URL.

The kind every argument falls back to. Item ids are the files' paths (relative to the working
folder where they are below it) or their URLs.
"""

from __future__ import annotations

import posixpath
from typing import Iterator

from vfmaudit.data.decode import decode_bytes
from vfmaudit.data.patterns import url_of
from vfmaudit.data.source import Shard, SourceKind, SourceOptions, register_source_kind
from vfmaudit.data.sources import ImageItem, collect_items
from vfmaudit.data.storage import filesystem, is_url, missing_message, store_errors
from vfmaudit.errors import ImageDecodeError, VfmauditError


def _shards(spec: str, options: SourceOptions) -> list[Shard]:
    if not is_url(spec):
        collect_items([spec], options.max_pixels)  # a missing path or an empty folder: one line now
        return [Shard("files", spec, "")]
    fs, path = filesystem(spec, options.storage_options)
    with store_errors(spec):
        found = fs.exists(path)
        message = None if found else missing_message(spec, fs, path)
    if message:
        raise VfmauditError(message, param="inputs")
    return [Shard("files", spec, "")]


def _items(shard: Shard, options: SourceOptions) -> Iterator[ImageItem]:
    if not is_url(shard.url):
        yield from collect_items([shard.url], options.max_pixels)
        return
    fs, path = filesystem(shard.url, options.storage_options)
    with store_errors(shard.url):
        files = [path] if fs.isfile(path) else sorted(fs.find(path))
    for p in files:
        if posixpath.basename(p).startswith("."):
            continue
        yield remote_item(url_of(shard.url, p), options)


def remote_item(url: str, options: SourceOptions) -> ImageItem:
    """The item of an image file behind a URL: read when loaded (a failure is a listed skip)."""
    return ImageItem(url, _remote_loader(url, options))


def _remote_loader(url: str, options: SourceOptions):
    def load():
        try:
            fs, path = filesystem(url, options.storage_options)
            with store_errors(url):
                data = fs.cat_file(path)
        except VfmauditError as e:  # one file gone or unreadable: skipped and listed, not fatal
            raise ImageDecodeError(str(e)) from None
        return decode_bytes(data, options.max_pixels)
    return load


register_source_kind(SourceKind(
    name="files", description="image files and folders of them (searched recursively; hidden entries skipped)",
    forms="photo.jpg, a folder, s3://bucket/images/", claims=lambda spec, options: False, shards=_shards,
    items=_items, sharded=False))
