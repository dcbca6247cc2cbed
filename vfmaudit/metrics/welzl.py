"""Exact minimum enclosing ball (Welzl's algorithm with move-to-front), in Gram-matrix space.

The ball of n points depends only on their inner products, so each set is solved on its
n x n Gram matrix, whatever the dimension d. The centre is kept as affine coefficients
lam over the points (c = sum_i lam_i p_i, sum lam = 1), and the circumcentre of a support
set S = {s0..sk} is found from M alpha = diag(M)/2 with M_jm = (s_j - s0).(s_m - s0),
factored by an incremental Cholesky: a support point whose new pivot vanishes is affinely
dependent on the others, and is refused (as in Gaertner's miniball), which is what makes
duplicate, collinear and co-spherical input safe.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# relative tolerances: a pivot below _DEP_EPS * |v|^2 means affinely dependent; a point is
# outside when farther than r^2 + _OUT_EPS * (squared size of the set)
_DEP_EPS = 1e-12
_OUT_EPS = 1e-12


@njit(cache=True)
def _dist2(G: np.ndarray, q: int, lam: np.ndarray, support: np.ndarray, k: int, cc: float) -> float:
    acc = 0.0
    for t in range(k):
        s = support[t]
        acc += lam[s] * G[q, s]
    return G[q, q] - 2.0 * acc + cc


# scalar state shared by the routines below, kept in small arrays so jitted helpers can update it
_R2, _CC = 0, 1  # float state: squared radius, |centre|^2 in Gram terms
_KBALL, _PSE = 0, 1  # int state: support size of the current ball, end of the support prefix


@njit(cache=True)
def _push(G, p, k, support, L, diag_m, mrow, y, alpha, lam, ball_support, fs, ist, tol) -> bool:
    """Make p support point k and move the ball to the circumcentre of support[0..k]."""
    n = G.shape[0]
    support[k] = p
    if k == 0:
        for t in range(n):
            lam[t] = 0.0
        lam[p] = 1.0
        fs[_R2] = 0.0
        fs[_CC] = G[p, p]
    else:
        s0 = support[0]
        g00 = G[s0, s0]
        for j in range(1, k + 1):
            sj = support[j]
            mrow[j] = G[p, sj] - G[p, s0] - G[s0, sj] + g00
        mkk = mrow[k]
        for j in range(1, k):
            acc = mrow[j]
            for t in range(1, j):
                acc -= L[k, t] * L[j, t]
            L[k, j] = acc / L[j, j]
        d = mkk
        for t in range(1, k):
            d -= L[k, t] * L[k, t]
        if not (mkk > tol and d > _DEP_EPS * mkk):
            return False  # affinely dependent on the support: refuse, as miniball does
        L[k, k] = np.sqrt(d)
        diag_m[k] = mkk
        # solve L L^T alpha = diag(M) / 2
        for j in range(1, k + 1):
            acc = 0.5 * diag_m[j]
            for t in range(1, j):
                acc -= L[j, t] * y[t]
            y[j] = acc / L[j, j]
        for j in range(k, 0, -1):
            acc = y[j]
            for t in range(j + 1, k + 1):
                acc -= L[t, j] * alpha[t]
            alpha[j] = acc / L[j, j]
        r2 = 0.0
        sum_alpha = 0.0
        for t in range(n):
            lam[t] = 0.0
        for j in range(1, k + 1):
            r2 += 0.5 * alpha[j] * diag_m[j]
            sum_alpha += alpha[j]
            lam[support[j]] = alpha[j]
        lam[s0] = 1.0 - sum_alpha
        cc = 0.0
        for a in range(k + 1):
            sa = support[a]
            for b in range(k + 1):
                sb = support[b]
                cc += lam[sa] * lam[sb] * G[sa, sb]
        fs[_R2] = r2
        fs[_CC] = cc
    for t in range(k + 1):
        ball_support[t] = support[t]
    ist[_KBALL] = k + 1
    return True


@njit(cache=True)
def _move_to_front(order, j, ist) -> None:
    p = order[j]
    for t in range(j, 0, -1):
        order[t] = order[t - 1]
    order[0] = p
    if j >= ist[_PSE]:
        ist[_PSE] += 1


@njit(cache=True)
def _mtf(G, order, end, base, support, L, diag_m, mrow, y, alpha, lam, ball_support, fs, ist,
         frame_end, frame_i, tol) -> None:
    """Welzl move-to-front over order[0:end] with support[0:base] fixed (iterative recursion)."""
    ist[_PSE] = 0
    depth = base
    frame_end[depth] = end
    frame_i[depth] = 0
    while True:
        i = frame_i[depth]
        if i >= frame_end[depth]:
            if depth == base:
                return
            depth -= 1
            j = frame_i[depth]
            _move_to_front(order, j, ist)
            frame_i[depth] = j + 1
            continue
        p = order[i]
        kb = ist[_KBALL]
        if kb == 0 or _dist2(G, p, lam, ball_support, kb, fs[_CC]) > fs[_R2] + tol:
            if _push(G, p, depth, support, L, diag_m, mrow, y, alpha, lam, ball_support, fs, ist, tol):
                depth += 1
                frame_end[depth] = i
                frame_i[depth] = 0
                ist[_PSE] = 0
                continue
        frame_i[depth] = i + 1


@njit(cache=True)
def _certified_ball(G, keep, support, L, diag_m, mrow, y, alpha, lam, ball_support, fs, ist, tol) -> bool:
    """Try the circumball of the points that keep positive barycentric weight (O(n^3) per try).

    A ball whose centre is a convex combination of points on its boundary and that encloses
    every point is the minimum enclosing ball (its KKT conditions), so success is exact. When
    most points are support points (embeddings in high dimension) this is the common case,
    and it spares the recursion 2^n pushes.
    """
    n = G.shape[0]
    for i in range(n):
        keep[i] = True
    for _round in range(n):
        k = 0
        for i in range(n):
            if keep[i]:
                if _push(G, i, k, support, L, diag_m, mrow, y, alpha, lam, ball_support, fs, ist, tol):
                    k += 1
                else:
                    keep[i] = False  # affinely dependent on the others: must lie inside anyway
        worst = -1
        worst_w = 0.0
        for t in range(k):
            s = support[t]
            if lam[s] < worst_w:
                worst_w = lam[s]
                worst = s
        if worst < 0:
            kb = ist[_KBALL]
            for q in range(n):
                if _dist2(G, q, lam, ball_support, kb, fs[_CC]) > fs[_R2] + tol:
                    return False
            return True
        keep[worst] = False
    return False


@njit(cache=True)
def welzl_gram(G: np.ndarray, order: np.ndarray, lam: np.ndarray, ball_support: np.ndarray) -> tuple[float, int]:
    """Solve one set from its (preferably centred) Gram matrix G (n, n) float64.

    First an exact certificate check (_certified_ball); when it fails, Welzl's move-to-front
    with Gaertner's pivoting: the farthest point is forced onto the boundary and
    move-to-front runs on the points already seen.
    order: a permutation of 0..n-1, reordered in place. Writes the centre's affine
    coefficients into lam (n,) and the support indices into ball_support[:k]; returns
    (squared radius, k).
    """
    n = G.shape[0]
    scale = 0.0
    for i in range(n):
        if G[i, i] > scale:
            scale = G[i, i]
    tol = _OUT_EPS * scale + 1e-300

    support = np.empty(n + 1, dtype=np.int64)
    diag_m = np.zeros(n + 1)
    L = np.zeros((n + 1, n + 1))
    mrow = np.zeros(n + 1)
    y = np.zeros(n + 1)
    alpha = np.zeros(n + 1)
    frame_end = np.empty(n + 2, dtype=np.int64)
    frame_i = np.empty(n + 2, dtype=np.int64)
    fs = np.zeros(2)
    ist = np.zeros(2, dtype=np.int64)
    for i in range(n):
        lam[i] = 0.0

    keep = np.empty(n, dtype=np.bool_)
    if n > 2 and _certified_ball(G, keep, support, L, diag_m, mrow, y, alpha, lam, ball_support, fs, ist, tol):
        return fs[_R2], ist[_KBALL]
    ist[_KBALL] = 0
    _mtf(G, order, 1, 0, support, L, diag_m, mrow, y, alpha, lam, ball_support, fs, ist,
         frame_end, frame_i, tol)
    pos_t = 1
    while True:
        old_r2 = fs[_R2]
        max_e = tol
        piv = -1
        kb = ist[_KBALL]
        for pos in range(pos_t, n):
            e = _dist2(G, order[pos], lam, ball_support, kb, fs[_CC]) - fs[_R2]
            if e > max_e:
                max_e = e
                piv = pos
        if piv < 0:
            break
        pos_t = ist[_PSE]
        if pos_t == piv:
            pos_t += 1
        end = ist[_PSE]
        _push(G, order[piv], 0, support, L, diag_m, mrow, y, alpha, lam, ball_support, fs, ist, tol)
        _mtf(G, order, end, 1, support, L, diag_m, mrow, y, alpha, lam, ball_support, fs, ist,
             frame_end, frame_i, tol)
        _move_to_front(order, piv, ist)
        if piv > pos_t:
            pos_t += 1
        if not fs[_R2] > old_r2:
            break

    # every point inside, whatever rounding did: grow to the farthest one
    r2 = fs[_R2]
    kb = ist[_KBALL]
    for q in range(n):
        d2 = _dist2(G, q, lam, ball_support, kb, fs[_CC])
        if d2 > r2:
            r2 = d2
    return max(r2, 0.0), kb


@njit(parallel=True, cache=True)
def welzl_gram_batch(G: np.ndarray) -> np.ndarray:
    """Squared radii for a batch of Gram matrices (B, n, n)."""
    b, n, _ = G.shape
    out = np.empty(b)
    for s in prange(b):
        order = np.arange(n)
        lam = np.empty(n)
        sup = np.empty(n, dtype=np.int64)
        r2, _ = welzl_gram(G[s], order, lam, sup)
        out[s] = r2
    return out
