"""Image sources and decoding: the registry of source kinds (image files, WebDataset shards,
Parquet / Arrow), local or behind an fsspec URL."""

from vfmaudit.data.decode import DEFAULT_MAX_PIXELS, decode_bytes, load_image, to_rgb_uint8
from vfmaudit.data.sources import SAMPLE_NAMES, ImageItem, collect_items, sample_crops, sample_items
from vfmaudit.data.source import (ImageSource, Sample, Shard, SourceKind, SourceOptions, open_source,
                                  register_source_kind, source_kinds)
# the built-in kinds, in catalogue order (image files last: they take what no other kind claims)
from vfmaudit.data import webdataset as _webdataset  # noqa: F401,E402
from vfmaudit.data import parquet as _parquet  # noqa: F401,E402
from vfmaudit.data import files_kind as _files_kind  # noqa: F401,E402

__all__ = ["load_image", "decode_bytes", "to_rgb_uint8", "ImageItem", "collect_items", "sample_items",
           "sample_crops", "SAMPLE_NAMES", "DEFAULT_MAX_PIXELS", "ImageSource", "Sample", "Shard", "SourceKind",
           "SourceOptions", "open_source", "register_source_kind", "source_kinds"]
