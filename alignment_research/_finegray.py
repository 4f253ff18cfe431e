"""Vectorised Fine–Gray subdistribution hazards engine, the model of R's ``cmprsk::crr`` (private).

Everything here works on plain numpy arrays; ``competing.py`` wraps it.

Each subject has one time ``t`` and a status: 1 for the cause of interest, 2
for a competing event, 0 for censored. At a time ``u`` of the cause, the risk
set holds everyone still without an event (``t >= u``, weight 1) and everyone
who had a competing event before ``u``, with the weight ``G(u-) / G(t-)``: the
Kaplan–Meier estimate of the censoring distribution ``G`` (censored = "event")
just before ``u``, over its value just before their own time. Ties are
Breslow's. The variance is crr's sandwich ``I^-1 V I^-1``: ``V`` sums the
squares of each subject's score term ``eta_i`` plus ``psi_i``, the term that
accounts for ``G`` being estimated (Fine and Gray 1999, section 3).

With late entry (which crr cannot fit) a row is at risk only after its entry,
and the weight is ``W(u-) / W(t-)`` with ``W = G H`` as ``survival::finegray``
computes it (Geskus 2011): ``G`` with delayed entry, ``H`` the reverse-time
Kaplan–Meier of the entry times. The variance is then the robust sandwich of
the score terms alone (the weights taken as known, as ``coxph`` on
``finegray`` rows with ``cluster(id)``).

Nothing loops over subjects or risk sets in Python: the risk-set sums at the
cause's times are a reverse cumulative sum over subjects sorted by time plus
``G(u-)`` times a cumulative sum over the competing events before ``u``, and
every per-subject integral over the cause's times is a difference of
cumulative sums read at the subject's own time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__: list[str] = []

#: crr reads the censoring Kaplan–Meier at ``t * (1 - 100 eps)``: just before ``t``.
_BEFORE = 1 - 100 * np.finfo(float).eps


@dataclass
class FineGrayData:
    """Prepared arrays, sorted by time (nothing here depends on beta)."""

    X: np.ndarray  # (n, p) centred covariates, rows sorted by time
    center: np.ndarray  # (p,) column means removed
    time: np.ndarray  # (n,) sorted times
    status: np.ndarray  # (n,) 0 censored, 1 cause, 2 competing
    order: np.ndarray  # (n,) input position of each sorted row
    g_before: np.ndarray  # (n,) censoring KM just before each subject's time, G(t-)
    times: np.ndarray  # (m,) distinct times of the cause
    d: np.ndarray  # (m,) events of the cause at each
    g_times: np.ndarray  # (m,) G(u-) at each time of the cause
    first_at: np.ndarray  # (m,) first sorted row with time >= u (the rows still without an event)
    comp: np.ndarray  # sorted row indices of the competing events (ascending time)
    comp_before: np.ndarray  # (m,) competing events with time < u
    fail: np.ndarray  # sorted row indices of the events of the cause
    fail_j: np.ndarray  # index into ``times`` of each event of the cause
    upto: np.ndarray  # (n,) number of the cause's times <= each subject's time
    cens_times: np.ndarray  # (L,) distinct censoring times
    cens_count: np.ndarray  # (L,) censored at each
    cens_at_risk: np.ndarray  # (L,) subjects with time >= s (the censoring KM's risk set)
    cens_j: np.ndarray  # (n,) index into ``cens_times`` of each censored subject (else -1)
    cens_upto: np.ndarray  # (n,) number of censoring times <= each subject's time
    delayed: bool = False  # late entry: survival::finegray's weights, no term for their estimation
    since: np.ndarray | None = None  # (n,) number of the cause's times <= each subject's entry
    entry_order: np.ndarray | None = None  # sorted rows in order of entry
    entered_after: np.ndarray | None = None  # (m,) rows (in entry order) before the first with entry >= u


def censoring_before(time: np.ndarray, status: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Kaplan–Meier of the censoring distribution read just before ``at``, as crr reads it.

    crr fits ``survfit(Surv(time, status == censored) ~ 1)`` (every subject with
    ``time >= s`` is at risk of being censored at ``s``) and reads the step
    function at ``at * (1 - 100 eps)``: the value at the last distinct time at
    or below that point, 1 before the first. For ``at > 0`` this is ``G(at-)``.
    """
    knots, inverse = np.unique(time, return_inverse=True)
    n_at = len(time) - np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(knots)))[:-1]])
    censored = np.bincount(inverse, weights=(status == 0).astype(float), minlength=len(knots))
    surv = np.cumprod(1 - censored / n_at)
    k = np.searchsorted(knots, np.asarray(at, float) * _BEFORE, side="right") - 1
    return np.where(k >= 0, surv[np.maximum(k, 0)], 1.0)


