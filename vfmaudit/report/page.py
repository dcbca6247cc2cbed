"""What every HTML page shares: responsive SVG plots, embedded thumbnails, the stylesheet, the script.

Pages are single self-contained files (no network, work from file:// and as CI artefacts).
"""

from __future__ import annotations

import base64
import functools
import html
import io
import re
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).parent / "assets"


@functools.cache
def asset(name: str) -> str:
    """A stylesheet or script shipped with the package (vfmaudit/report/assets), read once."""
    return (ASSETS / name).read_text(encoding="utf-8")



def responsive_svg(fig, max_width: int | None = None) -> str:
    """A matplotlib figure as inline SVG that scales with its container (viewBox kept, size dropped)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    head_end = text.index(">")
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    style = f' style="max-width: {max_width}px"' if max_width else ""
    return f'<div class="plot"{style}>{head} role="img">{text[head_end + 1:]}</div>'


def thumbnail(image: np.ndarray, side: int = 96, quality: int = 70) -> str:
    """A small JPEG as a data: URI (about 3-4 KB at 96 px)."""
    from PIL import Image

    img = Image.fromarray(image)
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def page(title: str, body: str, script: str = "") -> str:
    """A whole self-contained page: the shared stylesheet and table script inlined, then `script`."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{asset('page.css')}</style></head><body>\n{body}\n"
            f"<script>{asset('table.js')}\n{script}</script></body></html>\n")


def json_block(element_id: str, data) -> str:
    """Data for the page's script, embedded safely (no '</' can close the element)."""
    import json

    text = json.dumps(data).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'
