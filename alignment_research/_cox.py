"""Vectorised Cox partial-likelihood engine for (start, stop] data (private).

Everything here works on plain numpy arrays; ``retention.py`` wraps it.

The risk set at an event time ``t`` is every row with ``start < t <= stop``
(as R's ``survival``). Rows are never looped over in Python: each row is at
risk for a contiguous range ``[lo, hi)`` of the sorted distinct event times,
so risk-set sums are a cumulative sum of a sparse "+1 at lo, -1 at hi"
difference matrix times the per-row terms, and every information-matrix term
that needs per-time second moments folds into one weighted product
``X' diag(w) X`` (with ``w`` the per-row sum of the per-time weights over its
range). Efron ties expand each event time into its ``d`` tied deaths.

Case weights (R's ``coxph(weights=)``, ``agfit4.c``) enter the risk sums as
``w_i exp(eta_i)``, the log-likelihood and score as ``w_i`` per event, and each
of an event time's Efron steps as the mean weight of its tied deaths (Breslow:
their weight sum); the unweighted path (``CoxData.w`` None) is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__: list[str] = []


@dataclass
class CoxData:
    """Prepared arrays for repeated evaluation (rows at risk at no event time are dropped)."""

    X: np.ndarray  # (n, p) centred covariates
    center: np.ndarray  # (p,) column means removed from X
    start: np.ndarray
    stop: np.ndarray
    event: np.ndarray  # bool
    strata: np.ndarray  # int codes
    times: np.ndarray  # (m,) distinct event times (sorted within stratum blocks)
    time_strata: np.ndarray  # (m,) stratum of each event time
    lo: np.ndarray  # (n,) first event-time index at risk
    hi: np.ndarray  # (n,) one past the last event-time index at risk
    deaths: np.ndarray  # indices of event rows
    death_j: np.ndarray  # event-time index of each event row
    d: np.ndarray  # (m,) number of events at each event time
    diff: sp.csr_matrix  # (m + 1, n) +1 at lo, -1 at hi
    ties: str  # "efron" or "breslow"
    # Efron expansion of each event time into its tied deaths
    pair_j: np.ndarray
    pair_frac: np.ndarray
    rows: np.ndarray  # input row position of each prepared row (rows at risk at no event time are dropped)
    Xd: np.ndarray  # (number of events, p) the rows of X of the events (order of ``deaths``)
    # case weights (None: unweighted), of the prepared rows; pair_w: weight of each Efron step (Breslow: time)
    w: np.ndarray | None = None
    pair_w: np.ndarray | None = None


def _pair_weight(cd: CoxData, like: np.ndarray) -> np.ndarray:
    """The weight of each Efron step (Breslow: event time) in sums over event times.

    Unweighted: 1 per Efron step, ``d`` per Breslow time. With case weights, as
    R's ``agfit4.c``: the mean weight of the tied deaths per Efron step, their
    weight sum per Breslow time.
    """
    if cd.w is not None:
        return cd.pair_w
    return np.ones_like(like) if cd.ties == "efron" else cd.d.astype(float)


def prepare(X, start, stop, event, strata=None, ties="efron", weights=None) -> CoxData:
    """Sort out the risk-set bookkeeping once; nothing here depends on beta.

    ``weights``: positive case weights, one per row (None: unweighted). The
    covariates are centred on their unweighted means either way (the
    default profile of ``cox_survival``; centring changes no estimate).
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n = X.shape[0]
    start = np.asarray(start, dtype=float)
    stop = np.asarray(stop, dtype=float)
    event = np.asarray(event).astype(bool)
    strata = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    w = None if weights is None else np.asarray(weights, dtype=float)
    center = X.mean(axis=0)

    lo = np.empty(n, dtype=np.int64)
    hi = np.empty(n, dtype=np.int64)
    times_parts, tstrata_parts = [], []
    offset = 0
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        ts = np.unique(stop[rows][event[rows]])
        lo[rows] = offset + np.searchsorted(ts, start[rows], side="right")
        hi[rows] = offset + np.searchsorted(ts, stop[rows], side="right")
        times_parts.append(ts)
        tstrata_parts.append(np.full(len(ts), s))
        offset += len(ts)
    m = offset
    # rows at risk at no event time change nothing (score residual 0, never compared): drop them
    live = hi > lo
    if not live.all():
        start, stop, event, strata, lo, hi = (v[live] for v in (start, stop, event, strata, lo, hi))
        w = None if w is None else w[live]
        n = len(lo)
    times = np.concatenate(times_parts) if times_parts else np.empty(0)
    time_strata = np.concatenate(tstrata_parts) if tstrata_parts else np.empty(0, dtype=np.int64)

    # order rows by first event time at risk: risk-set sums then read memory mostly in sequence
    order = np.argsort(lo, kind="stable")
    keep_idx = np.flatnonzero(live)[order]
    live_order = keep_idx
    start, stop, event, strata, lo, hi = (v[order] for v in (start, stop, event, strata, lo, hi))
    w = None if w is None else w[order]
    Xc = X[keep_idx]  # one gather of the covariates, then centred in place
    Xc -= center
    rows = np.arange(n)
    diff = sp.csr_matrix(
        (np.concatenate([np.ones(n), -np.ones(n)]), (np.concatenate([lo, hi]), np.concatenate([rows, rows]))),
        shape=(m + 1, n),
    )
    deaths = np.flatnonzero(event)
    death_j = hi[deaths] - 1
    d = np.bincount(death_j, minlength=m).astype(np.int64)
    if ties == "efron":
        pair_j = np.repeat(np.arange(m), d)
        first = np.concatenate([[0], np.cumsum(d)[:-1]])
        k = np.arange(len(pair_j)) - np.repeat(first, d)
        pair_frac = k / np.repeat(d, d)
    elif ties == "breslow":
        pair_j = np.arange(m)
        pair_frac = np.zeros(m)
    else:  # pragma: no cover - checked by the caller
        raise ValueError(ties)
    pair_w = None
    if w is not None:
        dw = np.bincount(death_j, weights=w[deaths], minlength=m)  # weight sum of the deaths at each time
        pair_w = dw[pair_j] / d[pair_j] if ties == "efron" else dw
    return CoxData(Xc, center, start, stop, event, strata, times, time_strata, lo, hi, deaths, death_j, d, diff,
                   ties, pair_j, pair_frac, live_order, Xc[deaths], w, pair_w)