def truncation_censoring_before(time, status, entry, at) -> np.ndarray:
    """``G(at-) H(at-)``: censoring times truncation weights of ``survival::finegray`` with late entry.

    ``G`` is the Kaplan–Meier of censoring with delayed entry (at risk at ``s``:
    ``entry < s <= time``; an event at ``s`` leaves just before a censoring at
    ``s``), ``H(v)`` the reverse-time Kaplan–Meier of the entry times, the
    product over entry times ``e > v`` of ``1 - (entries at e) / (entry <= e < time)``
    (Geskus 2011, eq. 11). Both are read just before ``at``.
    """
    at = np.asarray(at, float)
    c_times = np.unique(time[status == 0])
    e_sorted, t_sorted = np.sort(entry), np.sort(time)
    # at risk of censoring at s: entry < s <= time, less the events at s (they leave first)
    events = np.sort(time[status != 0])
    y_c = (np.searchsorted(e_sorted, c_times, "left") - np.searchsorted(t_sorted, c_times, "left")
           - (np.searchsorted(events, c_times, "right") - np.searchsorted(events, c_times, "left")))
    c_count = np.searchsorted(np.sort(time[status == 0]), c_times, "right") - np.searchsorted(
        np.sort(time[status == 0]), c_times, "left")
    g = np.concatenate([[1.0], np.cumprod(1 - c_count / y_c)])
    g_before = g[np.searchsorted(c_times, at, "left")]  # censoring times < at
    e_times, e_count = np.unique(entry, return_counts=True)
    y_e = np.searchsorted(e_sorted, e_times, "right") - np.searchsorted(t_sorted, e_times, "right")
    with np.errstate(divide="ignore"):  # the first entry time empties its risk set: H = 0 before it (never read)
        h = _tail(np.log1p(-e_count / y_e))  # h[j] = log of the product over entry times from the j-th on
        h_before = np.exp(h[np.searchsorted(e_times, at, "left")])  # entry times >= at
    return g_before * h_before


