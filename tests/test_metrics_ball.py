"""Exact minimum enclosing ball against independent references, and its geometric properties."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vfmaudit.errors import VfmauditError
from vfmaudit.metrics import divergence_radius, minimum_enclosing_ball


def brute_force_radius(points: np.ndarray) -> float:
    """Smallest circumball over all support subsets whose centre lies in their hull, enclosing all."""
    n, d = points.shape
    best = np.inf
    for k in range(1, min(n, d + 1) + 1):
        for subset in itertools.combinations(range(n), k):
            q = points[list(subset)]
            v = q[1:] - q[0]
            if k == 1:
                c = q[0]
            else:
                m = v @ v.T
                if np.linalg.matrix_rank(m) < k - 1:
                    continue
                c = q[0] + np.linalg.solve(m, 0.5 * np.diag(m)) @ v
            r = np.linalg.norm(q - c, axis=1).max()
            if np.linalg.norm(points - c, axis=1).max() <= r * (1 + 1e-9) + 1e-12:
                best = min(best, r)
    return best


def convex_solver_radius(points: np.ndarray) -> float:
    """min r s.t. ||p_i - c|| <= r, by a generic solver (scipy SLSQP on squared distances)."""
    from scipy.optimize import minimize

    c0 = points.mean(axis=0)
    r0 = np.linalg.norm(points - c0, axis=1).max() ** 2
    x0 = np.append(c0, r0)
    cons = [{"type": "ineq", "fun": (lambda x, p=p: x[-1] - np.sum((p - x[:-1]) ** 2))} for p in points]
    res = minimize(lambda x: x[-1], x0, constraints=cons, method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    return float(np.sqrt(res.x[-1]))


@pytest.mark.parametrize("seed", range(40))
def test_radius_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, d = rng.integers(1, 9), rng.integers(1, 6)
    pts = rng.normal(size=(n, d))
    if seed % 3 == 0:
        pts = np.round(pts)  # integer grid: ties and degeneracies
    assert minimum_enclosing_ball(pts).radius == pytest.approx(brute_force_radius(pts), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_radius_equals_generic_convex_solver_in_high_dimension(seed):
    rng = np.random.default_rng(100 + seed)
    pts = rng.normal(size=(11, 64))
    pts[: 5] = pts[0] + 0.05 * rng.normal(size=(5, 64))  # a mix of support and interior points
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    assert minimum_enclosing_ball(pts).radius == pytest.approx(convex_solver_radius(pts), rel=1e-6)


def test_embedding_sized_sets_equal_brute_force():
    rng = np.random.default_rng(7)
    for scale in [0.02, 0.3, 3.0]:
        x = rng.normal(size=(1, 768)) + scale * rng.normal(size=(11, 768))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        # brute force in the 10-d affine hull (same distances, cheaper)
        basis, _ = np.linalg.qr((x[1:] - x[0]).T)
        low = (x - x[0]) @ basis
        assert divergence_radius(x) == pytest.approx(brute_force_radius(low), rel=1e-9)


def test_centre_and_support_certify_the_ball():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(12, 5))
    ball = minimum_enclosing_ball(pts)
    dist = np.linalg.norm(pts - ball.center, axis=1)
    assert np.all(dist <= ball.radius * (1 + 1e-9))
    assert np.allclose(dist[ball.support], ball.radius, rtol=1e-8)
    assert 2 <= len(ball.support) <= 6


@pytest.mark.parametrize("case,expected", [
    ("one_point", 0.0),
    ("duplicates", 0.0),
    ("collinear", 2.0),
    ("many_in_2d", 1.0),
    ("regular_polygon", 1.0),
    ("cospherical_3d", 1.0),
])
def test_degenerate_inputs(case, expected):
    rng = np.random.default_rng(0)
    if case == "one_point":
        pts = np.array([[0.3, -2.0, 5.0]])
    elif case == "duplicates":
        pts = np.tile([[1.0, 2.0, 3.0, 4.0]], (7, 1))
    elif case == "collinear":
        t = np.array([-2.0, -1.0, 0.0, 0.5, 2.0, 2.0, 1.0])
        pts = np.outer(t, [0.6, 0.8, 0.0]) + 1.0
    elif case == "many_in_2d":  # n >> d + 1, points inside the unit disc plus two antipodes
        ang = rng.uniform(0, 2 * np.pi, 200)
        rad = rng.uniform(0, 0.99, 200)
        pts = np.c_[rad * np.cos(ang), rad * np.sin(ang)]
        pts = np.vstack([pts, [[1.0, 0.0], [-1.0, 0.0]]])
    elif case == "regular_polygon":  # every point on the circle: affinely dependent supports
        ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
        pts = np.c_[np.cos(ang), np.sin(ang)]
    else:  # points on a common sphere in 3-d, duplicated
        v = rng.normal(size=(20, 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        v = np.vstack([v, v[:5], [[1, 0, 0], [-1, 0, 0]]])
        pts = v
    assert minimum_enclosing_ball(pts).radius == pytest.approx(expected, abs=1e-9)
    assert divergence_radius(pts) == pytest.approx(expected, abs=1e-9)


finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=64)
point_sets = st.integers(1, 12).flatmap(
    lambda n: st.integers(1, 6).flatmap(lambda d: arrays(np.float64, (n, d), elements=finite)))


@settings(max_examples=150, deadline=None)
@given(point_sets)
def test_every_point_inside_and_radius_at_least_half_diameter(pts):
    ball = minimum_enclosing_ball(pts)
    dist = np.linalg.norm(pts - ball.center, axis=1)
    scale = max(1.0, np.abs(pts).max())
    assert np.all(dist <= ball.radius + 1e-9 * scale)
    diam = max(np.linalg.norm(a - b) for a in pts for b in pts)
    assert ball.radius >= diam / 2 - 1e-9 * scale
    assert ball.radius <= diam * np.sqrt(pts.shape[1] / (2 * (pts.shape[1] + 1))) + 1e-9 * scale  # Jung


@settings(max_examples=100, deadline=None)
@given(point_sets, st.integers(0, 2**32 - 1))
def test_invariant_to_rotation_and_translation(pts, seed):
    rng = np.random.default_rng(seed)
    d = pts.shape[1]
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    shift = rng.normal(scale=50, size=d)
    r0 = divergence_radius(pts)
    r1 = divergence_radius(pts @ q.T + shift)
    assert r1 == pytest.approx(r0, rel=1e-7, abs=1e-7 * max(1.0, np.abs(pts).max()))


@settings(max_examples=100, deadline=None)
@given(point_sets, st.integers(0, 2**32 - 1))
def test_monotone_when_points_are_added(pts, seed):
    rng = np.random.default_rng(seed)
    extra = rng.normal(scale=30, size=(3, pts.shape[1]))
    scale = max(1.0, np.abs(pts).max(), np.abs(extra).max())
    assert divergence_radius(np.vstack([pts, extra])) >= divergence_radius(pts) - 1e-9 * scale


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(1, 8), elements=finite), st.integers(1, 10))
def test_zero_for_identical_points(p, n):
    assert divergence_radius(np.tile(p, (n, 1))) == pytest.approx(0.0, abs=1e-9 * max(1.0, np.abs(p).max()))


def test_batch_equals_one_by_one():
    rng = np.random.default_rng(5)
    sets = rng.normal(size=(50, 7, 16)).astype(np.float32)
    batch = divergence_radius(sets)
    assert batch.shape == (50,)
    assert np.allclose(batch, [divergence_radius(s) for s in sets], rtol=1e-12)


def test_bad_shapes_are_errors():
    with pytest.raises(VfmauditError):
        divergence_radius(np.zeros(5))
    with pytest.raises(VfmauditError):
        divergence_radius(np.zeros((2, 0)))
    with pytest.raises(VfmauditError):
        divergence_radius(np.array([[np.nan, 1.0]]))
