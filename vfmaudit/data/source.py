"""The registry of source kinds: where a command's images come from, chosen by the argument's form.

A source is a list of shards; a shard yields samples (a key, the encoded image or why there is
none, a label) one at a time, so no command holds a whole set in memory. Item ids are
`<shard>/<key>` for sharded kinds (WebDataset, Parquet) and the file's path for image files, so
resume, reports and `report compare` read the same ids whatever the store.

Kinds register here (`register_source_kind`), in catalogue order; `--help`, the README's sources
table and `vfmaudit sources` list them from this registry.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator

from vfmaudit.catalogue import Catalogue
from vfmaudit.data.decode import DEFAULT_MAX_PIXELS, decode_bytes
from vfmaudit.data.sources import ImageItem
from vfmaudit.data.storage import redacted
from vfmaudit.errors import ImageDecodeError, VfmauditError


@dataclass(frozen=True)
class SourceOptions:
    """How to read a source: which member or column holds the image and the label, and the store's
    options (fsspec keyword arguments: endpoint_url, anon, key/secret, client_kwargs...)."""

    image_key: str | None = None  # WebDataset: an extension (png, seg.png); Parquet/Arrow: a column
    label_key: str | None = None  # WebDataset: cls, txt, json.FIELD or an extension; Parquet/Arrow: a column
    storage_options: dict = field(default_factory=dict, hash=False)
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int | None = None  # read only the first this many readable images (None: all)

    def describe(self) -> dict:
        """For reports and run.json: no secret value."""
        return {"image_key": self.image_key, "label_key": self.label_key,
                "storage_options": redacted(self.storage_options)}


@dataclass(frozen=True)
class Sample:
    key: str
    data: bytes | None  # the encoded image; None: see reason
    reason: str | None = None  # why there is no image (a sample without one, a truncated shard)
    label: str | None = None
    locator: object = None  # how the kind reads this sample's image again (random access)


@dataclass(frozen=True)
class Shard:
    kind: str
    url: str  # a local path or a URL
    name: str  # the readable id prefix, unique in its source ("" for image files: their ids are their paths)
    info: tuple = ()  # what the kind resolved while listing (the image column, class names), as pairs

    def samples(self, options: SourceOptions) -> Iterator[Sample]:
        return source_kinds()[self.kind].read(self, options)

    def item_id(self, key: str) -> str:
        return f"{self.name}/{key}" if self.name else key

    def items(self, options: SourceOptions, locatable: bool = False) -> Iterator[ImageItem]:
        """The shard's images in order. Streamed (the default): each item holds its encoded bytes
        until it is loaded. locatable: each item reads its image again when loaded (for commands that
        load items more than once or out of order), holding only where it is."""
        kind = source_kinds()[self.kind]
        if kind.items is not None:  # image files: items of their own
            yield from kind.items(self, options)
            return
        for s in self.samples(options):
            item_id = self.item_id(s.key) if s.key else self.name
            if s.data is None:
                yield ImageItem(item_id, _failing(s.reason or "no image"), shard=self.name, label=s.label)
            elif locatable and s.locator is not None and kind.reread is not None:
                yield ImageItem(item_id, _rereading(kind.reread, self, s.locator, options), shard=self.name,
                                label=s.label)
            else:
                yield ImageItem(item_id, _decoding(s.data, options.max_pixels), shard=self.name, label=s.label)


def check_max_images(max_images: int | None, engine: str = "local") -> None:
    """A cap is a positive count, and the local engine's: Ray's shards do not keep the source's order."""
    if max_images is not None and max_images < 1:
        raise VfmauditError(f"max_images must be >= 1, got {max_images}", param="max_images")
    if max_images is not None and engine != "local":
        raise VfmauditError(f"max_images takes the first readable images in the source's order, which the "
                            f"shards of engine {engine} do not keep; pass engine local, or fewer inputs",
                            param=("max_images", "engine"))