def prepare(X, time, status, entry=None) -> FineGrayData:
    """Sort the subjects once and set up every index the fit and the variance read.

    With ``entry`` (late entry: some ``entry > 0``) a row is at risk from its
    entry, and a competing event's weight is ``W(u-)/W(t-)`` with ``W = G H``
    of :func:`truncation_censoring_before` (``survival::finegray``).
    """
    X = np.asarray(X, float)
    if X.ndim == 1:
        X = X[:, None]
    time = np.asarray(time, float)
    status = np.asarray(status, np.int64)
    order = np.argsort(time, kind="stable")
    time, status = time[order], status[order]
    center = X.mean(axis=0)
    Xs = X[order] - center
    g_before = censoring_before(time, status, time)
    fail = np.flatnonzero(status == 1)
    times, fail_j, d = np.unique(time[fail], return_inverse=True, return_counts=True)
    g_times = censoring_before(time, status, times)
    first_at = np.searchsorted(time, times, side="left")
    comp = np.flatnonzero(status == 2)
    comp_before = np.searchsorted(time[comp], times, side="left")
    upto = np.searchsorted(times, time, side="right")
    cens = np.flatnonzero(status == 0)
    cens_times, cens_inverse, cens_count = np.unique(time[cens], return_inverse=True, return_counts=True)
    cens_at_risk = len(time) - np.searchsorted(time, cens_times, side="left")
    cens_j = np.full(len(time), -1)
    cens_j[cens] = cens_inverse
    cens_upto = np.searchsorted(cens_times, time, side="right")
    fd = FineGrayData(Xs, center, time, status, order, g_before, times, d.astype(float), g_times, first_at,
                      comp, comp_before, fail, fail_j, upto, cens_times, cens_count.astype(float),
                      cens_at_risk.astype(float), cens_j, cens_upto)
    if entry is not None:
        entry = np.asarray(entry, float)[order]
        if (entry > 0).any():
            fd.delayed = True
            fd.g_before = truncation_censoring_before(time, status, entry, time)
            fd.g_times = truncation_censoring_before(time, status, entry, times)
            fd.since = np.searchsorted(times, entry, side="right")
            fd.entry_order = np.argsort(entry, kind="stable")
            fd.entered_after = np.searchsorted(entry[fd.entry_order], times, side="left")
    return fd


def _tail(values: np.ndarray) -> np.ndarray:
    """Reverse cumulative sums with a trailing zero: ``out[j] = values[j:].sum(axis=0)``."""
    out = np.zeros((len(values) + 1,) + values.shape[1:])
    out[:-1] = np.cumsum(values[::-1], axis=0)[::-1]
    return out


def _head(values: np.ndarray) -> np.ndarray:
    """Cumulative sums with a leading zero: ``out[j] = values[:j].sum(axis=0)``."""
    out = np.zeros((len(values) + 1,) + values.shape[1:])
    out[1:] = np.cumsum(values, axis=0)
    return out


@dataclass
class _Eval:
    loglik: float
    score: np.ndarray
    info: np.ndarray
    r: np.ndarray  # exp(eta) per sorted row
    s0: np.ndarray  # (m,) weighted risk-set sums at the cause's times
    xbar: np.ndarray  # (m, p) weighted risk-set means


def _risk_sums(fd: FineGrayData, M: np.ndarray) -> np.ndarray:
    """Weighted risk-set sums of the rows of ``M`` (already multiplied by exp(eta)) at the cause's times."""
    still = _tail(M)[fd.first_at]
    if fd.delayed:  # not yet entered: entry >= u
        still = still - _tail(M[fd.entry_order])[fd.entered_after]
    before = _head(M[fd.comp] / fd.g_before[fd.comp, None])[fd.comp_before]
    return still + fd.g_times[:, None] * before


def evaluate(fd: FineGrayData, beta: np.ndarray, *, derivatives: bool = True) -> _Eval:
    """Log pseudo-likelihood, score and information at ``beta`` (Breslow ties, as crr)."""
    X = fd.X
    with np.errstate(over="ignore", invalid="ignore"):
        eta = X @ beta
        r = np.exp(eta)
        M = np.column_stack([r, X * r[:, None]])
        S = _risk_sums(fd, M)
        s0, s1 = S[:, 0], S[:, 1:]
        xbar = s1 / s0[:, None]
        loglik = float(eta[fd.fail].sum() - (fd.d * np.log(s0)).sum())
    if not derivatives:
        return _Eval(loglik, None, None, r, s0, xbar)
    score = X[fd.fail].sum(axis=0) - fd.d @ xbar
    # sum over the cause's times of d/S0 * S2 = X' diag(r w) X, w the weight of each row summed over its times
    w = _at_risk_weights(fd, fd.d / s0)
    info = (X * (r * w)[:, None]).T @ X - (xbar * fd.d[:, None]).T @ xbar
    return _Eval(loglik, score, info, r, s0, xbar)


