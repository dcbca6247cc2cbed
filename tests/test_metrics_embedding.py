"""cosine, euclidean and divergence radius as docs/architecture.md defines them."""

import numpy as np
import pytest

from vfmaudit.errors import VfmauditError
from vfmaudit.metrics import cosine, divergence_radius, drift_metrics, euclidean


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_definitions_on_one_image():
    rng = np.random.default_rng(0)
    clean = _unit(rng.normal(size=32))
    pert = _unit(clean + 0.3 * rng.normal(size=(5, 32)))
    assert cosine(clean, pert) == pytest.approx(np.mean(pert @ clean))
    assert euclidean(clean, pert) == pytest.approx(np.mean(np.linalg.norm(pert - clean, axis=1)))
    m = drift_metrics(clean, pert)  # one image in: floats out, as the README shows
    assert all(isinstance(v, float) for v in m.values())
    assert m["divergence_radius"] == pytest.approx(divergence_radius(np.vstack([clean, pert])))
    assert m["cosine"] == pytest.approx(np.mean(pert @ clean))
    # unnormalised inputs are normalised first
    assert cosine(3 * clean, 2 * pert) == pytest.approx(cosine(clean, pert))
    assert euclidean(3 * clean, 2 * pert) == pytest.approx(euclidean(clean, pert))


def test_perfectly_robust_and_bounds():
    rng = np.random.default_rng(1)
    clean = _unit(rng.normal(size=(4, 16)))
    same = np.repeat(clean[:, None], 6, axis=1)
    m = drift_metrics(clean, same)
    assert np.allclose(m["cosine"], 1) and np.allclose(m["euclidean"], 0, atol=1e-7)
    assert np.allclose(m["divergence_radius"], 0, atol=1e-7)
    far = _unit(rng.normal(size=(4, 6, 16)))
    m = drift_metrics(clean, far)
    assert np.all(m["divergence_radius"] <= 1 + 1e-9)
    # the radius reacts to the single worst edit, which the means dilute
    one_bad = same.copy()
    one_bad[:, 0] = -clean
    m = drift_metrics(clean, one_bad)
    assert np.allclose(m["divergence_radius"], 1.0)
    assert np.allclose(m["euclidean"], 2 / 6)


def test_shape_mismatch_is_an_error():
    with pytest.raises(VfmauditError):
        cosine(np.ones((2, 4)), np.ones((3, 5, 4)))