def first_readable(items: Iterable[ImageItem], n: int, keep_decoded: bool) -> Iterator[ImageItem]:
    """The items up to the n-th that decodes (the unreadable ones before it too: skipped and listed where
    they are used). keep_decoded: a streamed item keeps the image decoded here (one at a time), a listed
    one (keep_decoded False) is decoded again where it is used, so a list holds no image."""
    readable = 0
    for item in items:
        if readable >= n:
            return
        try:
            image = item.load()
        except (ImageDecodeError, OSError, ValueError, MemoryError):
            yield item  # fails again where it is read, with the same reason
            continue
        readable += 1
        yield replace(item, load=lambda image=image: image) if keep_decoded else item


def _failing(reason: str) -> Callable:
    def load():
        raise ImageDecodeError(reason)
    return load


def _decoding(data: bytes, max_pixels: int) -> Callable:
    return lambda: decode_bytes(data, max_pixels)


def _rereading(reread: Callable, shard: Shard, locator, options: SourceOptions) -> Callable:
    def load():
        try:
            data = reread(shard, locator, options)
        except ImageDecodeError:
            raise
        except VfmauditError as e:  # the store failed for this one image: skipped and listed, not fatal
            raise ImageDecodeError(str(e)) from None
        return decode_bytes(data, options.max_pixels)
    return load


@dataclass(frozen=True)
class SourceKind:
    name: str
    description: str
    forms: str  # the argument forms that choose it, for --help and the README
    # (spec, options) -> is this kind's form (cheap: by suffix, or a look at a folder's entries)
    claims: Callable[[str, SourceOptions], bool]
    # (spec, options) -> the shards, every check that can be made before any work (one-line errors)
    shards: Callable[[str, SourceOptions], list[Shard]]
    read: Callable[[Shard, SourceOptions], Iterator[Sample]] | None = None
    reread: Callable[[Shard, object, SourceOptions], bytes] | None = None  # (shard, locator, options) -> bytes
    items: Callable[[Shard, SourceOptions], Iterator[ImageItem]] | None = None  # kinds with items of their own
    extra: str | None = None  # the extra its packages come from
    packages: tuple[str, ...] = ()  # the distributions it needs (shown by `vfmaudit sources`)
    sharded: bool = True  # a shard is a unit of work (resume skips finished ones; Ray Data reads them)


_KINDS: Catalogue[SourceKind] = Catalogue("source kind")


def register_source_kind(kind: SourceKind) -> SourceKind:
    return _KINDS.add(kind.name, kind)


def source_kinds() -> dict[str, SourceKind]:
    return _KINDS.all()


_default = SourceOptions()


def set_default_options(options: SourceOptions) -> None:
    """The options a command's readers use where none are passed (the CLI sets them from its flags)."""
    global _default
    _default = options


def default_options() -> SourceOptions:
    return _default


@contextlib.contextmanager
def using_options(options: SourceOptions) -> Iterator[None]:
    """The default options for a block (a gate's measurements read its policy's images with them)."""
    global _default
    before, _default = _default, options
    try:
        yield
    finally:
        _default = before


def read_items(specs: Iterable[str], options: SourceOptions | None = None, limit: int | None = None) -> list[ImageItem]:
    """Every image of the specs as a list of items that load on demand (for commands that index their
    inputs): the same ids and images as the audit streams."""
    return open_source(specs, options).list_items(limit)


def iter_items(specs: Iterable[str], options: SourceOptions | None = None) -> Iterator[ImageItem]:
    """Every image of the specs, streamed (a command that reads its inputs once, in order, and may stop
    early): the source is listed and checked before the first item."""
    return open_source(specs, options).items()


def find_items(specs: Iterable[str], ids: Iterable[str], options: SourceOptions | None = None) -> dict[str, ImageItem]:
    """The items of these ids, reading only the shards they name (report thumbnails of a sharded set)."""
    wanted = set(ids)
    source = open_source(specs, options)
    shards = {i.split("/", 1)[0] for i in wanted if "/" in i}
    skip = [s.name for s in source.shards if s.name and s.name not in shards]
    found = {}
    for item in source.items(skip=skip):
        if item.id in wanted:
            found[item.id] = item
            if len(found) == len(wanted):
                break
    return found


