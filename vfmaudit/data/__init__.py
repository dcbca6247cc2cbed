"""Image sources and decoding."""

from vfmaudit.data.decode import DEFAULT_MAX_PIXELS, load_image, to_rgb_uint8
from vfmaudit.data.sources import SAMPLE_NAMES, ImageItem, collect_items, sample_crops, sample_items

__all__ = ["load_image", "to_rgb_uint8", "ImageItem", "collect_items", "sample_items",
           "sample_crops", "SAMPLE_NAMES", "DEFAULT_MAX_PIXELS"]
