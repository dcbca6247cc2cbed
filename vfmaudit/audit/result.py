"""What an audit returns: report.json and the folder of tables beside it."""

from __future__ import annotations

from typing import Callable

import numpy as np

from vfmaudit.audit.summary import family_summaries
from vfmaudit.audit.tables import PER_IMAGE, iter_rows
from vfmaudit.files import FolderResult

# progress(event, n): "start" with the number of images to do (None: streamed), then "advance" per images
# finished. A progress object with a part(share, family) method also hears each family of the chunk in work
# (the share of its images that family's variants stand for): a chunk of 15 corruptions takes minutes.
ProgressFn = Callable[[str, int], None]
REPORT_JSON = "report.json"


class AuditResult(FolderResult):
    report_name = REPORT_JSON

    def values(self) -> dict[str, dict[str, np.ndarray]]:
        """Per-image metric values by family and metric, streamed from per_image.csv (for plots)."""
        return family_summaries(iter_rows(self.out_dir / PER_IMAGE), [], list(self.report["families"]))[1]