def sources_help() -> str:
    """What an images argument takes, from the registry (for --help)."""
    forms = "; ".join(f"{k.name}: {k.forms}" for k in source_kinds().values())
    return (f"{forms}. Every form also as a URL (s3://, gs://, https://); a KIND: prefix (webdataset:, parquet:, "
            f"files:) forces a kind.")


# -- choosing and opening ---------------------------------------------------------------------
ALIASES = {"wds": "webdataset", "arrow": "parquet", "hf": "parquet", "folder": "files"}


def kind_of(spec: str, options: SourceOptions) -> tuple[SourceKind, str]:
    """(the kind, the spec without a KIND: prefix): an explicit `webdataset:`/`parquet:`/`files:`
    prefix, else the first kind (catalogue order) that claims the form; image files last."""
    kinds = source_kinds()
    head, sep, rest = spec.partition(":")
    name = ALIASES.get(head.lower(), head.lower())
    if sep and name in kinds and not rest.startswith("//"):
        return kinds[name], rest
    for kind in kinds.values():
        if kind.claims(spec, options):
            return kind, spec
    return kinds["files"], spec


@dataclass
class ImageSource:
    """What a command reads: the shards of every input, in the order given."""

    specs: list[str]
    shards: list[Shard]
    options: SourceOptions

    @property
    def sharded(self) -> bool:
        return any(source_kinds()[s.kind].sharded for s in self.shards)

    def items(self, skip: Iterable[str] = (), locatable: bool = False) -> Iterator[ImageItem]:
        """Every image, streamed shard after shard; shards named in skip are not opened. With
        options.max_images, only the first that many readable ones (and the unreadable ones among them)."""
        skip = set(skip)
        found = (item for shard in self.shards if shard.name not in skip or not shard.name
                 for item in shard.items(self.options, locatable=locatable))
        if self.options.max_images is None:
            return found
        return first_readable(found, self.options.max_images, keep_decoded=not locatable)

    def list_items(self, limit: int | None = None) -> list[ImageItem]:
        """The items as a list (ids and where each image is, not the images): for the commands that
        index their inputs (splits, calibration sets, attacks)."""
        found = []
        for item in self.items(locatable=True):
            found.append(item)
            if limit and len(found) >= limit:
                break
        if not found:
            raise VfmauditError(f"no images in {', '.join(self.specs)}; pass a source that holds images",
                                param="inputs")
        return found

    def describe(self) -> dict:
        kinds = sorted({s.kind for s in self.shards})
        return {"kinds": kinds, "shards": sum(1 for s in self.shards if s.name), **self.options.describe()}


def open_source(specs: Iterable[str], options: SourceOptions | None = None) -> ImageSource:
    """The shards of every spec, listed and checked before any work: a missing file, an empty
    pattern, a store that cannot be reached, a Parquet file without an image column are one-line
    errors here, not in the middle of a run."""
    options = options or _default
    specs = [str(s) for s in specs]
    shards: list[Shard] = []
    for spec in specs:
        kind, rest = kind_of(spec, options)
        shards += kind.shards(rest, options)
    return ImageSource(specs, _unique_names(shards), options)


def _unique_names(shards: list[Shard]) -> list[Shard]:
    """Shard names as given, made unique by their parent folders where two inputs share a file name."""
    from dataclasses import replace

    names = [s.name for s in shards]
    if len(set(n for n in names if n)) == len([n for n in names if n]):
        return shards
    out, seen = [], set()
    for s in shards:
        name = s.name
        if name and name in seen:
            parts = s.url.rstrip("/").split("/")
            depth = 2
            while name in seen and depth <= len(parts):
                name = "/".join(parts[-depth:-1] + [s.name])
                depth += 1
            while name in seen:
                name += "_"
            s = replace(s, name=name)
        seen.add(name)
        out.append(s)
    return out


class LastBlock:
    """A one-entry cache of the last block a re-reader loaded (a row group, a record batch), per
    shard: commands read items mostly in order, so each block is read once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries: dict = {}

    def get(self, key, load: Callable):
        with self.lock:
            hit = self.entries.get(key[0])
            if hit is not None and hit[0] == key:
                return hit[1]
        value = load()
        with self.lock:
            self.entries[key[0]] = (key, value)
        return value