def _at_risk_weights(fd: FineGrayData, per_time: np.ndarray) -> np.ndarray:
    """For each row, ``per_time`` summed over the cause's times it is at risk for, times its risk weight.

    ``per_time`` may be (m,) or (m, k). A row is at risk with weight 1 at the
    times up to its own, and a competing event with weight ``G(u-)/G(t-)`` at
    every later time ``u``.
    """
    cum = _head(per_time)
    out = cum[fd.upto] - cum[fd.since] if fd.delayed else cum[fd.upto]
    later = _tail(per_time * (fd.g_times if per_time.ndim == 1 else fd.g_times[:, None]))[fd.upto]
    comp = fd.status == 2
    scale = np.where(comp, 1 / fd.g_before, 0.0)
    return out + (later * scale if per_time.ndim == 1 else later * scale[:, None])


def fit(fd: FineGrayData, *, beta0=None, max_iter: int = 50, tol: float = 1e-10):
    """Newton–Raphson with step halving to a tight tolerance.

    Returns
    -------
    beta, evaluation at beta, log pseudo-likelihood at zero, iterations, converged
    """
    p = fd.X.shape[1]
    beta = np.zeros(p) if beta0 is None else np.asarray(beta0, float)
    cur = evaluate(fd, beta)
    loglik0 = cur.loglik if beta0 is None else evaluate(fd, np.zeros(p), derivatives=False).loglik
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(cur.info, cur.score)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(cur.info, cur.score, rcond=None)[0]
        new = evaluate(fd, beta + step)
        halvings = 0
        while (not np.isfinite(new.loglik) or new.loglik < cur.loglik - 1e-12 * abs(cur.loglik)) and halvings < 30:
            step = step / 2
            new = evaluate(fd, beta + step)
            halvings += 1
        if not np.isfinite(new.loglik) or new.loglik < cur.loglik - 1e-12 * abs(cur.loglik):
            break  # no step improves the pseudo-likelihood: keep the current estimate (not converged)
        beta, cur = beta + step, new
        if np.max(np.abs(step)) < tol * max(1.0, float(np.max(np.abs(beta)))):
            converged = True
            break
    return beta, cur, loglik0, it, converged


def influence(fd: FineGrayData, ev: _Eval) -> np.ndarray:
    """Each subject's term of crr's sandwich, ``eta_i + psi_i`` (rows in sorted order).

    ``eta_i`` is the subject's weighted score residual: ``x_i - xbar(t_i)`` for
    an event of the cause, minus the integral of ``x_i - xbar(u)`` against the
    estimated subdistribution hazard over the times the subject is at risk
    (with its weight). ``psi_i`` carries the estimation of ``G``: with ``q(s)``
    the sum, over the cause's times ``u >= s``, of the competing events before
    ``s`` centred at ``xbar(u)`` (weights ``G(u-)/G(t-)``) per unit of ``S0(u)``,
    ``psi_i = q(t_i)/Y(t_i)`` if censored, minus the sum of ``q(s) c(s)/Y(s)^2``
    over the censoring times ``s <= t_i`` (``c`` censored, ``Y`` at risk at ``s``).
    """
    X, r = fd.X, ev.r
    hazard = fd.d / ev.s0  # dLambda at each time of the cause
    per_time = np.column_stack([hazard, hazard[:, None] * ev.xbar])  # (m, 1 + p)
    W = _at_risk_weights(fd, per_time)
    eta = -r[:, None] * (X * W[:, :1] - W[:, 1:])
    eta[fd.fail] += X[fd.fail] - ev.xbar[fd.fail_j]
    psi = np.zeros_like(eta)
    if len(fd.cens_times) and not fd.delayed:
        # q(s) = A1(s) B0(s) - A0(s) B1(s): A over competing events before s, B over the cause's times >= s
        comp = fd.comp
        a = r[comp] / fd.g_before[comp]
        A = _head(np.column_stack([a, X[comp] * a[:, None]]))[np.searchsorted(fd.time[comp], fd.cens_times, "left")]
        gh = fd.g_times * hazard
        B = _tail(np.column_stack([gh, ev.xbar * gh[:, None]]))[np.searchsorted(fd.times, fd.cens_times, "left")]
        q = A[:, 1:] * B[:, :1] - A[:, :1] * B[:, 1:]  # (L, p)
        comp_part = _head(q * (fd.cens_count / fd.cens_at_risk ** 2)[:, None])[fd.cens_upto]
        psi -= comp_part
        cens = np.flatnonzero(fd.cens_j >= 0)
        j = fd.cens_j[cens]
        psi[cens] += q[j] / fd.cens_at_risk[j, None]
    return eta + psi


