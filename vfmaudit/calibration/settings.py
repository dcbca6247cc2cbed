"""Defaults the CLI shows in --help, kept apart from the modules that import onnxruntime."""

METHODS = ("minmax", "entropy", "percentile")  # onnxruntime's static calibration methods
MIN_MEDIAN_COSINE = 0.98  # acceptance: median cosine of INT8 to fp32 on held-out images
