"""Streamed summaries equal numpy's on the same values."""

import numpy as np
import pytest

from vfmaudit.audit.summary import family_summaries


def test_summaries_equal_numpy_and_stream():
    rng = np.random.default_rng(0)
    fams = ["jpeg", "hue"]
    vals = {f: rng.uniform(0, 1, (500, 3)) for f in fams}
    image_rows = ({"image": f"img{i}", "family": f, "cosine": str(v[i, 0]), "euclidean": str(v[i, 1]),
                   "divergence_radius": str(v[i, 2])} for f, v in vals.items() for i in range(len(v)))
    levels = [0.0, 0.5, 1.0]
    lv_vals = rng.uniform(0, 1, (500, 3, 2))
    level_rows = ({"image": f"img{i}", "family": "jpeg", "level": str(lv), "cosine": str(lv_vals[i, j, 0]),
                   "euclidean": str(lv_vals[i, j, 1])} for i in range(500) for j, lv in enumerate(levels))
    out, arrays = family_summaries(image_rows, level_rows, fams)  # generators: read once, never held
    for f, v in vals.items():
        for k, m in enumerate(["cosine", "euclidean", "divergence_radius"]):
            s = out[f][m]
            assert s["mean"] == pytest.approx(v[:, k].mean()) and s["median"] == pytest.approx(np.median(v[:, k]))
            assert s["p5"] == pytest.approx(np.percentile(v[:, k], 5))
            assert s["p95"] == pytest.approx(np.percentile(v[:, k], 95))
            assert s["worst"] == pytest.approx(v[:, k].min() if m == "cosine" else v[:, k].max())
            assert np.allclose(arrays[f][m], v[:, k])
        assert out[f]["worst_image"] == f"img{int(np.argmax(v[:, 2]))}"
    per_level = out["jpeg"]["per_level"]
    assert [p["level"] for p in per_level] == levels
    for j, p in enumerate(per_level):
        assert p["cosine_mean"] == pytest.approx(lv_vals[:, j, 0].mean())
        assert p["euclidean_mean"] == pytest.approx(lv_vals[:, j, 1].mean())
    assert out["hue"]["per_level"] == []