def sandwich(fd: FineGrayData, ev: _Eval) -> tuple[np.ndarray, np.ndarray]:
    """crr's variance ``I^-1 V I^-1`` and the model-based ``I^-1`` (NaN when ``I`` is singular)."""
    try:
        inv = np.linalg.inv(ev.info)
    except np.linalg.LinAlgError:
        nan = np.full_like(ev.info, np.nan)
        return nan, nan
    U = influence(fd, ev) @ inv
    return U.T @ U, inv


def baseline_hazard(fd: FineGrayData, ev: _Eval, beta: np.ndarray) -> np.ndarray:
    """Jumps of the baseline cumulative subdistribution hazard (covariates 0) at the cause's times (crr's ``bfitj``)."""
    # S0 was summed over centred covariates: exp(eta) of the uncentred ones is exp(center'beta) times larger
    return fd.d / (ev.s0 * np.exp(fd.center @ beta))


def simulate(n: int, seed: int = 0, *, beta=(0.5, -0.5), beta_other=(0.0, 0.3), p: float = 0.35,
             censor_max: float = 6.0, year: int = 365) -> pd.DataFrame:
    """Simulate time to promotion with exits as competing events, under the Fine–Gray model.

    The generating model of Fine and Gray (1999, section 5): the cumulative
    incidence of promotion is ``1 - (1 - p (1 - exp(-t)))^exp(x'beta)`` (time
    in years), so its subdistribution hazard ratios are exactly ``exp(beta)``;
    an employee not promoted exits at an exponential time with rate
    ``exp(x'beta_other)``, voluntary or involuntary with equal chance.
    Follow-up ends at a uniform time up to ``censor_max`` years.

    Returns
    -------
    DataFrame
        ``employee_id, spell, entry, exit, event_type, mentoring, rating``:
        tenure in days, ``event_type`` promotion / voluntary / involuntary /
        censored, ``mentoring`` 0/1 and a standardised ``rating``.
    """
    rng = np.random.default_rng(seed)
    mentoring = rng.binomial(1, 0.4, n)
    rating = rng.standard_normal(n)
    x = np.column_stack([mentoring, rating])
    lp = x @ np.asarray(beta, float)
    promoted_ever = 1 - (1 - p) ** np.exp(lp)
    u = rng.uniform(size=n)
    promoted = u < promoted_ever
    with np.errstate(divide="ignore", invalid="ignore"):
        # invert the cumulative incidence at u for the promoted
        t_promo = -np.log(1 - (1 - (1 - u) ** np.exp(-lp)) / p)
    t_exit = rng.exponential(1.0, n) / np.exp(x @ np.asarray(beta_other, float))
    kind = np.where(rng.uniform(size=n) < 0.5, "voluntary", "involuntary")
    t_event = np.where(promoted, t_promo, t_exit)
    censor = rng.uniform(0, censor_max, n)
    ended = t_event <= censor
    days = np.ceil(np.minimum(t_event, censor) * year)  # whole days: ties, as in an HRIS export
    event_type = np.where(ended, np.where(promoted, "promotion", kind), "censored")
    return pd.DataFrame({"employee_id": np.arange(1, n + 1), "spell": 1, "entry": 0, "exit": days.astype(np.int64),
                         "event_type": event_type, "mentoring": mentoring, "rating": rating})