def _risk_sums(cd: CoxData, M: np.ndarray) -> np.ndarray:
    """Sum the rows of ``M`` over each event time's risk set: (m, k)."""
    return np.cumsum(cd.diff @ M, axis=0)[:-1]


def _cum_over_range(cd: CoxData, per_time: np.ndarray) -> np.ndarray:
    """For each row, the sum of ``per_time`` over the event times it is at risk for."""
    cum = np.concatenate([np.zeros((1,) + per_time.shape[1:]), np.cumsum(per_time, axis=0)])
    return cum[cd.hi] - cum[cd.lo]


#: Rows per block of the row-wise products below: their temporaries stay a few MB at any size.
_BLOCK_ROWS = 1 << 18


def _weighted_gram(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``X' diag(w) X``, a block of rows at a time (no weighted copy of the whole of ``X``).

    Up to ``_BLOCK_ROWS`` rows it is the one product ``(X * w[:, None]).T @ X``;
    above, the blocks' products are summed (the same sum, in another order).
    """
    n = X.shape[0]
    if n <= _BLOCK_ROWS:
        return (X * w[:, None]).T @ X
    out = np.zeros((X.shape[1], X.shape[1]))
    for s in range(0, n, _BLOCK_ROWS):
        block = X[s:s + _BLOCK_ROWS]
        out += (block * w[s:s + _BLOCK_ROWS, None]).T @ block
    return out


@dataclass
class _Eval:
    loglik: float
    grad: np.ndarray
    info: np.ndarray
    r: np.ndarray
    denom: np.ndarray  # per pair
    xbar: np.ndarray  # per pair (P, p)
    eta: np.ndarray


def evaluate(cd: CoxData, beta: np.ndarray, *, derivatives: bool = True) -> _Eval:
    """Log partial likelihood, score and information at ``beta`` (Efron or Breslow)."""
    # trial Newton steps may overflow; a non-finite log-likelihood makes ``fit`` halve the step
    with np.errstate(all="ignore"):
        return _evaluate(cd, beta, derivatives)


#: Cells (rows x columns) of the per-row terms summed over risk sets at once; more columns go in blocks.
_SUM_CELLS = 1 << 24


def _weighted_risk_sums(cd: CoxData, X: np.ndarray, rw: np.ndarray) -> np.ndarray:
    """Risk-set sums of ``[rw, X * rw]``: (m, p + 1), a block of columns at a time on large data.

    Each column's sums are the same numbers whatever the block (the sparse
    product adds a column's terms in the same order), so a block only bounds
    the per-row temporary at ``_SUM_CELLS`` cells (128 MB) instead of ``n x (p + 1)``.
    """
    n, p = X.shape
    width = max(1, _SUM_CELLS // max(n, 1))
    if width >= p + 1:
        M = np.empty((n, p + 1))
        M[:, 0] = rw
        np.multiply(X, rw[:, None], out=M[:, 1:])
        return _risk_sums(cd, M)
    S = np.empty((len(cd.times), p + 1))
    for c0 in range(0, p + 1, width):
        cols = range(c0, min(c0 + width, p + 1))
        M = np.empty((n, len(cols)))
        for i, c in enumerate(cols):
            if c == 0:
                M[:, i] = rw
            else:
                np.multiply(X[:, c - 1], rw, out=M[:, i])
        S[:, c0:c0 + len(cols)] = _risk_sums(cd, M)
    return S


def _evaluate(cd: CoxData, beta: np.ndarray, derivatives: bool) -> _Eval:
    X = cd.X
    p = X.shape[1]
    m = len(cd.times)
    eta = X @ beta
    with np.errstate(over="ignore"):
        r = np.exp(eta)
    rw = r if cd.w is None else r * cd.w  # each row's term in the risk sums
    S = _weighted_risk_sums(cd, X, rw)
    S0, S1 = S[:, 0], S[:, 1:]
    dr = cd.deaths
    j = cd.pair_j
    if cd.ties == "efron":
        rd = rw[dr]
        S0d = np.bincount(cd.death_j, weights=rd, minlength=m)
        S1d = np.zeros((m, p))
        for c in range(p):
            S1d[:, c] = np.bincount(cd.death_j, weights=rd * cd.Xd[:, c], minlength=m)
        f = cd.pair_frac
        denom = S0[j] - f * S0d[j]
        xbar = (S1[j] - f[:, None] * S1d[j]) / denom[:, None]
    else:
        denom = S0
        xbar = S1 / denom[:, None]
    weight = _pair_weight(cd, denom)
    if cd.w is None:
        loglik = float(eta[dr].sum() - (weight * np.log(denom)).sum())
    else:
        loglik = float(cd.w[dr] @ eta[dr] - (weight * np.log(denom)).sum())
    if not derivatives:
        return _Eval(loglik, None, None, r, denom, xbar, eta)
    Xd_sum = cd.Xd.sum(axis=0) if cd.w is None else cd.w[dr] @ cd.Xd
    grad = Xd_sum - (weight[:, None] * xbar).sum(axis=0)
    c = np.bincount(j, weights=weight / denom, minlength=m)
    w = rw * _cum_over_range(cd, c)
    info = _weighted_gram(X, w)
    info -= (xbar * weight[:, None]).T @ xbar
    if cd.ties == "efron":
        frac = cd.pair_frac if cd.w is None else cd.pair_frac * weight
        e = np.bincount(j, weights=frac / denom, minlength=m)
        Xd = cd.Xd
        info -= (Xd * (rw[dr] * e[cd.death_j])[:, None]).T @ Xd
    return _Eval(loglik, grad, info, r, denom, xbar, eta)


def fit(cd: CoxData, *, beta0=None, max_iter: int = 50, tol: float = 1e-12):
    """Newton–Raphson with step halving, as R's ``coxph`` (but to a tighter tolerance).

    Returns
    -------
    beta, evaluation at beta, loglik at zero, iterations, converged
    """
    p = cd.X.shape[1]
    beta = np.zeros(p) if beta0 is None else np.asarray(beta0, float)
    cur = evaluate(cd, beta)
    loglik0 = cur.loglik if beta0 is None else evaluate(cd, np.zeros(p), derivatives=False).loglik
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(cur.info, cur.grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(cur.info, cur.grad, rcond=None)[0]
        new_beta = beta + step
        new = evaluate(cd, new_beta)
        halvings = 0
        while (not np.isfinite(new.loglik) or new.loglik < cur.loglik - 1e-12 * abs(cur.loglik)) and halvings < 30:
            step = step / 2
            new_beta = beta + step
            new = evaluate(cd, new_beta)
            halvings += 1
        if not np.isfinite(new.loglik) or new.loglik < cur.loglik - 1e-12 * abs(cur.loglik):
            break  # no step improves the likelihood: keep the current estimate (reported as not converged)
        change = abs(new.loglik - cur.loglik)
        beta, cur = new_beta, new
        if change <= tol * max(1.0, abs(cur.loglik)) and np.max(np.abs(step)) < 1e-8 * max(1.0, np.max(np.abs(beta))):
            converged = True
            break
    return beta, cur, loglik0, it, converged


def score_residuals(cd: CoxData, ev: _Eval) -> np.ndarray:
    """Score residuals per row (R's ``residuals(fit, type = "score")``), Efron aware.

    With case weights these are R's unweighted score residuals (hazard
    increments from the weighted risk sums, as ``agscore3.c``); multiply by
    the weights for R's ``weighted = TRUE`` (the robust variance).
    """
    X = cd.X
    m = len(cd.times)
    p = X.shape[1]
    j = cd.pair_j
    if cd.ties == "efron":
        weight = np.ones_like(ev.denom)
    else:
        weight = cd.d.astype(float)
    hw = weight if cd.w is None else cd.pair_w  # weight of each step of the hazard
    h = np.bincount(j, weights=hw / ev.denom, minlength=m)
    hx = np.zeros((m, p))
    xsum = np.zeros((m, p))
    for c in range(p):
        hx[:, c] = np.bincount(j, weights=hw * ev.xbar[:, c] / ev.denom, minlength=m)
        xsum[:, c] = np.bincount(j, weights=weight * ev.xbar[:, c], minlength=m)
    H = _cum_over_range(cd, h)
    # r * (HX - X H), built in place a block of rows at a time (row by row the same numbers, without
    # (n, p) temporaries beside the result)
    cum = np.concatenate([np.zeros((1, p)), np.cumsum(hx, axis=0)])
    resid = np.empty((X.shape[0], p))
    for s in range(0, X.shape[0], _BLOCK_ROWS):
        rows = slice(s, s + _BLOCK_ROWS)
        block = resid[rows]
        np.take(cum, cd.hi[rows], axis=0, out=block, mode="clip")  # in range; "raise" would copy via a buffer
        block -= cum[cd.lo[rows]]
        block -= X[rows] * H[rows, None]
        block *= ev.r[rows, None]
    dr = cd.deaths
    jd = cd.death_j
    xmean = xsum / np.maximum(cd.d, 1)[:, None]
    resid[dr] += cd.Xd - xmean[jd]
    if cd.ties == "efron":
        f = cd.pair_frac if cd.w is None else cd.pair_frac * hw
        e = np.bincount(j, weights=f / ev.denom, minlength=m)
        ex = np.zeros((m, p))
        for c in range(p):
            ex[:, c] = np.bincount(j, weights=f * ev.xbar[:, c] / ev.denom, minlength=m)
        resid[dr] += ev.r[dr, None] * (cd.Xd * e[jd, None] - ex[jd])
    return resid


def schoenfeld(cd: CoxData, ev: _Eval) -> np.ndarray:
    """Schoenfeld residuals, one row per event row (order of ``cd.deaths``)."""
    m = len(cd.times)
    p = cd.X.shape[1]
    weight = np.ones_like(ev.denom) if cd.ties == "efron" else cd.d.astype(float)
    xsum = np.zeros((m, p))
    for c in range(p):
        xsum[:, c] = np.bincount(cd.pair_j, weights=weight * ev.xbar[:, c], minlength=m)
    xmean = xsum / np.maximum(cd.d, 1)[:, None]
    return cd.Xd - xmean[cd.death_j]


def weighted_information(cd: CoxData, ev: _Eval, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Information blocks weighted by a per-event-time function: (sum g I_t, sum g^2 I_t)."""
    X = cd.X
    m = len(cd.times)
    j = cd.pair_j
    weight = np.ones_like(ev.denom) if cd.ties == "efron" else cd.d.astype(float)
    out = []
    for power in (1, 2):
        gw = g[j] ** power * weight
        c = np.bincount(j, weights=gw / ev.denom, minlength=m)
        w = ev.r * _cum_over_range(cd, c)
        info = _weighted_gram(X, w) - (ev.xbar * gw[:, None]).T @ ev.xbar
        if cd.ties == "efron":
            e = np.bincount(j, weights=gw * cd.pair_frac / ev.denom, minlength=m)
            Xd = cd.Xd
            info -= (Xd * (ev.r[cd.deaths] * e[cd.death_j])[:, None]).T @ Xd
        out.append(info)
    return out[0], out[1]


def cluster_sum(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Sum the rows of ``values`` within integer cluster codes."""
    G = int(codes.max()) + 1 if len(codes) else 0
    out = np.zeros((G, values.shape[1]))
    for c in range(values.shape[1]):
        out[:, c] = np.bincount(codes, weights=values[:, c], minlength=G)
    return out


def _stable_order(keys: np.ndarray, upper: int) -> np.ndarray:
    """Stable argsort of small non-negative integers (radix sort when they fit in 16 bits)."""
    if upper < 2**16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    return np.argsort(keys, kind="stable")


def _count_below(pt_time, pt_sign, pt_pos, q_time, q_pos, n_time):
    """For each query, sum of ``pt_sign`` over points with time <= q_time and pos < q_pos.

    Offline two-dimensional dominance counting, vectorised over the bits of the
    (small) time index: at bit level b a query whose time has bit b set counts
    the points whose time shares its higher bits and has bit b clear (so their
    time is smaller); points with an equal time are counted at the end.
    ``pos`` values are integers; points are assumed presorted by ``pos``.
    """
    out = np.zeros(len(q_time))
    levels = max(1, int(np.ceil(np.log2(n_time + 2))))
    scale = np.int64(max(int(pt_pos.max(initial=0)), int(q_pos.max(initial=0))) + 1)
    for b in range(levels + 1):
        if b < levels:
            pmask = ((pt_time >> b) & 1) == 0
            qmask = ((q_time >> b) & 1) == 1
            if not qmask.any() or not pmask.any():
                continue
            ppre = pt_time[pmask] >> (b + 1)
            qpre = q_time[qmask] >> (b + 1)
            ppos, psg = pt_pos[pmask], pt_sign[pmask]
            upper = (n_time + 2) >> (b + 1)
        else:  # equal times
            qmask = slice(None)
            ppre, qpre, ppos, psg = pt_time, q_time, pt_pos, pt_sign
            upper = n_time + 2
        o = _stable_order(ppre, upper)  # stays sorted by pos within a prefix
        key_p = ppre[o].astype(np.int64) * scale + ppos[o]
        cs = np.concatenate([[0.0], np.cumsum(psg[o])])
        key_q = qpre.astype(np.int64) * scale
        qo = np.argsort(key_q + q_pos[qmask], kind="stable")
        hi = np.empty(len(qo), dtype=np.int64)
        lo = np.empty(len(qo), dtype=np.int64)
        hi[qo] = np.searchsorted(key_p, (key_q + q_pos[qmask])[qo], side="left")
        lo[qo] = np.searchsorted(key_p, key_q[qo], side="left")
        out[qmask] += cs[hi] - cs[lo]
    return out


def _rows_below_at_risk(lo_r, hi_r, pos, j, m, per_bucket):
    """For each query, the number of rows at positions below ``pos`` at risk at event time ``j``.

    Rows are in a fixed order (``lo_r``, ``hi_r``: the event-time range each is
    at risk for). They are cut into buckets of ``per_bucket`` consecutive rows.
    Walking the buckets in order, a running count of rows at risk per event
    time answers every query for the buckets wholly below it (one
    ``(buckets, times)`` grid per chunk of buckets, so memory stays small);
    the few rows of the query's own bucket below it are compared directly.
    Work is about ``rows / per_bucket * times + queries * per_bucket``.
    """
    n = len(lo_r)
    size = per_bucket
    n_buckets = -(-n // size)
    width = m + 1
    qb = pos // size  # the query's own bucket: rows in buckets below it are all counted
    out = np.zeros(len(pos), dtype=np.int64)
    qo = np.argsort(qb, kind="stable")
    qb_sorted = qb[qo]
    chunk = max(1, (1 << 20) // width)
    running = np.zeros(width, dtype=np.int64)  # rows at risk per event time in the buckets passed
    for c0 in range(0, n_buckets, chunk):
        c1 = min(n_buckets, c0 + chunk)
        r0, r1 = c0 * size, min(n, c1 * size)
        cell = (np.arange(r0, r1) // size - c0) * width
        cells = (c1 - c0) * width
        grid = np.bincount(cell + lo_r[r0:r1], minlength=cells) - np.bincount(cell + hi_r[r0:r1], minlength=cells)
        grid = grid.reshape(c1 - c0, width)
        np.cumsum(grid, axis=1, out=grid)  # at risk per bucket and time
        np.cumsum(grid, axis=0, out=grid)  # ... in this bucket and the ones before it in the chunk
        grid += running
        a, b = np.searchsorted(qb_sorted, [c0, c1])
        if b > a:
            sel = qo[a:b]
            k = qb[sel] - c0
            jj = j[sel]
            out[sel] = np.where(k > 0, grid[np.maximum(k - 1, 0), jj], running[jj])
        running = grid[-1].copy()
    a = np.searchsorted(qb_sorted, n_buckets)
    if a < len(qo):  # queries above every row
        out[qo[a:]] = running[j[qo[a:]]]
    # rows of the query's own bucket below it: positions qb * size .. pos - 1
    base = qb * size
    span = pos - base
    if span.max(initial=0) > 0:
        # narrow integers: the comparisons read a (queries, size) window of each, so width is time
        tdt = np.int16 if width < np.iinfo(np.int16).max else np.int32 if width < np.iinfo(np.int32).max else np.int64
        kdt = np.int16 if size < np.iinfo(np.int16).max else np.int64
        pad = np.zeros(size, dtype=tdt)
        lo_w = np.lib.stride_tricks.sliding_window_view(np.concatenate([lo_r.astype(tdt), pad]), size)
        hi_w = np.lib.stride_tricks.sliding_window_view(np.concatenate([hi_r.astype(tdt), pad]), size)
        k = np.arange(size, dtype=kdt)
        span = span.astype(kdt)
        jt = j.astype(tdt)
        step = max(1, (1 << 21) // size)
        for s in range(0, len(pos), step):
            sl = slice(s, s + step)
            jj = jt[sl, None]
            bb = base[sl]
            hit = (lo_w[bb] <= jj) & (hi_w[bb] > jj) & (k < span[sl, None])
            out[sl] += np.count_nonzero(hit, axis=1)
    return out


def _bucket_size(n: int, m: int, q: int) -> int:
    """Rows per bucket for :func:`_rows_below_at_risk` (0: the bitwise count is cheaper).

    Balances the grid (``n / size * m`` cells, each a few passes) against the
    direct comparisons (``q * size``), and compares the balance with the
    bitwise count's ``(2 n + q) * log2(m)`` sorted passes. The weights are
    rough timings on one machine; either way the counts are the same.
    """
    size = int(np.clip(2 * np.sqrt(max(n, 1) * (m + 1) / max(q, 1)), 1, 1 << 14))
    grid_cost = 4.0 * (n / size + 1) * (m + 1) + q * size
    bitwise_cost = 20.0 * (2 * n + q) * max(1, int(np.ceil(np.log2(m + 2))))
    return size if grid_cost <= bitwise_cost else 0


def concordance(cd: CoxData, eta: np.ndarray, *, per_bucket: int | None = None) -> dict:
    """Harrell's concordance for (start, stop] data, counted as R's ``concordance()``.

    For every event, compare its linear predictor with every other row at risk
    at that time (``start < t <= stop``, same stratum); pairs of tied events
    are not comparable. Concordant means the event had the higher risk score.
    ``per_bucket`` chooses the counting method (tests): rows per bucket of
    :func:`_rows_below_at_risk`, 0 for the bitwise :func:`_count_below`,
    None to pick the cheaper.
    """
    n = len(eta)
    m = len(cd.times)
    dr = cd.deaths
    if len(dr) == 0:
        return dict(concordant=0.0, discordant=0.0, tied_x=0.0, concordance=np.nan)
    if cd.w is not None:
        return _weighted_concordance(cd, eta)
    # rank the predictor with one sort; a row's rank group holds the rows with an equal predictor
    # (their order inside the group changes no count, so the sort need not be stable)
    order = np.argsort(eta)
    sorted_eta = eta[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (sorted_eta[1:] != sorted_eta[:-1]) & ~(np.isnan(sorted_eta[1:]) & np.isnan(sorted_eta[:-1]))
    group_start = np.flatnonzero(first)
    n_ranks = len(group_start)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.cumsum(first) - 1
    qrank = rank[dr]
    q_time = cd.death_j
    if per_bucket is None:
        per_bucket = _bucket_size(n, m, len(dr))
    if per_bucket > 0:
        # rows at risk with a smaller predictor (below the group) and with one not larger (below its end);
        # a death alone in its group is the only row of it, and at risk at its own time: leq = less + 1
        group_end = np.append(group_start[1:], n)
        shared = np.flatnonzero(group_end[qrank] - group_start[qrank] > 1)
        counts = _rows_below_at_risk(cd.lo[order], cd.hi[order],
                                     np.concatenate([group_start[qrank], group_end[qrank[shared]]]),
                                     np.concatenate([q_time, q_time[shared]]), m, int(per_bucket))
        less = counts[:len(dr)].astype(float)
        leq = less + 1.0
        leq[shared] = counts[len(dr):]
    else:
        less, leq = _bitwise_below(cd, rank, qrank, m)
    atrisk = _risk_count(cd)[cd.death_j]
    # remove the tied deaths at the same time (tied.y) from each count
    order = np.lexsort((qrank, cd.death_j))
    jj, rr = cd.death_j[order], qrank[order]
    key = jj.astype(float) * (n_ranks + 1) + rr
    less_d = np.searchsorted(key, key, side="left") - np.searchsorted(jj, jj, side="left")
    leq_d = np.searchsorted(key, key, side="right") - np.searchsorted(jj, jj, side="left")
    ndead = cd.d[jj]
    less_o = less[order] - less_d
    leq_o = leq[order] - leq_d  # includes itself in leq_d, so leq_o excludes self
    tied = leq_o - less_o
    greater = (atrisk[order] - ndead) - leq_o + 0.0
    conc, disc, tx = less_o.sum(), greater.sum(), tied.sum()
    total = conc + disc + tx
    return dict(concordant=conc, discordant=disc, tied_x=tx,
                concordance=(conc + tx / 2) / total if total > 0 else np.nan)


def _weighted_concordance(cd: CoxData, eta: np.ndarray) -> dict:
    """Harrell's concordance with case weights, as R's ``concordancefit``: a pair counts ``w_event * w_other``."""
    m = len(cd.times)
    dr = cd.deaths
    w = cd.w
    rank = np.unique(eta, return_inverse=True)[1].astype(np.int64).ravel()
    n_ranks = int(rank.max()) + 1
    qrank = rank[dr]
    less, leq = _bitwise_below(cd, rank, qrank, m, weights=w)
    atrisk = np.cumsum(np.bincount(cd.lo, weights=w, minlength=m + 1)
                       - np.bincount(cd.hi, weights=w, minlength=m + 1))[:-1][cd.death_j]
    # remove the tied deaths at the same time (tied on y) from each weighted count
    order = np.lexsort((qrank, cd.death_j))
    jj, rr = cd.death_j[order], qrank[order]
    wd = w[dr][order]
    cw = np.concatenate([[0.0], np.cumsum(wd)])
    key = jj.astype(float) * (n_ranks + 1) + rr
    first = cw[np.searchsorted(jj, jj, side="left")]
    less_d = cw[np.searchsorted(key, key, side="left")] - first
    leq_d = cw[np.searchsorted(key, key, side="right")] - first
    ndead = np.bincount(cd.death_j, weights=w[dr], minlength=m)[jj]
    less_o = less[order] - less_d
    leq_o = leq[order] - leq_d
    tied = leq_o - less_o
    greater = (atrisk[order] - ndead) - leq_o
    conc, disc, tx = wd @ less_o, wd @ greater, wd @ tied
    total = conc + disc + tx
    return dict(concordant=conc, discordant=disc, tied_x=tx,
                concordance=(conc + tx / 2) / total if total > 0 else np.nan)


def _bitwise_below(cd: CoxData, rank: np.ndarray, qrank: np.ndarray, m: int, weights=None):
    """Rows at risk with a smaller and with a not larger predictor than each death (bitwise count).

    With ``weights`` the rows' weights are summed instead of counted.
    """
    # points: (lo, +1) and (hi, -1), counted when time index <= j; both sit at the row's rank
    live = np.flatnonzero(cd.hi > cd.lo)  # rows at risk at one event time at least
    live = live[np.argsort(rank[live], kind="stable")]
    nl = len(live)
    pt_time = np.concatenate([cd.lo[live], cd.hi[live]])
    if weights is None:
        pt_sign = np.concatenate([np.ones(nl), -np.ones(nl)])
    else:
        pt_sign = np.concatenate([weights[live], -weights[live]])
    pt_rank = np.concatenate([rank[live], rank[live]])
    o = np.argsort(pt_rank, kind="stable")
    pt_time, pt_sign, pt_rank = pt_time[o], pt_sign[o], pt_rank[o]
    q_time = cd.death_j
    # positions: 3*rank + 1 for points; 3*rank for "less" queries
    pt_pos = 3 * pt_rank.astype(np.int64) + 1
    less = _count_below(pt_time, pt_sign, pt_pos, q_time, (3 * qrank).astype(np.int64), m)
    # rows at risk with exactly the same predictor: a one-dimensional search on (rank, time)
    width = np.int64(m + 2)
    key_p = pt_rank.astype(np.int64) * width + pt_time
    o = np.argsort(key_p, kind="stable")
    key_p = key_p[o]
    cs = np.concatenate([[0.0], np.cumsum(pt_sign[o])])
    base = qrank.astype(np.int64) * width
    equal = cs[np.searchsorted(key_p, base + q_time, side="right")] - cs[np.searchsorted(key_p, base, side="left")]
    return less, less + equal


def _risk_count(cd: CoxData) -> np.ndarray:
    """Number of rows at risk at each event time."""
    return np.cumsum(np.bincount(cd.lo, minlength=len(cd.times) + 1) - np.bincount(cd.hi, minlength=len(cd.times) + 1))[:-1]


def simulate_counting_process(n: int, seed: int = 0, *, year: int = 365, n_extra: int = 0,
                              beta=None) -> tuple:
    """Simulate left-truncated start/stop data with time-varying covariates (tests, benchmarks).

    Returns ``(intervals, person)`` as DataFrames shaped like the toolkit's
    analysis tables. Times are integers in units of ``year / 365`` days
    (``year=365``: daily, ``year=12``: monthly, with heavy ties). Hazards:
    voluntary exit ``exp(x'beta)`` times a baseline of about 1/4 per year,
    involuntary about 1/15 per year. ``n_extra`` adds that many standard-normal
    noise covariates ``z1..`` (benchmarks use them to reach ~10 covariates).
    """
    rng = np.random.default_rng(seed)
    W = 3 * year
    beta = dict(alignment_cascade=-0.8, engagement=-0.35, manager_program=-0.3, manager_rating=-0.15,
                job_level=0.1) if beta is None else beta
    n_mgr = max(2, n // 10)
    mgr = rng.integers(0, n_mgr, n)
    mgr_prog = np.where(rng.random(n_mgr) < 0.5, rng.integers(1, W, n_mgr), 10 * W)  # calendar start
    mgr_rating = rng.integers(1, 6, (n_mgr, 3))
    in_window = rng.random(n) < 0.35
    h = np.where(in_window, rng.integers(0, W - 1, n), 0)
    entry = np.where(in_window, 0, rng.integers(1, 8 * year, n))
    job = rng.choice(np.arange(1, 6), n, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    dept = rng.choice(np.array(["Finance", "Operations", "Sales", "Technology"]), n)
    base_align = rng.beta(3, 2, n)
    align = np.clip(base_align[:, None] + rng.normal(0, 0.1, (n, 3)), 0, 1)
    base_eng = rng.normal(0, 1, n)
    eng = base_eng[:, None] + rng.normal(0, 0.5, (n, 3))
    c = mgr_prog[mgr]
    pts = np.column_stack([h, np.full(n, year), np.full(n, 2 * year), np.where(c < W, c, W), np.full(n, W)])
    pts = np.sort(np.maximum(pts, h[:, None]), axis=1)
    a, b = pts[:, :-1], pts[:, 1:]
    keep = b > a
    pid = np.repeat(np.arange(n), keep.sum(axis=1))
    ca, cb = a[keep], b[keep]
    yr = np.minimum(ca // year, 2)
    prog = (ca >= c[pid]).astype(float)
    X = {
        "alignment_cascade": align[pid, yr],
        "engagement": eng[pid, yr],
        "manager_program": prog,
        "manager_rating": mgr_rating[mgr[pid], yr].astype(float),
        "job_level": job[pid].astype(float),
    }
    extra = rng.normal(0, 1, (len(pid), n_extra))
    lin = sum(beta.get(k, 0.0) * v for k, v in X.items())
    lin = lin - np.mean(lin)
    length = (cb - ca).astype(float)
    t0 = ca - h[pid] + entry[pid]  # tenure at interval start
    first = np.concatenate([[0], np.flatnonzero(np.diff(pid)) + 1])
    out_time = np.full(n, np.inf)
    out_kind = np.zeros(n, dtype=int)
    for kind, rate, lp in ((1, 0.25 / year, lin), (2, 1 / 15 / year, 0.0 * lin)):
        lam = rate * np.exp(lp)
        cum = np.cumsum(lam * length)
        cum_prev = cum - lam * length
        base = np.repeat(cum[first] - (lam * length)[first], np.diff(np.append(first, len(pid))))
        ca_rel, cu_rel = cum - base, cum_prev - base
        E = rng.exponential(1.0, n)[pid]
        hit = (cu_rel < E) & (ca_rel >= E)
        t = t0 + (E - cu_rel) / lam
        ti = np.full(n, np.inf)
        ti[pid[hit]] = np.ceil(t[hit] - 1e-9)
        better = ti < out_time
        out_time[better] = ti[better]
        out_kind[better] = kind
    stop_t = t0 + length
    exit_ = np.where(np.isfinite(out_time), out_time, entry + (W - h)).astype(np.int64)
    keep_row = t0 < exit_[pid]
    pid2 = pid[keep_row]
    start = t0[keep_row].astype(np.int64)
    stop = np.minimum(stop_t[keep_row], exit_[pid2]).astype(np.int64)
    last = np.append(pid2[1:] != pid2[:-1], True)
    etype = np.array(["censored", "voluntary", "involuntary"])[out_kind]
    ids = np.char.add("E", np.char.zfill(np.arange(n).astype(str), 6))
    mids = np.char.add("M", np.char.zfill(mgr.astype(str), 5))
    intervals = pd.DataFrame({
        "employee_id": ids[pid2], "spell": 1, "manager_id": mids[pid2], "department": dept[pid2],
        "start": start, "stop": stop,
        "event": (last & (out_kind[pid2] == 1)).astype(int),
        "event_type": np.where(last, etype[pid2], "censored"),
    })
    for k, v in X.items():
        intervals[k] = v[keep_row]
    intervals["job_level"] = intervals["job_level"].astype(int)
    for i in range(n_extra):
        intervals[f"z{i + 1}"] = extra[keep_row, i]
    ever = (c < (h + exit_ - entry)).astype(int)  # manager started before the employee left
    person = pd.DataFrame({
        "employee_id": ids, "spell": 1, "manager_id": mids, "department": dept,
        "entry": entry.astype(np.int64), "exit": exit_, "event": (out_kind == 1).astype(int), "event_type": etype,
        "job_level": job, "alignment_cascade": align[:, 0], "engagement": eng[:, 0],
        "manager_ever_program": ever,
    })
    return intervals, person


def baseline_hazard(cd: CoxData, ev: _Eval) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Increments of the baseline cumulative hazard at each event time (covariates at ``cd.center``).

    As R's ``survfit.coxph`` (``agsurv``): with Efron ties an event time with
    ``d`` tied deaths adds ``sum_k 1 / (S0 - k/d S0_deaths)`` to the hazard
    (Breslow: ``d / S0``). Returns ``(hazard, variance, xbar)`` per event
    time: the hazard increment, the increment of its variance with beta known
    (``sum_k 1 / denom_k^2``), and the increment of the term that carries the
    variance of beta (``sum_k xbar_k / denom_k``, shape ``(m, p)``).
    """
    m = len(cd.times)
    j = cd.pair_j
    weight = _pair_weight(cd, np.ones(len(j)))
    inv = weight / ev.denom
    hazard = np.bincount(j, weights=inv, minlength=m)
    variance = np.bincount(j, weights=inv / ev.denom, minlength=m)
    xbar = np.zeros((m, cd.X.shape[1]))
    for c in range(cd.X.shape[1]):
        xbar[:, c] = np.bincount(j, weights=inv * ev.xbar[:, c], minlength=m)
    return hazard, variance, xbar


# --------------------------------------------------------------------------- gamma frailty (penalised)
@dataclass
class PenalisedFit:
    """A penalised partial-likelihood fit at one frailty variance ``theta``."""

    coef: np.ndarray  # fixed effects, then the log frailties of the groups
    evaluation: _Eval  # partial likelihood (no penalty) at ``coef``
    info: np.ndarray  # information of the penalised likelihood (R's sparse form when ``sparse``)
    penalty: float  # -nu * sum(w): what R's ``fit$penalty`` reports
    integrated: float  # the integrated likelihood of ``theta`` (R's ``c.loglik``)
    iterations: int
    converged: bool


def gamma_correction(d: np.ndarray, nu: float) -> float:
    """The terms that turn ``PL + nu * sum(w)`` into the integrated gamma-frailty likelihood.

    Per group with ``d`` events: ``d + nu log(nu) - (nu + d) log(nu + d) +
    lgamma(nu + d) - lgamma(nu)`` (the gamma integral of a group's
    frailty, with the baseline hazard profiled out), as R's ``frailty.gammacon``.
    """
    from scipy.special import gammaln  # deferred: only frailty fits need it

    d = np.asarray(d, float)
    return float(np.sum(d + nu * np.log(nu) - (nu + d) * np.log(nu + d) + gammaln(nu + d) - gammaln(nu)))


def evaluate_grouped(cd: CoxData, coef: np.ndarray, n_fixed: int, codes: np.ndarray) -> _Eval:
    """:func:`evaluate` when the columns after ``n_fixed`` are (centred) indicators of the groups ``codes``.

    The same numbers, but the weighted product ``X' diag(w) X`` is built from
    per-group sums instead of a dense product over every indicator column
    (``codes``: the group of each input row, as given to :func:`prepare`).
    """
    with np.errstate(all="ignore"):
        ev = _evaluate(cd, coef, False)
    X, p = cd.X, n_fixed
    m = len(cd.times)
    j = cd.pair_j
    weight = np.ones_like(ev.denom) if cd.ties == "efron" else cd.d.astype(float)
    grad = cd.Xd.sum(axis=0) - (weight[:, None] * ev.xbar).sum(axis=0)
    c = np.bincount(j, weights=weight / ev.denom, minlength=m)
    w = ev.r * _cum_over_range(cd, c)
    g = codes[cd.rows]
    G = X.shape[1] - p
    F, mu = X[:, :p], cd.center[p:]
    s = np.bincount(g, weights=w, minlength=G)
    Fw = F * w[:, None]
    FD = np.column_stack([np.bincount(g, weights=Fw[:, k], minlength=G) for k in range(p)]).T if p else np.zeros((0, G))
    FDc = FD - np.outer(Fw.sum(axis=0), mu)
    info = np.empty((p + G, p + G))
    info[:p, :p] = Fw.T @ F
    info[:p, p:] = FDc
    info[p:, :p] = FDc.T
    info[p:, p:] = np.diag(s) - np.outer(s, mu) - np.outer(mu, s) + np.outer(mu, mu) * w.sum()
    info -= (ev.xbar * weight[:, None]).T @ ev.xbar
    if cd.ties == "efron":
        e = np.bincount(j, weights=cd.pair_frac / ev.denom, minlength=m)
        Xd = cd.Xd
        info -= (Xd * (ev.r[cd.deaths] * e[cd.death_j])[:, None]).T @ Xd
    return _Eval(ev.loglik, grad, info, ev.r, ev.denom, ev.xbar, ev.eta)


def fit_gamma_frailty(cd: CoxData, n_fixed: int, theta: float, group_events: np.ndarray, *, codes=None,
                      init=None, sparse: bool = True, max_iter: int = 100, tol: float = 1e-13) -> PenalisedFit:
    """Maximise the penalised partial likelihood of a shared gamma frailty at variance ``theta``.

    The last columns of ``cd.X`` are one indicator per group; their
    coefficients ``w`` (log frailties) carry the penalty ``nu * sum(exp(w) - w)``
    with ``nu = 1 / theta`` (R's ``frailty.gamma``). Newton steps with the full
    information matrix; ``sparse`` then keeps only the diagonal of the
    frailty block in the reported information, as R does with more than 5 groups.
    ``codes`` (the group of each input row) selects :func:`evaluate_grouped`.
    """

    def evaluate_at(c):
        return evaluate(cd, c) if codes is None else evaluate_grouped(cd, c, n_fixed, codes)

    p = cd.X.shape[1]
    nu = 1.0 / theta
    fr = slice(n_fixed, p)
    coef = np.zeros(p) if init is None else np.array(init, float)

    def penalised(c, ev):
        w = c[fr]
        return ev.loglik - nu * float(np.sum(np.exp(w) - w))

    cur = evaluate_at(coef)
    cur_pen = penalised(coef, cur)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        w = coef[fr]
        grad = cur.grad.copy()
        grad[fr] -= nu * (np.exp(w) - 1)
        info = cur.info.copy()
        info[fr, fr] += np.diag(nu * np.exp(w))
        step = np.linalg.solve(info, grad)
        new_coef = coef + step
        new = evaluate_at(new_coef)
        new_pen = penalised(new_coef, new)
        halvings = 0
        while (not np.isfinite(new_pen) or new_pen < cur_pen - 1e-12 * abs(cur_pen)) and halvings < 30:
            step = step / 2
            new_coef = coef + step
            new = evaluate_at(new_coef)
            new_pen = penalised(new_coef, new)
            halvings += 1
        change = abs(new_pen - cur_pen)
        coef, cur, cur_pen = new_coef, new, new_pen
        if change <= tol * max(1.0, abs(cur_pen)) and np.max(np.abs(step)) < 1e-9 * max(1.0, np.max(np.abs(coef))):
            converged = True
            break
    w = coef[fr]
    w_mean = np.log(np.mean(np.exp(w)))  # R recentres so that mean(exp(w)) = 1 (true at the optimum)
    coef[fr] = w - w_mean
    info = cur.info.copy()
    info[fr, fr] += np.diag(nu * np.exp(coef[fr]))
    if sparse:
        block = info[fr, fr]
        info[fr, fr] = np.diag(np.diag(block))
    penalty = -nu * float(np.sum(coef[fr]))
    integrated = cur.loglik - penalty + gamma_correction(group_events, nu)
    return PenalisedFit(coef, cur, info, penalty, integrated, it, converged)
