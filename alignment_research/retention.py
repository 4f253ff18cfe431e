"""Retention models: Kaplan–Meier, Cox (time-varying), PH checks, competing risks, discrete time."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import matplotlib.pyplot as plt
import matplotlib.transforms as mtransforms
import numpy as np
import pandas as pd
import patsy
from scipy import stats

from . import _cox
from ._checks import check_clusters, check_estimates, check_finite, warn_caveat
from ._docs import fill_doc
from ._estimators import cluster_codes, cluster_robust_cov, fit_logistic
from ._formula import check_columns, columns_read, design_matrix
from .errors import ConfigError, ModelError, StatisticalWarning
from .plots import axes_for
from .privacy import group_sizes
from .results import TIDY_COLUMNS, ModelResult, tidy_table
from .spells import DAYS_PER_MONTH

__all__ = [
    "fit_km",
    "fit_cox",
    "ph_test",
    "fit_cif",
    "fit_cause_specific",
    "fit_discrete_time",
    "immortal_time_bias",
    "survival_table",
    "cif_table",
    "logrank_test",
    "person_periods",
    "plot_survival",
    "plot_cif",
    "plot_schoenfeld",
    "KMResult",
    "CoxResult",
    "PHTestResult",
    "CIFResult",
    "CauseSpecificResult",
    "restricted_mean_survival",
    "retention_sensitivity",
    "DAYS_PER_MONTH",
    "cox_survival",
    "survival_at",
    "cox_restricted_mean",
]

#: Unit of the survival time columns of the analysis tables (``entry``, ``exit``, ``start``, ``stop``).
_TIME_UNIT = "days"

#: Days in one unit of time, for the ``time_unit=`` of the Kaplan–Meier and cumulative incidence summaries.
_DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0, "months": DAYS_PER_MONTH, "years": 365.25}


def _per_month(time_unit) -> float:
    """Units of ``time_unit`` in an average month (30.44 for days, 1 for months)."""
    if time_unit not in _DAYS_PER_UNIT:
        raise ConfigError(
            f"The value for `time_unit` must be one of {list(_DAYS_PER_UNIT)}, but {time_unit!r} was passed."
        )
    return DAYS_PER_MONTH / _DAYS_PER_UNIT[time_unit]


def _outcome(event: str) -> str:
    """The outcome in words: "voluntary exit" for the toolkit's ``event`` column, else the column's name."""
    return "voluntary exit" if event == "event" else str(event).replace("_", " ").strip()


# --------------------------------------------------------------------------- checks
def _event_array(data: pd.DataFrame, event: str) -> np.ndarray:
    values = pd.to_numeric(data[event], errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        raise ModelError(
            f"The value for `{event}` must be 0 or 1 (1 = voluntary exit), but {data.loc[bad, event].iloc[0]!r} "
            f"was found in {int(bad.sum())} row(s)."
        )
    out = values.to_numpy(dtype=int)
    # a view into the frame's block of integer columns would keep every column of that block alive
    return out.copy() if out.base is not None else out


def _survival_times(data, *, duration, entry, start, stop):
    """Return (start, stop) arrays and the column names used, from either convention."""
    if (start is None) != (stop is None):
        raise ModelError("Give both `start` and `stop` (interval rows), or `duration` (one row per person).")
    if start is not None and duration is not None:
        raise ModelError("Give either `start`/`stop` (interval rows) or `duration`(+`entry`), not both.")
    if start is None and duration is None:
        raise ModelError(
            "Name the survival time: `start=\"start\", stop=\"stop\"` on the intervals table, or "
            "`duration=\"exit\", entry=\"entry\"` on the person table."
        )
    if start is not None:
        a, b = data[start].to_numpy(float), data[stop].to_numpy(float)
        names = (start, stop)
    else:
        b = data[duration].to_numpy(float)
        a = data[entry].to_numpy(float) if entry is not None else np.full(len(data), -np.inf)
        names = (entry, duration)
    bad = ~(b > a)
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise ModelError(
            f"{int(bad.sum())} row(s) do not end after they start ({names[0]}={a[i]!r}, {names[1]}={b[i]!r} in row "
            f"{data.index[i]!r}); the risk interval (start, stop] must not be empty. Drop or fix these rows."
        )
    return a, b


def _complete(data: pd.DataFrame, columns) -> pd.DataFrame:
    cols = [c for c in columns if c is not None]
    keep = data[cols].notna().all(axis=1)
    return data if keep.all() else data.loc[keep]


def _nullable_text(dtype) -> bool:
    """Whether ``dtype`` is one of pandas' nullable text types (string, not categorical, numeric or boolean)."""
    return (isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, pd.CategoricalDtype)
            and not pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def text_as_objects(data: pd.DataFrame, columns=None) -> pd.DataFrame:
    """``data`` with its nullable text columns (of ``columns``; all by default) as Python objects, None for missing.

    What a Cox fit makes of them before it codes them (patsy needs plain
    columns): a caller fitting several models to the same rows converts them
    once, and each fit then finds them done.

    Parameters
    ----------
    data : pandas.DataFrame
        The rows.
    columns : iterable of str, optional
        The columns to look at (those missing from ``data`` are passed over).

    Returns
    -------
    pandas.DataFrame
        ``data`` itself when no column needs converting, else a new frame.

    Examples
    --------
    >>> import pandas as pd
    >>> from alignment_research.retention import text_as_objects
    >>> frame = pd.DataFrame({"g": pd.array(["a", None], dtype="string"), "x": [1.0, 2.0]})
    >>> text_as_objects(frame)["g"].tolist()
    ['a', None]
    """
    names = data.columns if columns is None else [c for c in dict.fromkeys(columns) if c in data.columns]
    text = [c for c in names if _nullable_text(data[c].dtype)]
    return data.assign(**{c: data[c].astype(object).where(data[c].notna(), None) for c in text}) if text else data


def _plain(data: pd.DataFrame) -> pd.DataFrame:
    """Turn pandas nullable columns (Int64, boolean, string) into numpy ones, which patsy needs.

    Called after incomplete rows are dropped, so no missing values remain in the
    columns converted.
    """
    out = {}
    for col in data.columns:
        dtype = data[col].dtype
        if (isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, pd.CategoricalDtype)
                and not _nullable_text(dtype)):
            if data[col].notna().all():
                out[col] = data[col].to_numpy(dtype="int64" if pd.api.types.is_integer_dtype(dtype) else float)
            else:
                out[col] = data[col].to_numpy(dtype=float, na_value=np.nan)
    return text_as_objects(data.assign(**out) if out else data)


def _subject_count(data: pd.DataFrame) -> int | float:
    """Distinct (employee_id, spell) pairs (a missing value counts as a value, as ``drop_duplicates``)."""
    if "employee_id" not in data.columns:
        return np.nan
    codes = pd.factorize(data["employee_id"], use_na_sentinel=False)[0].astype(np.int64)
    if "spell" in data.columns:
        spell = pd.factorize(data["spell"], use_na_sentinel=False)[0]
        codes = codes * (int(spell.max(initial=0)) + 1) + spell
    return int(len(pd.unique(codes)))


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ModelError(f"The value for `alpha` must lie between 0 and 1, but {alpha!r} was passed.")
    return float(stats.norm.ppf(1 - alpha / 2))


# --------------------------------------------------------------------------- Cox
@dataclass(frozen=True, repr=False)
class CoxFit:
    """Engine state of a Cox fit (kept for diagnostics such as :func:`ph_test`)."""

    data: _cox.CoxData
    beta: np.ndarray
    evaluation: object
    var: np.ndarray
    naive_var: np.ndarray
    columns: list
    terms: dict
    loglik_null: float
    iterations: int
    converged: bool
    surv: tuple = ()  # (start, stop, event) of every row used (for the pooled KM of ph_test)


def _keyed_display(result: ModelResult, columns) -> pd.DataFrame:
    """The columns of ``result.table`` that ``repr`` shows (a one-level ``group`` left out)."""
    t = result.table
    keep = [c for c in columns if c in t and not (c == "group" and t[c].nunique() <= 1)]
    return t[keep]


class CoxResult(ModelResult):
    """Cox model result: hazard ratios in ``tidy()``, a forest plot in ``plot()``."""


def _term_map(formula: str, columns) -> dict:
    """Group design columns into formula terms (for per-term tests, as R's ``assign``)."""
    desc = patsy.ModelDesc.from_formula(formula)
    out: dict[str, list[int]] = {}
    for term in desc.rhs_termlist:
        name = term.name()
        if name == "Intercept":
            continue
        idx = [i for i, c in enumerate(columns) if c == name or c.startswith(name + "[")]
        if idx:
            out[name] = idx
    claimed = {i for v in out.values() for i in v}
    for i, c in enumerate(columns):
        if i not in claimed:
            out[c] = [i]
    return out


def fit_cox(data, formula, *, duration=None, entry=None, start=None, stop=None, event="event", cluster=None,
            strata=None, ties="efron", alpha=0.05, weights=None, frailty=None) -> CoxResult:
    """Fit a Cox proportional-hazards model of voluntary exit.

    Works on the ``intervals`` table (``start``/``stop``: time-varying
    covariates, left truncation) or on the ``person`` table (``duration`` and
    ``entry``). The partial likelihood is maximised by a vectorised Newton
    fit; standard errors are cluster-robust when ``cluster`` is given.

    Parameters
    ----------
    {data}
    {formula}
    duration : str, optional
        Exit time column (tenure in days) of one-row-per-person data.
    entry : str, optional
        Entry time column with ``duration`` (delayed entry, e.g. ``"entry"``).
    start, stop : str, optional
        Interval columns of start/stop data; a row is at risk at time ``t``
        when ``start < t <= stop``.
    {event}
    {cluster}
    strata : str or list of str, optional
        Columns whose combinations get their own baseline hazard.
    ties : {"efron", "breslow"}, default "efron"
        Handling of tied event times (R's default is Efron).
    {alpha}
    weights : str, optional
        Column of case weights (e.g. matching or inverse-probability
        weights): non-negative, no missing values; rows weighted 0 are left
        out. The fit is then R's ``coxph(weights = )`` (see Notes).
    frailty : str, optional
        Column whose groups (e.g. ``"manager_id"``) share a gamma frailty: a
        random effect on the hazard, fitted by penalised partial likelihood
        with its variance chosen by the integrated likelihood, as
        ``coxph(... + frailty(manager_id))``. ``glance()`` then adds
        ``theta`` (the frailty variance), ``log_likelihood_integrated``,
        ``n_groups``, and ``n_params`` is the effective degrees of freedom;
        ``extras["frailty"]`` holds the groups' log frailties. Not with
        ``cluster`` (the frailty models the clusters) or ``strata``.

    Returns
    -------
    CoxResult
        ``tidy()``: ``term, estimate, std_error, statistic, p_value, conf_low,
        conf_high, exp_estimate, exp_conf_low, exp_conf_high`` (log hazard
        ratios and hazard ratios). ``glance()``: ``n, n_subjects, events,
        log_likelihood, log_likelihood_null, aic, bic, n_params, concordance,
        cov_type, n_clusters, formula`` (``bic`` as R's ``BIC(coxph)``, with
        the number of events as the sample size; and ``weights``, the column's
        name, for a weighted fit). ``outcome`` is ``"voluntary exit"`` for the
        default ``event`` column (else the column's name in words),
        ``measure`` ``"hazard ratio"``, ``time_unit`` ``"days"``.

    Raises
    ------
    ModelError
        Unknown columns, a malformed formula, infinite values, no events,
        empty intervals, a covariate without variance, collinear covariates,
        ``cluster`` with fewer than 2 clusters, or a negative, missing or
        non-finite weight (named by row).

    Warns
    -----
    StatisticalWarning
        When the fit does not converge or an estimate diverges (monotone
        likelihood, e.g. no events in one category: a hazard ratio beyond
        e^10 or a standard error 100 times the others), or with fewer than 30
        clusters. Each warning is also kept in the result's ``caveats``.

    See Also
    --------
    ph_test : proportional-hazards checks of this fit.

    Notes
    -----
    Matches ``survival::coxph(Surv(start, stop, event) ~ ... + cluster(manager_id),
    ties = "efron")`` (R): coefficients, model-based and robust (sandwich over
    cluster sums of score residuals, no small-sample factor) standard errors,
    log-likelihood and Harrell's concordance as ``concordance(fit)``. On the
    person table it matches ``coxph(Surv(entry, exit, event) ~ ...)``. Rows
    with a missing value in any column used are left out (complete cases, as
    R's default ``na.action``); ``glance()["n"]`` counts the rows used.
    Tests hold coefficients and standard errors to 1e-8 relative of R's.
    With ``frailty`` the fit is R's ``coxph(... + frailty(group))`` (gamma,
    method "em"): for a given variance ``theta`` the penalised partial
    likelihood ``PL - (1/theta) sum(exp(w) - w)`` is maximised over the
    coefficients and the log frailties ``w``; ``theta`` maximises the
    integrated likelihood (R's ``c.loglik``), here by a bounded search on
    ``log(theta)`` rather than R's stopping rule. Standard errors come from
    the penalised information with the diagonal frailty block R uses for
    more than 5 groups; ``n_params`` is R's ``sum(fit$df)`` and ``aic`` uses it.
    Tests hold the integrated likelihood to 1e-12 and, at a given theta,
    coefficients and standard errors to 1e-7 relative of R's; ``theta`` to
    1e-6 of R's fit at ``frailty(group, eps = 1e-12)``. The design holds one
    column per group, so a frailty over many groups of a large table is
    refused (use ``strata`` or ``cluster``).

    With ``weights`` it matches ``coxph(..., weights = w)``: weighted risk
    sums, log-likelihood and score; tied deaths (Efron) each carry their
    mean weight. The reported variance follows R's default: with
    ``cluster``, the sandwich over cluster sums of the *weighted* score
    residuals; without it, that sandwich with every row its own cluster
    when some weight is not a whole number (R's ``robust = TRUE``), else
    the model-based one (whole-number weights are frequency weights: the
    fit equals the one on rows repeated that many times). Concordance
    counts each (event, at-risk row) pair with the product of their
    weights, as R's ``concordance()``; ``events`` counts event rows
    (unweighted, as R's ``nevent``). R refuses zero weights; here those
    rows are left out, which is R's fit on the other rows.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> intervals, person = simulate_counting_process(500, seed=0)
    >>> res = ar.fit_cox(intervals, "alignment_cascade + engagement", start="start", stop="stop",
    ...                  cluster="manager_id")
    >>> res.tidy()["term"].tolist()
    ['alignment_cascade', 'engagement']
    """
    if ties not in ("efron", "breslow"):
        raise ModelError(f"The value for `ties` must be one of ['efron', 'breslow'], but {ties!r} was passed.")
    _z(alpha)
    if frailty is not None:
        if weights is not None:
            raise ModelError("`weights` and `frailty` cannot be combined: the frailty fit is unweighted (as R's "
                             "coxph(... + frailty()) with weights is not reproduced here).")
        return _fit_frailty_cox(data, formula, duration=duration, entry=entry, start=start, stop=stop,
                                event=event, cluster=cluster, strata=strata, ties=ties, alpha=alpha, frailty=frailty)
    strata_cols = [strata] if isinstance(strata, str) else list(strata or [])
    if weights is not None:
        data = _positive_weight_rows(data, weights)
    data, X, (a, b, ev) = _cox_rows(data, formula, duration=duration, entry=entry, start=start, stop=stop,
                                    event=event, other=[cluster, *strata_cols, weights])
    w = None if weights is None else data[weights].to_numpy(float)
    columns = list(X.columns)
    Xv = X.to_numpy(float)
    _check_collinear(Xv, columns)
    # integer cluster codes once: the check, the robust variance and the count all use them
    cluster_ids = pd.factorize(data[cluster])[0] if cluster is not None else None
    caveats = check_clusters(cluster_ids, cluster) if cluster is not None else []
    strata_codes = None
    if strata_cols:
        strata_codes = data.groupby(strata_cols, sort=True, observed=True).ngroup().to_numpy()
    n_rows, n_subjects = len(data), _subject_count(data)
    del data  # the fit needs only the arrays from here on: free the rows used before the engine's copies
    cd = _cox.prepare(Xv, a, b, ev, strata=strata_codes, ties=ties, weights=w)
    beta, evaluation, loglik0, iterations, converged = _cox.fit(cd)
    naive, var, cov_type, n_clusters = _cox_variance(cd, evaluation, cluster_ids, cluster)
    if w is not None and cluster is None and (w != np.floor(w)).any():
        # R's default for non-integer weights: robust, each row its own cluster
        naive, var, cov_type, _ = _cox_variance(cd, evaluation, np.arange(len(w)), "row")
        cov_type = "robust (non-integer weights)"
    with np.errstate(invalid="ignore"):  # a diverging fit (caveat below) can leave no finite variance
        se = np.sqrt(np.diag(var))
        naive_se = np.sqrt(np.diag(naive))
    # separation: a level without events, a hazard ratio beyond e^10, a standard error far above the rest
    # (judged on the model-based errors: a robust error can be small even when the estimate diverges)
    caveats += check_estimates(columns, beta, naive_se, model=f"Cox fit of {formula!r}", X=X, y=ev,
                               kind="events", converged=converged)
    conc = _cox.concordance(cd, evaluation.eta)
    table = tidy_table(columns, beta, se, alpha=alpha, ratio=True)
    summary = pd.DataFrame([{
        "n": n_rows,
        "n_subjects": n_subjects,
        "events": int(ev.sum()),
        "log_likelihood": evaluation.loglik,
        "log_likelihood_null": loglik0,
        "aic": -2 * evaluation.loglik + 2 * len(beta),
        "bic": -2 * evaluation.loglik + np.log(int(ev.sum())) * len(beta),  # R's BIC(coxph): n = events
        "n_params": len(beta),
        "concordance": conc["concordance"],
        "cov_type": cov_type,
        "n_clusters": n_clusters,
        "formula": formula,
    }])
    if weights is not None:
        summary["weights"] = weights
    model = CoxFit(cd, beta, evaluation, var, naive, columns, _term_map(formula, columns), loglik0, iterations,
                   converged, (a, b, ev))
    return CoxResult("cox", table, summary, model, {"concordance": conc}, caveats, alpha=alpha,
                     outcome=_outcome(event), scale="ratio", time_unit=_TIME_UNIT, measure="hazard ratio")


def _positive_weight_rows(data: pd.DataFrame, weights: str) -> pd.DataFrame:
    """Check the case-weight column (numeric, finite, >= 0, none missing) and drop the rows weighted 0."""
    check_columns(data, [weights], what="The data")
    values = pd.to_numeric(data[weights], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ModelError(
            f"Weights column {weights!r}, row {data.index[i]!r}: value {data[weights].iloc[i]!r} is not a "
            f"non-negative number (rule: case weights are finite and >= 0, none missing; {int(bad.sum())} "
            "row(s) break it). Fill or drop those rows first."
        )
    return data[values > 0]


def _cox_rows(data, formula, *, duration, entry, start, stop, event, other):
    """The complete rows a Cox fit uses, its design matrix and the (start, stop, event) arrays."""
    surv_cols = [duration, entry, start, stop, event, *other]
    check_columns(data, surv_cols, what="The data")
    check_finite(data, [duration, entry, start, stop])
    data = _plain(_complete(columns_read(data, formula, [*surv_cols, "employee_id", "spell"]), surv_cols))
    X, kept = design_matrix(data, formula, intercept=False)
    if len(kept) < len(data):
        data = data.loc[kept]
    a, b = _survival_times(data, duration=duration, entry=entry, start=start, stop=stop)
    ev = _event_array(data, event)
    if ev.sum() == 0:
        raise ModelError(f"No events (`{event}` == 1) in the {len(data)} rows used; a Cox model needs events.")
    return data, X, (a, b, ev)


#: Rows per block of the collinearity check's centred cross-products.
_COLLINEAR_BLOCK = 1 << 18


def _check_collinear(Xv: np.ndarray, columns: list) -> None:
    """Refuse a design whose centred columns are linearly dependent (a constant column included)."""
    mean = Xv.mean(axis=0)
    gram = np.zeros((Xv.shape[1], Xv.shape[1]))
    for s in range(0, len(Xv), _COLLINEAR_BLOCK):  # a block of rows at a time: no centred copy of the design
        block = Xv[s:s + _COLLINEAR_BLOCK] - mean
        gram += block.T @ block
    if np.linalg.matrix_rank(gram / max(len(Xv), 1)) < Xv.shape[1]:
        raise ModelError(
            f"The covariates {columns} are collinear (one is a combination of others); drop one of them."
        )


def _cox_variance(cd, evaluation, cluster_ids, cluster):
    """Model-based and reported covariance of a Cox fit: (naive, var, cov_type, n_clusters).

    With ``cluster`` the reported one is R's robust sandwich over cluster sums
    of score residuals (no small-sample factor); ``cluster_ids`` are the
    integer codes (``pd.factorize``) of the cluster column over the rows used.
    """
    try:
        naive = np.linalg.inv(evaluation.info)
    except np.linalg.LinAlgError:  # a singular information matrix: no finite variance (a caveat says so)
        naive = np.full_like(evaluation.info, np.nan)
    if cluster is None:
        return naive, naive, "model-based", np.nan
    codes = cluster_ids[cd.rows]
    resid = _cox.score_residuals(cd, evaluation)
    if cd.w is not None:  # R's dfbeta residuals of a weighted fit are the weighted score residuals
        resid *= cd.w[:, None]
    B = _cox.cluster_sum(resid, codes) @ naive  # sum within clusters first: (clusters, p) rows to multiply
    return naive, B.T @ B, f"cluster: {cluster}", int(cluster_ids.max()) + 1


fill_doc(fit_cox)


#: Search range of log(theta) for the frailty variance; below the lower end the frailty counts as absent.
_LOG_THETA_RANGE = (np.log(1e-8), np.log(100.0))
#: A frailty variance below this is zero: a log-hazard SD under 0.001, where the integrated likelihood is flat to
#: rounding (its maximum lands at 2.5e-8 with multi-threaded BLAS and on the bound without; R reports about 1e-8).
_THETA_ZERO = 1e-6


def _fit_frailty_cox(data, formula, *, duration, entry, start, stop, event, cluster, strata, ties, alpha,
                     frailty) -> CoxResult:
    """``fit_cox(..., frailty=group)``: a shared gamma frailty, R's ``coxph(... + frailty(group))``."""
    from scipy.optimize import minimize_scalar  # deferred: only the frailty variance search needs it

    if cluster is not None or strata is not None:
        raise ModelError("`frailty` models the groups itself: drop `cluster` and `strata` from a frailty fit "
                         "(compare the three with retention_sensitivity).")
    data, X, (a, b, ev) = _cox_rows(data, formula, duration=duration, entry=entry, start=start, stop=stop,
                                    event=event, other=[frailty])
    columns = list(X.columns)
    Xv = X.to_numpy(float)
    _check_collinear(Xv, columns)
    codes, labels = pd.factorize(data[frailty], sort=True)
    G = len(labels)
    if G < 2:
        raise ModelError(f"A frailty needs at least 2 groups in `{frailty}`; found {G} in the rows used.")
    p = Xv.shape[1]
    if len(Xv) * (p + G) > 3e7:  # the dense design and its centred copy: about 0.5 GB at the limit
        raise ModelError(f"A frailty over {G} groups of {len(Xv)} rows is too large for the dense engine; "
                         f"use strata={frailty!r} or cluster={frailty!r} instead.")
    design = np.zeros((len(Xv), p + G))
    design[:, :p] = Xv
    design[np.arange(len(Xv)), p + codes] = 1.0
    cd = _cox.prepare(design, a, b, ev, ties=ties)
    group_events = np.bincount(codes, weights=ev.astype(float), minlength=G)
    sparse = G > 5  # R's frailty.gamma default: sparse (diagonal) frailty block with more than 5 groups
    warm = {"coef": None}

    def at(log_theta):
        fit = _cox.fit_gamma_frailty(cd, p, float(np.exp(log_theta)), group_events, codes=codes,
                                     init=warm["coef"], sparse=sparse)
        warm["coef"] = fit.coef
        return fit

    search = minimize_scalar(lambda lt: -at(lt).integrated, bounds=_LOG_THETA_RANGE, method="bounded",
                             options={"xatol": 1e-6})
    log_theta = float(search.x)
    plain = _cox.fit(_cox.prepare(Xv, a, b, ev, ties=ties))
    fit = at(log_theta)
    caveats = []
    if fit.integrated <= plain[1].loglik or log_theta <= _LOG_THETA_RANGE[0] + 1e-3 or np.exp(log_theta) < _THETA_ZERO:
        theta = 0.0  # the integrated likelihood is highest without a frailty: the plain Cox fit
        caveats.append(warn_caveat(
            f"The frailty variance of {frailty!r} is estimated at zero: the groups add no variation in the "
            "hazard beyond the covariates, and the frailty fit is the plain Cox fit."
        ))
        beta, evaluation = plain[0], plain[1]
        var = np.linalg.inv(evaluation.info)
        coef_w = np.zeros(G)
        df = float(p)
        integrated = evaluation.loglik
        converged = plain[4]
        penalty = 0.0
    else:
        theta = float(np.exp(log_theta))
        beta, coef_w, evaluation = fit.coef[:p], fit.coef[p:], fit.evaluation
        hinv = np.linalg.inv(fit.info)
        var = hinv[:p, :p]
        # effective degrees of freedom as R's coxpenal.df: the frailty term G - tr(A P), each fixed term
        # tr(C_tt^-1 V2_tt) with C = H^-1 of the fixed effects, V2 = C - B' P B, P the penalty's second derivatives
        pen = np.exp(coef_w) / theta
        B = hinv[p:, :p]
        var2 = var - B.T @ (pen[:, None] * B)
        df = G - float(np.sum(np.diag(hinv)[p:] * pen))
        for idx in _term_map(formula, columns).values():
            df += float(np.trace(np.linalg.solve(var[np.ix_(idx, idx)], var2[np.ix_(idx, idx)])))
        integrated = fit.integrated
        converged = fit.converged and bool(search.success)
        penalty = fit.penalty
    if not converged:
        caveats.append(warn_caveat(f"The frailty fit of {formula!r} did not converge; read its estimates with care."))
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(var))
    table = tidy_table(columns, beta, se, alpha=alpha, ratio=True)
    conc = _cox.concordance(cd, evaluation.eta)
    summary = pd.DataFrame([{
        "n": len(data),
        "n_subjects": _subject_count(data),
        "events": int(ev.sum()),
        "log_likelihood": evaluation.loglik,
        "log_likelihood_null": _cox.evaluate(cd, np.zeros(p + G), derivatives=False).loglik,
        "log_likelihood_integrated": integrated,
        "aic": -2 * evaluation.loglik + 2 * df,
        "bic": -2 * evaluation.loglik + np.log(int(ev.sum())) * df,
        "n_params": df,
        "theta": theta,
        "penalty": penalty,
        "n_groups": G,
        "concordance": conc["concordance"],
        "cov_type": f"gamma frailty: {frailty}",
        "formula": formula,
    }])
    frail = pd.DataFrame({"group": labels, "log_frailty": coef_w, "events": group_events.astype(int)})
    return CoxResult("cox", table, summary, None, {"frailty": frail, "concordance": conc}, caveats, alpha=alpha,
                     outcome=_outcome(event), scale="ratio", time_unit=_TIME_UNIT, measure="hazard ratio")


# --------------------------------------------------------------------------- PH test
class PHTestResult(ModelResult):
    """Scaled Schoenfeld residual tests; ``plot()`` draws the residuals of one term."""

    def _display_table(self) -> pd.DataFrame:
        return _keyed_display(self, ["cause", "term", "statistic", "df", "p_value", "verdict"])

    def plot(self, *, term=None, cause=None, ax=None, **kwargs):
        """Draw the scaled Schoenfeld residuals of ``term`` against tenure.

        Parameters
        ----------
        term : str, optional
            The term (first by default).
        cause : str, optional
            For a test of :func:`fit_cause_specific`: the exit type (first by default).
        ax : matplotlib Axes, optional
            Axes to draw on.
        **kwargs
            Passed to :func:`plot_schoenfeld`.

        Returns
        -------
        matplotlib.axes.Axes
        """
        resid = self.extras["residuals"]
        if "cause" in resid.columns:  # a cause-specific fit: one cause's residuals
            cause = cause if cause is not None else resid["cause"].iloc[0]
            if cause not in set(resid["cause"]):
                raise ModelError(f"No residuals for cause {cause!r}; causes are {sorted(resid['cause'].unique())}.")
            resid = resid[resid["cause"] == cause]
        term = term if term is not None else self.table["term"].iloc[0]
        return plot_schoenfeld(resid, term=term, ax=ax, **kwargs)


def _km_left_continuous(a, b, ev, at):
    """1 - S(t-) of the pooled KM of (start, stop] data at times ``at`` (R's cox.zph "km")."""
    times = np.unique(b[ev.astype(bool)])
    enter = np.searchsorted(times, a, side="right")
    leave = np.searchsorted(times, b, side="right")
    m = len(times)
    n_risk = np.cumsum(np.bincount(enter, minlength=m + 1) - np.bincount(leave, minlength=m + 1))[:-1]
    d = np.bincount(np.searchsorted(times, b[ev.astype(bool)]), minlength=m)
    surv = np.cumprod(1 - d / n_risk)
    idx = np.searchsorted(times, at, side="left")  # number of event times < t
    return 1 - np.concatenate([[1.0], surv])[idx]


def ph_test(cox_result, *, transform="km", alpha=0.05) -> PHTestResult:
    """Test proportional hazards with scaled Schoenfeld residuals, per term and globally.

    Parameters
    ----------
    cox_result : CoxResult or CauseSpecificResult
        A fit from :func:`fit_cox`, or from :func:`fit_cause_specific` (each
        cause's model is tested; every table then starts with ``cause``).
    transform : {"km", "identity", "rank", "log"}, default "km"
        Function of time the residuals are correlated with (R's default "km").
    alpha : float, default 0.05
        Level below which the verdict says the hazard ratio changes over time.

    Returns
    -------
    PHTestResult
        ``tidy()``: ``term, statistic, df, p_value, verdict`` (one row per
        formula term, then ``GLOBAL``). ``glance()``: ``statistic, df,
        p_value, transform, verdict`` of the global test. ``extras["residuals"]``:
        long table ``term, time, time_months, residual`` of scaled Schoenfeld
        residuals (one per event). ``plot(term=...)`` draws them. For a
        cause-specific fit each of these has a leading ``cause`` column
        (``glance()`` one row per cause) and ``plot(term=..., cause=...)``.

    Notes
    -----
    Matches ``survival::cox.zph(fit, transform = "km", terms = TRUE)`` of
    survival >= 3.0: score tests of adding ``x * g(t)`` for each term, with
    ``g(t)`` the left-continuous Kaplan–Meier transform centred on its mean
    over events. ``transform="rank"`` ranks every row's time, censored rows
    included, as ``cox.zph``. If a term fails, stratify on it (``strata=``) or add an
    interaction with time (split intervals and add ``x * log(time)``).

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> intervals, _ = simulate_counting_process(500, seed=0)
    >>> fit = ar.fit_cox(intervals, "alignment_cascade", start="start", stop="stop")
    >>> ar.ph_test(fit).tidy()["term"].tolist()
    ['alignment_cascade', 'GLOBAL']
    """
    _z(alpha)
    if transform not in _PH_TRANSFORMS:
        raise ModelError(
            f"The value for `transform` must be one of {list(_PH_TRANSFORMS)}, but {transform!r} was passed."
        )
    if isinstance(cox_result, CauseSpecificResult):
        return _ph_test_by_cause(cox_result, transform=transform, alpha=alpha)
    if not isinstance(getattr(cox_result, "model", None), CoxFit):
        raise ModelError("ph_test needs a result of ar.fit_cox(...) or ar.fit_cause_specific(...).")
    table, summary, resid = _ph_tables(cox_result.model, transform, alpha)
    return PHTestResult("ph_test", table, summary, None, {"residuals": resid}, alpha=alpha,
                        outcome=cox_result.outcome, scale="ratio", time_unit=cox_result.time_unit,
                        measure=cox_result.measure)


_PH_TRANSFORMS = ("km", "identity", "rank", "log")

_PH_VERDICTS = ("effect changes over time (proportional hazards doubtful)", "no evidence against proportional hazards")


def _ph_test_by_cause(result, *, transform, alpha) -> PHTestResult:
    """:func:`ph_test` of each cause of a cause-specific fit; every table gets a leading ``cause`` column."""
    parts = {name: [] for name in ("table", "summary", "residuals")}
    for cause, res in result.by_cause.items():
        for name, frame in zip(parts, _ph_tables(res.model, transform, alpha)):
            parts[name].append(frame.assign(cause=cause))
    table, summary, resid = (_cause_first(pd.concat(frames, ignore_index=True)) for frames in parts.values())
    return PHTestResult("ph_test_cause_specific", table, summary, None, {"residuals": resid}, alpha=alpha,
                        outcome=result.outcome, scale="ratio", time_unit=result.time_unit, measure=result.measure)


def _cause_first(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["cause"] + [c for c in frame.columns if c != "cause"]]


def _ph_tables(fit: CoxFit, transform: str, alpha: float):
    """The per-term and global tests, the one-row global summary and the scaled residuals of one Cox fit."""
    cd, ev = fit.data, fit.evaluation
    if cd.w is not None:
        raise ModelError("ph_test does not handle a weighted Cox fit (`weights=`) yet; test proportional hazards "
                         "on the unweighted fit, or check the residuals of the weighted one by hand.")
    p = len(fit.beta)
    stop_d = cd.stop[cd.deaths]
    if transform == "km":
        tt = _km_left_continuous(*fit.surv, stop_d)
    elif transform == "identity":
        tt = stop_d.copy()
    elif transform == "log":
        tt = np.log(stop_d)
    else:  # as cox.zph: rank every row's time, censored rows included, then keep the events'
        tt = stats.rankdata(cd.stop)[cd.deaths]
    g_rows = tt - tt.mean()
    # g per event time (identical for tied events)
    g = np.zeros(len(cd.times))
    g[cd.death_j] = g_rows
    schoen = _cox.schoenfeld(cd, ev)
    u = (schoen * g_rows[:, None]).sum(axis=0)
    I1, I2 = _cox.weighted_information(cd, ev, g)
    imat = np.block([[ev.info, I1], [I1, I2]])
    u_full = np.concatenate([np.zeros(p), u])
    rows = []
    for name, idx in fit.terms.items():
        kk = list(range(p)) + [p + i for i in idx]
        uk = u_full[kk]
        stat = float(uk @ np.linalg.solve(imat[np.ix_(kk, kk)], uk))
        rows.append((name, stat, len(idx)))
    stat = float(u_full @ np.linalg.solve(imat, u_full))
    rows.append(("GLOBAL", stat, p))
    table = pd.DataFrame(rows, columns=["term", "statistic", "df"])
    table["p_value"] = stats.chi2.sf(table["statistic"], table["df"])
    table["verdict"] = np.where(table["p_value"] < alpha, *_PH_VERDICTS)
    glob = table.iloc[-1]
    summary = pd.DataFrame([{"statistic": glob["statistic"], "df": int(glob["df"]), "p_value": glob["p_value"],
                             "transform": transform, "verdict": glob["verdict"]}])
    return table, summary, _scaled_schoenfeld(fit, schoen, tt, stop_d)


def _scaled_schoenfeld(fit: CoxFit, schoen, tt, stop_d) -> pd.DataFrame:
    """Scaled Schoenfeld residuals per term, long, in R's order (multi-column terms through the coefficients)."""
    cd, ev = fit.data, fit.evaluation
    p = len(fit.beta)
    ndeath = len(cd.deaths)
    T = np.zeros((p, len(fit.terms)))
    for k, idx in enumerate(fit.terms.values()):
        if len(idx) == 1:
            T[idx[0], k] = 1.0
        else:
            T[idx, k] = fit.beta[idx]
    vmean = T.T @ (ev.info / ndeath) @ T
    scaled = np.linalg.solve(vmean, (schoen @ T).T).T
    add = np.array([fit.beta[idx[0]] if len(idx) == 1 else 1.0 for idx in fit.terms.values()])
    scaled = scaled + add
    # R's order: by stratum, then event time, tied events in reverse row order
    order = np.lexsort((-cd.rows[cd.deaths], stop_d, cd.strata[cd.deaths]))
    return pd.concat(
        [pd.DataFrame({"term": name, "time": stop_d[order], "time_months": stop_d[order] / DAYS_PER_MONTH,
                       "transformed_time": tt[order], "residual": scaled[order, k],
                       "estimate": add[k] if len(idx) == 1 else 1.0})
         for k, (name, idx) in enumerate(fit.terms.items())],
        ignore_index=True,
    )


# --------------------------------------------------------------------------- Kaplan–Meier
def _risk_set_counts(a, b, ev, weights=None):
    """Distinct event times, numbers at risk (a < t <= b) and events."""
    times = np.unique(b[ev])
    m = len(times)
    enter = np.searchsorted(times, a, side="right")
    leave = np.searchsorted(times, b, side="right")
    n_risk = np.cumsum(np.bincount(enter, minlength=m + 1) - np.bincount(leave, minlength=m + 1))[:-1]
    d = np.bincount(np.searchsorted(times, b[ev]), minlength=m)
    return times, n_risk.astype(float), d.astype(float)


def _group_codes(data, group):
    if group is None:
        return np.zeros(len(data), dtype=int), np.array(["all"], dtype=object)
    check_columns(data, [group], what="The data")
    labels = data[group]
    if isinstance(labels.dtype, pd.CategoricalDtype):  # keep the categories' order (e.g. Low, Medium, High)
        present = set(labels.dropna().unique())
        levels = np.array([c for c in labels.cat.categories if c in present], dtype=object)
    else:
        levels = np.array(sorted(labels.dropna().unique(), key=lambda v: (str(type(v)), v)), dtype=object)
    codes = pd.Categorical(labels, categories=levels).codes
    return codes, levels


def _km_curve(a, b, ev, z) -> dict:
    """One Kaplan-Meier curve as columns (plain arrays): ``time, at_risk, events, estimate, std_error, conf_low,
    conf_high``."""
    times, n_risk, d = _risk_set_counts(a, b, ev)
    keep = d > 0
    times, n_risk, d = times[keep], n_risk[keep], d[keep]
    surv = np.cumprod(1 - d / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        green = np.cumsum(np.where(n_risk > d, d / (n_risk * (n_risk - d)), 0.0))
    se = np.sqrt(green)  # standard error of log S (R's fit$std.err)
    with np.errstate(divide="ignore"):
        lo = np.where(surv > 0, surv * np.exp(-z * se), np.nan)
        hi = np.where(surv > 0, np.minimum(surv * np.exp(z * se), 1.0), np.nan)
    return {"time": times, "at_risk": n_risk.astype(int), "events": d.astype(int), "estimate": surv,
            "std_error": se, "conf_low": lo, "conf_high": hi}


def _person_codes(data: pd.DataFrame, person):
    """Integer person codes of the rows (-1 when the id is missing); ``None`` when people cannot be told apart.

    ``person=None`` declares every row a different person (as :func:`group_sizes`).
    """
    if person is None:
        return np.arange(len(data))
    if person not in data.columns:
        return None
    return pd.factorize(data[person])[0]


def _person_spans(a, b, ids):
    """Merge each person's spells into disjoint spans ``(a, b]``, so a person is at risk at most once.

    A rehired employee has one spell per employment; on the tenure scale the
    spells may overlap. Spells of one person that overlap or touch become one
    span; rows with a missing id (code -1) are left out (they are nobody we
    can count, so counts err towards fewer people).
    """
    keep = ids >= 0
    frame = pd.DataFrame({"id": ids[keep], "a": a[keep], "b": b[keep]}).sort_values(["id", "a"], kind="stable")
    if frame.empty:
        return np.array([], float), np.array([], float)
    reach = frame.groupby("id", sort=False)["b"].cummax().groupby(frame["id"], sort=False).shift()
    span = (reach.isna() | (frame["a"] > reach)).cumsum()
    merged = frame.groupby(span, sort=False).agg(a=("a", "min"), b=("b", "max"))
    return merged["a"].to_numpy(float), merged["b"].to_numpy(float)


def _people_at_risk(a, b, ids, times) -> np.ndarray:
    """Distinct people with a spell at risk (``a < t <= b``) at each of ``times``."""
    times = np.asarray(times, float)
    if ids is None:
        return np.full(len(times), np.nan)
    sa, sb = _person_spans(np.asarray(a, float), np.asarray(b, float), np.asarray(ids))
    sa, sb = np.sort(sa), np.sort(sb)
    # spans are disjoint per person, so #(a < t) - #(b < t) counts each person at most once
    return (np.searchsorted(sa, times, side="left") - np.searchsorted(sb, times, side="left")).astype(float)


def survival_table(data, *, duration="exit", entry="entry", event="event", group=None, alpha=0.05,
                   person=None, time_unit="days") -> pd.DataFrame:
    """Compute Kaplan–Meier retention curves with delayed entry (tidy, one row per event time).

    Parameters
    ----------
    data : pandas.DataFrame
        The ``person`` table (one row per employment spell).
    duration : str, default "exit"
        Tenure in days at exit or censoring.
    entry : str or None, default "entry"
        Tenure in days at which the spell enters observation (left truncation).
    event : str, default "event"
        1 for a voluntary exit.
    group : str, optional
        Column defining the curves.
    alpha : float, default 0.05
        Confidence level of the pointwise band is ``1 - alpha``.
    person : str, optional
        Column identifying a person (e.g. ``"employee_id"``). When given, a
        ``people_at_risk`` column is added: distinct people with a spell at
        risk at ``time`` (a rehired employee counts once). The estimates do not
        change.
    time_unit : {"days", "weeks", "months", "years"}, default "days"
        Unit of ``duration`` and ``entry``; ``time_months`` is converted from it.

    Returns
    -------
    pandas.DataFrame
        ``group, time, time_months, at_risk, events, estimate, std_error,
        conf_low, conf_high`` (and ``people_at_risk`` with ``person``):
        ``at_risk`` counts spells, as R's ``n.risk``; ``estimate`` is the probability of staying
        beyond ``time`` (days); ``std_error`` is that of ``log(estimate)``
        (Greenwood); the band is R's default ``conf.type = "log"``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(500, seed=0)
    >>> ar.survival_table(person).columns.tolist()[:4]
    ['group', 'time', 'time_months', 'at_risk']
    """
    z = _z(alpha)
    per_month = _per_month(time_unit)
    check_columns(data, [duration, entry, event], what="The data")
    check_finite(data, [duration, entry])
    data = _complete(data, [duration, entry, event])
    a, b = _survival_times(data, duration=duration, entry=entry, start=None, stop=None)
    ev = _event_array(data, event).astype(bool)
    codes, levels = _group_codes(data, group)
    if person is not None:
        check_columns(data, [person], what="The data")
    ids = _person_codes(data, person) if person is not None else None
    # each group's rows by position (one stable sort, not a mask per group: thousands of teams on a dashboard),
    # its curve as arrays, and one table at the end
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(levels) + 1))
    parts = []
    for k in range(len(levels)):
        sel = order[bounds[k]:bounds[k + 1]]
        curve = _km_curve(a[sel], b[sel], ev[sel], z)
        if ids is not None:
            curve["people_at_risk"] = _people_at_risk(a[sel], b[sel], ids[sel], curve["time"]).astype(int)
        parts.append(curve)
    if not parts:
        raise ModelError("No curve to compute: the data have no complete rows in any group.")
    lengths = [len(part["time"]) for part in parts]
    # the group column as the groups' own values give it (strings as object, integers as int64, ...)
    out = pd.DataFrame({"group": pd.Series(np.repeat(levels, lengths), dtype=object).infer_objects()})
    for column in parts[0]:
        out[column] = np.concatenate([part[column] for part in parts])
    out.insert(2, "time_months", out["time"] / per_month)
    return out


def _step_value(curve: pd.DataFrame, column: str, t: float, before: float = 1.0) -> float:
    idx = np.searchsorted(curve["time"].to_numpy(), t, side="right") - 1
    return before if idx < 0 else float(curve[column].iloc[idx])


def _quantile_time(times, values, p=0.5):
    """First time the curve reaches ``p`` or below; midpoint when it sits exactly at ``p`` (as R).

    Missing values (a band where the curve is 0) never reach ``p``: a curve that only gets there
    through them has no quantile, as ``quantile.survfit``.
    """
    tol = np.sqrt(np.finfo(float).eps)
    values = np.asarray(values, float)
    below = np.flatnonzero(values <= p + tol)
    if len(below) == 0:
        return np.nan
    i = below[0]
    if abs(values[i] - p) < tol and i + 1 < len(times) and values[i + 1] < p - tol:
        return (times[i] + times[i + 1]) / 2
    return float(times[i])


def _at_risk(a, b, t):
    """Number of rows at risk at time t (a < t <= b)."""
    return int(((a < t) & (b >= t)).sum())


def logrank_test(data, *, duration="exit", entry="entry", event="event", group) -> pd.DataFrame:
    """Log-rank test of equal retention across groups, with delayed entry.

    Parameters
    ----------
    data : pandas.DataFrame
        The ``person`` table.
    duration, entry, event : str
        Columns as in :func:`survival_table`.
    group : str
        Column defining the groups (two or more).

    Returns
    -------
    pandas.DataFrame
        One row per group: ``group, n, observed, expected``, and the test in
        ``statistic, df, p_value`` (same on every row).

    Raises
    ------
    ModelError
        When fewer than two groups have data.

    Notes
    -----
    Risk sets are ``entry < t <= exit`` (left truncation) and the variance is
    hypergeometric, as ``survival::survdiff`` (which accepts only
    right-censored data; with ``entry`` all zero the two agree).

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(500, seed=0)
    >>> int(ar.logrank_test(person, group="department")["df"].iloc[0])
    3
    """
    check_columns(data, [duration, entry, event, group], what="The data")
    data = _complete(data, [duration, entry, event, group])
    a, b = _survival_times(data, duration=duration, entry=entry, start=None, stop=None)
    ev = _event_array(data, event).astype(bool)
    codes, levels = _group_codes(data, group)
    G = len(levels)
    if G < 2:
        raise ModelError(
            f"A log-rank test compares two or more groups, but `{group}` has {G} level(s) "
            f"({list(levels)}) in the rows used."
        )
    times = np.unique(b[ev])
    m = len(times)
    if m == 0:
        raise ModelError(f"No events (`{event}` == 1): nothing to compare.")
    enter = np.searchsorted(times, a, side="right")
    leave = np.searchsorted(times, b, side="right")
    n_g = np.zeros((m, G))
    d_g = np.zeros((m, G))
    for k in range(G):
        sel = codes == k
        n_g[:, k] = np.cumsum(np.bincount(enter[sel], minlength=m + 1) - np.bincount(leave[sel], minlength=m + 1))[:-1]
        d_g[:, k] = np.bincount(np.searchsorted(times, b[sel & ev]), minlength=m)
    n = n_g.sum(axis=1)
    d = d_g.sum(axis=1)
    ok = n > 0
    frac = np.where(ok[:, None], n_g / np.where(ok, n, 1)[:, None], 0.0)
    expected = (d[:, None] * frac).sum(axis=0)
    observed = d_g.sum(axis=0)
    factor = np.where(n > 1, d * (n - d) / np.where(n > 1, n - 1, 1), 0.0)
    V = np.einsum("t,tg,th->gh", factor, frac, -frac) + np.diag((factor[:, None] * frac).sum(axis=0))
    diff = (observed - expected)[:-1]
    stat = float(diff @ np.linalg.solve(V[:-1, :-1], diff))
    return pd.DataFrame({"group": levels, "n": np.bincount(codes[codes >= 0], minlength=G), "observed": observed,
                         "expected": expected, "statistic": stat, "df": G - 1,
                         "p_value": float(stats.chi2.sf(stat, G - 1))})


def restricted_mean_survival(data, *, duration="exit", entry="entry", event="event", group=None, horizon,
                             alpha=0.05) -> pd.DataFrame:
    """Restricted mean tenure up to a horizon: the area under the retention curve, by group.

    The restricted mean survival time (RMST) is the expected tenure counted
    only up to ``horizon``: ``integral_0^horizon S(t) dt``. Unlike a hazard
    ratio it needs no proportional hazards, and unlike the median it exists
    when fewer than half have left. A difference of two RMSTs reads "tenure
    gained (or lost) within the first ``horizon`` days".

    Parameters
    ----------
    data : pandas.DataFrame
        The ``person`` table (one row per employment spell).
    duration : str, default "exit"
        Tenure in days at exit or censoring.
    entry : str or None, default "entry"
        Tenure in days at which the spell enters observation (left truncation).
    event : str, default "event"
        1 for a voluntary exit.
    group : str, optional
        Column defining the groups; each level is compared with the first
        (sorted, or the categories' order).
    horizon : float
        Upper limit of the integral, in days (e.g. ``730.5`` for two years).
        It may not exceed the last tenure observed in a group.
    alpha : float, default 0.05
        Confidence intervals are at level ``1 - alpha``.

    Returns
    -------
    pandas.DataFrame
        Built by :func:`tidy_table`: ``group, term, estimate, std_error,
        statistic, p_value, conf_low, conf_high, horizon, n, events``. One row
        ``term="rmst"`` per group (days; ``statistic`` and ``p_value`` are
        missing: a mean tenure of zero is no hypothesis), then with a
        ``group`` one row ``term="difference"`` per further level: its RMST
        minus the first level's (``group`` reads ``"B - A"``), with a
        Wald test and interval (independent groups).

    Raises
    ------
    ModelError
        Unknown columns, empty intervals, an event that is not 0/1, a
        ``horizon`` that is not positive or beyond a group's last tenure, or
        a risk set that empties before the last exit (lifelines refuses such
        a curve).

    Notes
    -----
    The curve is lifelines' ``KaplanMeierFitter`` (fitted with ``entry=``)
    and the area is ``lifelines.utils.restricted_mean_survival_time``.
    With delayed entry lifelines counts a spell at risk at ``t`` when
    ``entry < t <= exit``, exactly as :func:`survival_table` and R's
    ``survfit(Surv(entry, exit, event) ~ 1)`` (its ``event_table["at_risk"]``
    column does include those entering at ``t``, but the estimate subtracts
    them). The curve is 1 before the earliest entry, so with only late
    entrants the RMST is conditional on having stayed that long; lifelines
    integrates from the earliest entry, so that stretch (when entries start
    after 0) is added here, as R does. The
    variance that ``restricted_mean_survival_time(..., return_variance=True)``
    returns is that of the restricted tenure ``min(T, horizon)`` across
    people, not of the estimate, so the standard error here is the
    Greenwood-type one of R's ``print(survfit(...), rmean = horizon)``:
    ``sum_j A_j^2 d_j / (n_j (n_j - d_j))`` over exit times up to
    ``horizon``, with ``A_j`` the area under the curve from ``t_j`` to
    ``horizon``. Tests hold estimates and standard errors to R's.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(500, seed=0)
    >>> t = ar.restricted_mean_survival(person, group="department", horizon=730.5)
    >>> t["term"].tolist()[:2], t["group"].iloc[-1]
    (['rmst', 'rmst'], 'Technology - Finance')
    """
    _z(alpha)
    if not np.isfinite(horizon) or horizon <= 0:
        raise ModelError(f"The value for `horizon` must be a positive number of days, but {horizon!r} was passed.")
    check_columns(data, [duration, entry, event, group], what="The data")
    check_finite(data, [duration, entry])
    data = _complete(data, [duration, entry, event, group])
    a, b = _survival_times(data, duration=duration, entry=entry, start=None, stop=None)
    ev = _event_array(data, event)
    codes, levels = _group_codes(data, group)
    rows = []
    for k, level in enumerate(levels):
        sel = codes == k
        if horizon > b[sel].max():
            raise ModelError(
                f"The horizon {horizon:g} lies beyond the last tenure observed in group {level!r} "
                f"({b[sel].max():g}); the curve is unknown there. Choose a horizon of at most {b[sel].max():g}."
            )
        rmst, se = _rmst_one(a[sel], b[sel], ev[sel], horizon, entry is not None, level)
        rows.append((level, "rmst", rmst, se, int(sel.sum()), int(ev[sel].sum())))
    for level, _, rmst, se, n, events in rows[1:]:
        first = rows[0]
        rows.append((f"{level} - {first[0]}", "difference", rmst - first[2], np.hypot(se, first[3]), n + first[4],
                     events + first[5]))
    is_diff = np.array([r[1] == "difference" for r in rows])
    est = np.array([r[2] for r in rows])
    se = np.array([r[3] for r in rows])
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(is_diff, est / se, np.nan)
    table = tidy_table([r[1] for r in rows], est, se, alpha=alpha, statistic=statistic, horizon=float(horizon),
                       n=[r[4] for r in rows], events=[r[5] for r in rows])
    table.insert(0, "group", [r[0] for r in rows])
    return table


def _rmst_one(a, b, ev, horizon, delayed, level):
    """RMST of one group from lifelines' Kaplan–Meier fit, and its Greenwood-type standard error."""
    from lifelines import KaplanMeierFitter  # deferred: lifelines takes seconds to import; only RMST needs it
    from lifelines.exceptions import StatError  # deferred: as the line above
    from lifelines.utils import restricted_mean_survival_time as lifelines_rmst  # deferred: as the line above

    km = KaplanMeierFitter()
    try:
        km.fit(b, ev, entry=a if delayed else None)
    except StatError as err:
        raise ModelError(
            f"The retention curve of group {level!r} cannot be estimated: nobody is at risk at some tenure before "
            f"the last exit ({err}). Check the entry times, or start the curves later."
        ) from None
    rmst = float(lifelines_rmst(km, t=horizon))
    first = float(km.survival_function_.index[0])
    if first > 0:  # lifelines integrates from the earliest entry; the curve is 1 from tenure 0 until then (as R)
        rmst += min(first, horizon)
    table = km.event_table
    entrants = table["entrance"].to_numpy(float)
    entrants[0] = 0.0  # as lifelines: those entering at the first time are at risk then
    n_risk = table["at_risk"].to_numpy(float) - entrants
    d = table["observed"].to_numpy(float)
    t = table.index.to_numpy(float)
    surv = km.survival_function_at_times(t).to_numpy(float)
    keep = (d > 0) & (t <= horizon)
    # area under the curve from each exit time t_j to the horizon (S is a right-continuous step)
    grid = np.append(t[t < horizon], horizon)
    widths = np.diff(grid)
    after = np.concatenate([np.cumsum((widths * surv[: len(widths)])[::-1])[::-1], [0.0]])
    area = after[np.searchsorted(grid, t[keep])]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(n_risk[keep] > d[keep], d[keep] / (n_risk[keep] * (n_risk[keep] - d[keep])), 0.0)
    return rmst, float(np.sqrt(np.sum(area**2 * h)))


class KMResult(ModelResult):
    """Kaplan–Meier result; ``plot()`` draws retention curves with bands and numbers at risk."""

    def _display_table(self) -> pd.DataFrame:
        return _keyed_display(self, ["group", "term", "estimate", "conf_low", "conf_high"])

    def plot(self, *, ax=None, at_risk=True, **kwargs):
        """Draw the retention curves (tenure in months) with a numbers-at-risk table below.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on.
        at_risk : bool, default True
            Add the numbers at risk under the x axis.
        **kwargs
            Passed to :func:`plot_survival`.

        Returns
        -------
        matplotlib.axes.Axes
        """
        return plot_survival(self.extras["curves"], at_risk=self.extras["at_risk"] if at_risk else None, ax=ax,
                             **kwargs)


def fit_km(data, *, duration="exit", entry="entry", event="event", group=None, alpha=0.05,
           months=(6, 12, 24), person="employee_id", time_unit="days") -> KMResult:
    """Estimate retention (Kaplan–Meier) with delayed entry, optionally by group.

    Parameters
    ----------
    data : pandas.DataFrame
        The ``person`` table (one row per employment spell).
    duration : str, default "exit"
        Tenure in days at exit or censoring.
    entry : str or None, default "entry"
        Tenure in days when the spell enters observation (left truncation).
    event : str, default "event"
        1 for a voluntary exit.
    group : str, optional
        Column defining the curves (e.g. an alignment tercile).
    alpha : float, default 0.05
        Confidence intervals are at level ``1 - alpha``.
    months : sequence of float, default (6, 12, 24)
        Tenures (months) at which retention is reported.
    person : str or None, default "employee_id"
        Column identifying a person, used only to count people (a rehired
        employee has several spells but is one person). ``None`` declares every
        row a different person. When the column is absent the people counts
        are missing, and :func:`plot_retention` / :func:`describe_retention`
        refuse the result.
    time_unit : {"days", "weeks", "months", "years"}, default "days"
        Unit of ``duration`` and ``entry`` (recorded as the result's
        ``time_unit``). The summaries stay in months, converted from this unit
        (an average month is 365.25 / 12 days), so ``median_tenure_months`` is
        in months whatever the unit of the data.

    Returns
    -------
    KMResult
        ``tidy()``: ``group, term, estimate, conf_low, conf_high, at_risk``
        with terms ``median_tenure_months`` and ``retention_<m>_months``;
        ``at_risk`` counts spells (rows), as R's ``n.risk``.
        ``glance()``: ``n`` (spells), ``n_people``, ``events, n_groups, logrank_statistic, logrank_df,
        logrank_p_value, conf_type``. ``extras``: ``curves``
        (:func:`survival_table`, with ``people_at_risk``), ``at_risk`` (numbers at risk by year:
        ``group, time_months, at_risk, people_at_risk``), ``people`` (``group, n_people, n_spells``:
        distinct people in each group, counted by :func:`group_sizes`),
        ``people_at_risk`` (``group, term, at_risk, people_at_risk``, row by row
        as ``tidy()``) and ``logrank`` (:func:`logrank_test`). Leadership-facing
        size gates use the people counts, never ``at_risk``.

    Warns
    -----
    StatisticalWarning
        When ``group`` has a single level (no log-rank test is possible).

    Notes
    -----
    Matches ``survival::survfit(Surv(entry, exit, event) ~ group)`` with its
    default ``conf.type = "log"``; median and its interval follow
    ``quantile.survfit`` (a limit is missing where the band never reaches
    0.5, e.g. the upper one when the curve drops to 0). Retention at a tenure is the curve at that time.
    ``at_risk`` is the number at risk at exactly that tenure
    (``entry < t <= exit``); R's ``summary(fit, times = t)$n.risk`` reports
    it at the next observed time instead, so the two can differ slightly.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(500, seed=0)
    >>> int(ar.fit_km(person, group="department").glance()["n_groups"].iloc[0])
    4
    """
    per_month = _per_month(time_unit)
    known = person is None or person in data.columns
    curves = survival_table(data, duration=duration, entry=entry, event=event, group=group, alpha=alpha,
                            person=person if person is not None and known else None, time_unit=time_unit)
    used = _complete(data, [duration, entry, event] + ([group] if group else []))
    a, b = _survival_times(used, duration=duration, entry=entry, start=None, stop=None)
    ev = _event_array(used, event)
    if ev.sum() == 0:
        raise ModelError(f"No events (`{event}` == 1) in the {len(used)} rows used: retention is 1 throughout.")
    codes, levels = _group_codes(used, group)
    ids = _person_codes(used, person)
    if person is None:
        curves["people_at_risk"] = curves["at_risk"]
    elif not known:
        curves["people_at_risk"] = np.nan
    grid_months = np.arange(0, np.ceil(b.max() / per_month / 12) * 12 + 1, 12)
    rows, risk_rows = [], []
    for k, level in enumerate(levels):
        sel = codes == k
        spells = (a[sel], b[sel], None if ids is None else ids[sel])
        rows += _km_terms(level, curves[curves["group"] == level], spells, months, per_month)
        risk_rows += _km_at_risk_grid(level, spells, grid_months, per_month)
    both = pd.DataFrame(rows, columns=["group", "term", "estimate", "conf_low", "conf_high", "at_risk",
                                       "people_at_risk"])
    table = both.drop(columns="people_at_risk")
    people_at_risk = both[["group", "term", "at_risk", "people_at_risk"]]
    at_risk = pd.DataFrame(risk_rows, columns=["group", "time_months", "at_risk", "people_at_risk"])
    if known:  # whole numbers of people (missing only for a median that is never reached)
        people_at_risk = people_at_risk.astype({"people_at_risk": "Int64"})
        at_risk["people_at_risk"] = at_risk["people_at_risk"].astype("int64")
    people = _group_people(used, codes, levels, person, known)
    lr, caveats, (stat, df, pval) = _km_logrank(used, duration=duration, entry=entry, event=event, group=group,
                                                levels=levels)
    n_people = (len(used) if person is None else used[person].nunique()) if known else np.nan
    summary = pd.DataFrame([{"n": len(used), "n_people": n_people, "events": int(ev.sum()), "n_groups": len(levels),
                             "logrank_statistic": stat, "logrank_df": df, "logrank_p_value": pval,
                             "conf_type": "log (R survfit default)"}])
    extras = {"curves": curves, "at_risk": at_risk, "people": people, "people_at_risk": people_at_risk, "logrank": lr}
    return KMResult("km", table, summary, None, extras, caveats, alpha=alpha, outcome=_outcome(event),
                    time_unit=time_unit, measure="survival probability")


def _km_terms(level, curve: pd.DataFrame, spells, months, per_month) -> list[tuple]:
    """``tidy()`` rows of one Kaplan–Meier group: median tenure, then retention at each of ``months``.

    ``spells`` is ``(start, stop, person codes or None)`` of the group's rows; ``per_month`` converts
    months to the unit of the times. Each row ends with the numbers at risk: spells, then distinct people.
    A band limit that never reaches 0.5 (R's band is missing where the curve is 0) is missing, as
    ``quantile.survfit``.
    """
    a, b, ids = spells
    t = curve["time"].to_numpy()
    med = _quantile_time(t, curve["estimate"])
    lo = _quantile_time(t, curve["conf_low"])
    hi = _quantile_time(t, curve["conf_high"])
    at = [med] + [mth * per_month for mth in months]
    people = _people_at_risk(a, b, ids, np.nan_to_num(at, nan=np.inf))
    rows = [(level, "median_tenure_months", med / per_month, lo / per_month, hi / per_month,
             _at_risk(a, b, med) if np.isfinite(med) else np.nan, people[0] if np.isfinite(med) else np.nan)]
    for mth, n_people in zip(months, people[1:]):
        td = mth * per_month
        rows.append((level, f"retention_{mth:g}_months", _step_value(curve, "estimate", td),
                     _step_value(curve, "conf_low", td), _step_value(curve, "conf_high", td),
                     _at_risk(a, b, td), n_people))
    return rows


def _km_at_risk_grid(level, spells, grid_months, per_month) -> list[tuple]:
    """Numbers at risk (spells and people) of one group at each whole year of tenure (for the plot)."""
    a, b, ids = spells
    grid = np.maximum(grid_months * per_month, 1e-9)
    return [(level, gm, _at_risk(a, b, td), n_people)
            for gm, td, n_people in zip(grid_months, grid, _people_at_risk(a, b, ids, grid))]


def _km_logrank(used, *, duration, entry, event, group, levels):
    """The log-rank test of a grouped Kaplan–Meier fit: (table or None, caveats, (statistic, df, p))."""
    if group is None:
        return None, [], (np.nan, np.nan, np.nan)
    if len(levels) < 2:
        caveat = warn_caveat(f"Only one group ({list(levels)}) in `{group}`: no log-rank test is possible.")
        return None, [caveat], (np.nan, np.nan, np.nan)
    lr = logrank_test(used, duration=duration, entry=entry, event=event, group=group)
    return lr, [], (lr["statistic"].iloc[0], int(lr["df"].iloc[0]), lr["p_value"].iloc[0])


def _group_people(used, codes, levels, person, known) -> pd.DataFrame:
    """Distinct people and spells per Kaplan–Meier group, counted by :func:`group_sizes` (people, never rows)."""
    frame = pd.DataFrame({"_group": codes, "_person": used[person].to_numpy() if known and person else None})
    if not known:
        n_people = np.full(len(levels), np.nan)
        n_spells = np.bincount(codes[codes >= 0], minlength=len(levels))
    else:
        sizes = group_sizes(frame[frame["_group"] >= 0], "_group", person="_person" if person else None)
        sizes = sizes.set_index("_group").reindex(range(len(levels)))
        n_people, n_spells = sizes["n"].to_numpy(), sizes["n_rows"].to_numpy()
    return pd.DataFrame({"group": levels, "n_people": n_people, "n_spells": n_spells})


# --------------------------------------------------------------------------- competing risks
def _step_products(m: int, x: tuple, y: tuple) -> np.ndarray:
    """``sum_i X_i(J) Y_i(J)`` for ``J = 0..m``, for two processes of each subject that change at a few indices.

    A process is ``(C, lo, hi, switch, jump)``: ``X_i(J) = C[lo_i] - C[min(max(J, lo_i), hi_i)] + jump_i * (J >=
    switch_i)``, with ``C`` a cumulative sum (``C[0] = 0``, length ``m + 2``). Between the sorted change points of
    one subject (at most six) both processes are ``a + s * C[J]`` with ``s`` 0 or -1, so the sum over subjects at
    each ``J`` is ``K0 + Kx C_x[J] + Ky C_y[J] + Kxy C_x[J] C_y[J]``, the ``K`` running sums of the subjects'
    coefficients (difference arrays): ``O(n + m)`` instead of one term per subject and index.
    """
    (cx, lox, hix, swx, jx), (cy, loy, hiy, swy, jy) = x, y
    n = len(lox)
    points = np.minimum(np.sort(np.column_stack([np.zeros(n, np.int64), lox, hix, swx, loy, hiy, swy]), axis=1), m + 1)
    ends = np.column_stack([points[:, 1:], np.full(n, m + 1)])
    sums = np.zeros((4, m + 2))
    for col in range(points.shape[1]):
        use = ends[:, col] > points[:, col]
        p, e = points[use, col], ends[use, col]

        def piece(c, lo, hi, sw, jump):
            lo, hi = lo[use], hi[use]
            within = (p >= lo) & (p < hi)
            a = np.where(within, c[lo], np.where(p >= hi, c[lo] - c[hi], 0.0)) + np.where(p >= sw[use], jump[use], 0.0)
            return a, -within.astype(float)

        ax, sx = piece(cx, lox, hix, swx, jx)
        ay, sy = piece(cy, loy, hiy, swy, jy)
        for r, w in enumerate((ax * ay, sx * ay, ax * sy, sx * sy)):
            sums[r] += np.bincount(p, weights=w, minlength=m + 2) - np.bincount(e, weights=w, minlength=m + 2)
    k0, kx, ky, kxy = np.cumsum(sums, axis=1)[:, :m + 1]
    cx, cy = cx[:m + 1], cy[:m + 1]
    return k0 + kx * cx + ky * cy + kxy * cx * cy


def _aj(a, b, etype, causes, grid, z):
    """Aalen–Johansen cumulative incidence with delayed entry and its infinitesimal-jackknife SE.

    Subject ``i``'s influence on ``CIF_k(t)`` is ``-CIF_k(t) H_i(t) + G_i(t) + B_i(t)``: ``H`` and ``G`` its
    influence on the survival before ``t`` (unweighted and weighted by the incidence so far), ``B`` on the cause's
    hazard up to ``t``. Each is a cumulative sum over the event times the subject is at risk, plus a jump at its
    own exit, so the variance ``sum_i influence_i(t)^2`` at every event time comes from six sums of products
    (:func:`_step_products`) in time linear in subjects plus event times (R's ``survfit`` std.err).
    """
    ev_any = np.isin(etype, causes)
    times = np.unique(b[ev_any])
    m = len(times)
    enter = np.searchsorted(times, a, side="right")
    leave = np.searchsorted(times, b, side="right")
    n_risk = np.cumsum(np.bincount(enter, minlength=m + 1) - np.bincount(leave, minlength=m + 1))[:-1].astype(float)
    jdeath = np.searchsorted(times, b)
    d_k = np.zeros((m, len(causes)))
    for k, c in enumerate(causes):
        sel = etype == c
        d_k[:, k] = np.bincount(jdeath[sel], minlength=m)
    d = d_k.sum(axis=1)
    lam = d / n_risk
    lam_k = d_k / n_risk[:, None]
    surv = np.cumprod(1 - lam)
    surv_prev = np.concatenate([[1.0], surv[:-1]])
    cif = np.cumsum(surv_prev[:, None] * lam_k, axis=0)
    gidx = np.searchsorted(times, grid, side="right")  # number of event times <= t
    cif0 = np.vstack([np.zeros((1, len(causes))), cif])
    cif_g = cif0[gidx]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(lam < 1, 1 / (n_risk * (1 - lam)), 0.0)  # for S

    def cum(x):  # C[J] = sum over event times u < J, for J = 0..m + 1
        c = np.concatenate([[0.0], np.cumsum(x)])
        return np.concatenate([c, c[-1:]])

    def before(c):  # the survival before t uses the event times u < t - 1 only: C(J - 1)
        return np.concatenate([c[:1], c[:-1]])

    has = ev_any  # an exit of one of the causes: its jump in each process
    at = np.where(has, jdeath, 0)
    never = np.full(len(a), m + 2, np.int64)
    lo, hi = enter.astype(np.int64), leave.astype(np.int64)
    exit_at = np.where(has, at + 1, never)
    h = (before(cum(q * lam)), lo + 1, hi + 1, np.where(has, at + 2, never), np.where(has, q[at], 0.0))
    hh = _step_products(m, h, h)
    var = np.zeros((len(grid), len(causes)))
    for k, c in enumerate(causes):
        g = (before(cum(q * lam * cif[:, k])), lo + 1, hi + 1, h[3], np.where(has, q[at] * cif[at, k], 0.0))
        r = (cum(surv_prev * lam_k[:, k] / n_risk), lo, hi, exit_at,
             np.where(etype == c, surv_prev[at] / n_risk[at], 0.0))
        f = cif0[:, k]
        total = (f ** 2 * hh + _step_products(m, g, g) + _step_products(m, r, r) - 2 * f * _step_products(m, h, g)
                 - 2 * f * _step_products(m, h, r) + 2 * _step_products(m, g, r))
        var[:, k] = np.maximum(total[gidx], 0.0)  # a sum of squares, computed from products: no rounding below 0
    return times, n_risk, d_k, cif, cif_g, np.sqrt(var)


#: Labels read as censoring when ``censored=`` is not given (the contract's, R's, and the 0 of 0/1/2 codes).
_CENSORING_LABELS = ("censored", "censor", "0")


def _cif_causes(data, event_type, causes, censored):
    """The exit types counted as causes, and a note (or None) saying how censoring was read.

    With ``causes`` given every other type is censored. Otherwise the types other than the censoring
    value are the causes: ``censored`` when given, else the one of ``_CENSORING_LABELS`` present. A
    censoring value other than the contract's ``"censored"`` is reported, never used silently.
    """
    if causes is not None:
        return [str(c) for c in causes], None
    present = set(data[event_type].dropna().astype("string"))
    if censored is not None:
        return sorted(present - {str(censored)}), None
    found = [c for c in _CENSORING_LABELS if c in present]
    if len(found) > 1:
        raise ConfigError(
            f"`{event_type}` holds several censoring labels {found}; pass `censored=` (the label of a row "
            "still employed at the end of follow-up) or `causes=` (the exit types to estimate)."
        )
    if not found:
        note = (f"No censoring label ({', '.join(map(repr, _CENSORING_LABELS))}) in `{event_type}`: every "
                f"type {sorted(present)} is read as an exit; pass `censored=` or `causes=` if one means censoring.")
        return sorted(present), note
    note = None if found[0] == "censored" else (
        f"`{event_type}` value {found[0]!r} is read as censoring (not an exit); the causes are "
        f"{sorted(present - {found[0]})}. Pass `censored=` or `causes=` to choose otherwise.")
    return sorted(present - {found[0]}), note


def _join_spell_rows(data, *, duration, entry, event_type, group, causes):
    """Join the consecutive rows of one spell (start/stop rows, e.g. ``careers``) into one row per run.

    A run is rows of one ``employee_id`` (and ``spell``) and one ``group``, each starting where the one
    before stopped, all but the last censored. The Aalen–Johansen estimate is unchanged, and a person's
    influence is summed before it is squared, so standard errors count people, as R's
    ``survfit(..., id = employee_id)``. One-row-per-spell data is returned as it is.
    """
    if entry is None or "employee_id" not in data.columns:
        return data
    keys = ["employee_id"] + (["spell"] if "spell" in data.columns else [])
    if not data.duplicated(keys).any():
        return data
    run_keys = keys + ([group] if group is not None else [])
    frame = data.sort_values([*run_keys, entry], kind="stable")
    same = frame[run_keys].eq(frame[run_keys].shift()).all(axis=1).to_numpy()
    follows = frame[entry].to_numpy(float) == frame[duration].shift().to_numpy(float)
    after_censored = ~frame[event_type].astype("string").shift().isin(causes).to_numpy(dtype=bool)
    run = np.cumsum(~(same & follows & after_censored))
    runs = frame.groupby(run, sort=False)
    joined = runs.tail(1).copy()  # the last row of each run: its stop, exit type and group
    joined[entry] = runs[entry].first().to_numpy()
    return joined


class CIFResult(ModelResult):
    """Cumulative incidence result; ``plot()`` draws the curves by cause."""

    def _display_table(self) -> pd.DataFrame:
        return _keyed_display(self, ["group", "cause", "term", "estimate", "conf_low", "conf_high"])

    def plot(self, *, ax=None, **kwargs):
        """Draw cumulative incidence of each exit type against tenure (months).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on.
        **kwargs
            Passed to :func:`plot_cif`.

        Returns
        -------
        matplotlib.axes.Axes
        """
        return plot_cif(self.extras["curves"], ax=ax, **kwargs)


def cif_table(data, *, duration="exit", entry="entry", event_type="event_type", group=None, causes=None,
              times=None, alpha=0.05, censored=None, time_unit="days") -> pd.DataFrame:
    """Compute Aalen–Johansen cumulative incidence of each exit type (tidy).

    Parameters
    ----------
    data : pandas.DataFrame
        The ``person`` table.
    duration, entry : str
        Exit and entry tenure (days); ``entry`` may be None.
    event_type : str, default "event_type"
        Exit type per row; rows whose type is not in ``causes`` are censored.
    group : str, optional
        Column defining separate curves.
    causes : list of str, optional
        Exit types (default: every type except the censoring value, sorted).
    times : array-like, optional
        Tenures (in ``time_unit``) to report; default: every event time.
    alpha : float, default 0.05
        Level of the pointwise interval (log scale, as R).
    censored : str or int, optional
        The ``event_type`` value of a censored row, used when ``causes`` is
        not given. By default the one of ``"censored"``, ``"censor"`` (R's
        usual label) or ``0`` (0/1/2 codes) present; any but ``"censored"``
        is announced with a StatisticalWarning.
    time_unit : {"days", "weeks", "months", "years"}, default "days"
        Unit of ``duration`` and ``entry``; ``time_months`` is converted from it.

    Returns
    -------
    pandas.DataFrame
        ``group, cause, time, time_months, estimate, std_error, conf_low,
        conf_high``: the probability of having left for ``cause`` by
        ``time``, with an infinitesimal-jackknife standard error.

    Raises
    ------
    ConfigError
        When ``event_type`` holds more than one censoring label and neither
        ``censored`` nor ``causes`` says which.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(500, seed=0)
    >>> sorted(ar.cif_table(person, times=[365])["cause"])
    ['involuntary', 'voluntary']
    """
    z = _z(alpha)
    per_month = _per_month(time_unit)
    check_columns(data, [duration, entry, event_type, group], what="The data")
    check_finite(data, [duration, entry])
    data = _complete(data, [duration, entry, group])
    a, b = _survival_times(data, duration=duration, entry=entry, start=None, stop=None)
    causes, note = _cif_causes(data, event_type, causes, censored)
    if note is not None:
        warn_caveat(note)
    joined = _join_spell_rows(data, duration=duration, entry=entry, event_type=event_type, group=group, causes=causes)
    if joined is not data:
        data = joined
        a, b = _survival_times(data, duration=duration, entry=entry, start=None, stop=None)
    etype = data[event_type].astype("string").fillna("").to_numpy(dtype=object)
    if not causes or not np.isin(etype, causes).any():
        raise ModelError(f"No exits of the types {causes} in `{event_type}`; no cumulative incidence to estimate.")
    codes, levels = _group_codes(data, group)
    parts = []
    for g, level in enumerate(levels):
        sel = codes == g
        ev_times = np.unique(b[sel][np.isin(etype[sel], causes)])
        grid = ev_times if times is None else np.asarray(times, float)
        if len(ev_times) == 0:
            continue
        _, _, _, _, est, se = _aj(a[sel], b[sel], etype[sel], causes, grid, z)
        for k, c in enumerate(causes):
            e, s = est[:, k], se[:, k]
            with np.errstate(divide="ignore", invalid="ignore"):
                lo = np.where(e > 0, e * np.exp(-z * s / e), np.nan)
                hi = np.where(e > 0, np.minimum(e * np.exp(z * s / e), 1.0), np.nan)
            parts.append(pd.DataFrame({"group": level, "cause": c, "time": grid, "time_months": grid / per_month,
                                       "estimate": e, "std_error": s, "conf_low": lo, "conf_high": hi}))
    return pd.concat(parts, ignore_index=True)


def fit_cif(data, *, duration="exit", entry="entry", event_type="event_type", group=None, causes=None,
            alpha=0.05, months=(6, 12, 24), censored=None, time_unit="days") -> CIFResult:
    """Estimate cumulative incidence of voluntary and involuntary exit (Aalen–Johansen).

    Parameters
    ----------
    data : pandas.DataFrame
        The ``person`` table.
    duration : str, default "exit"
        Tenure in days at exit or censoring.
    entry : str or None, default "entry"
        Tenure in days at entry to observation (left truncation).
    event_type : str, default "event_type"
        Exit type (``voluntary``, ``involuntary``, ``other``, ``censored``).
    group : str, optional
        Column defining separate curves.
    causes : list of str, optional
        Exit types (default: every type except the censoring value).
    alpha : float, default 0.05
        Confidence intervals are at level ``1 - alpha``.
    months : sequence of float, default (6, 12, 24)
        Tenures (months) at which ``tidy()`` reports the incidence.
    censored : str or int, optional
        The ``event_type`` value of a censored row, used when ``causes`` is
        not given. By default the one of ``"censored"``, ``"censor"`` (R's
        usual label) or ``0`` (0/1/2 codes) present; any but ``"censored"``
        is said in ``caveats`` (and warned).
    time_unit : {"days", "weeks", "months", "years"}, default "days"
        Unit of ``duration`` and ``entry`` (recorded as the result's
        ``time_unit``); ``months`` are converted to it.

    Returns
    -------
    CIFResult
        ``tidy()``: ``group, cause, term, estimate, std_error, conf_low,
        conf_high`` (term ``incidence_<m>_months``); ``glance()``: ``n`` and
        events per cause; ``extras["curves"]``: :func:`cif_table` at every event time.

    Notes
    -----
    Matches ``survival::survfit(Surv(entry, exit, factor(event_type)) ~ 1, id = employee_id)``
    (its ``pstate``; standard errors are the infinitesimal jackknife as R's
    ``std.err``), with the censoring value as R's first factor level.
    Start/stop rows (``duration="stop", entry="start"``, e.g. the ``careers``
    table) work too: the consecutive rows of one ``employee_id`` and ``spell``
    are joined first, so standard errors count people, as ``survfit(...,
    id = employee_id)``, and ``n`` counts the joined rows.
    Cause-specific hazards come from :func:`fit_cause_specific`.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(500, seed=0)
    >>> int(ar.fit_cif(person).glance()["n"].iloc[0])
    500
    """
    per_month = _per_month(time_unit)
    check_columns(data, [event_type], what="The data")
    causes, note = _cif_causes(data, event_type, causes, censored)
    caveats = [] if note is None else [warn_caveat(note)]
    curves = cif_table(data, duration=duration, entry=entry, event_type=event_type, group=group, causes=causes,
                       alpha=alpha, time_unit=time_unit)
    at = np.asarray(months, float) * per_month
    points = cif_table(data, duration=duration, entry=entry, event_type=event_type, group=group, causes=causes,
                       times=at, alpha=alpha, time_unit=time_unit)
    points["term"] = [f"incidence_{m:g}_months" for m in points["time_months"].round(6)]
    table = points[["group", "cause", "term", "estimate", "std_error", "conf_low", "conf_high"]]
    used = _join_spell_rows(_complete(data, [duration, entry, group]), duration=duration, entry=entry,
                            event_type=event_type, group=group, causes=causes)
    counts = used[event_type].astype("string").value_counts()
    summary = pd.DataFrame([{"n": len(used), **{f"events_{c}": int(counts.get(c, 0))
                                                for c in sorted(curves["cause"].unique())}}])
    return CIFResult("cif", table, summary, None, {"curves": curves}, caveats, alpha=alpha,
                     outcome="exit, by type (" + ", ".join(map(str, sorted(curves["cause"].unique()))) + ")",
                     time_unit=time_unit, measure="cumulative incidence")


@dataclass(frozen=True, repr=False)
class CauseSpecificResult(ModelResult):
    """Cause-specific Cox models, one per exit type; :func:`ph_test` tests each.

    ``tidy()`` and ``glance()`` stack the causes' tables (leading ``cause``
    column); ``by_cause`` holds each cause's :class:`CoxResult`.
    """

    by_cause: dict = field(default_factory=dict)

    def _labelled(self) -> pd.DataFrame:
        """``table`` with each term named ``cause: term``."""
        return self.table.assign(term=self.table["cause"].astype(str) + ": " + self.table["term"].astype(str))

    def _display_table(self) -> pd.DataFrame:
        return pd.concat([self.table[["cause"]], ModelResult._display_table(self)], axis=1)

    def summary(self):
        """Return the text summary of :class:`ModelResult`, terms named ``cause: term``."""
        return ModelResult.summary(replace(self, table=self._labelled(), stats=self.stats.iloc[:0]))

    def plot(self, *, ax=None, **kwargs):
        """Draw a forest plot of the cause-specific hazard ratios (terms labelled ``cause: term``)."""
        from .plots import plot_forest  # deferred: as ModelResult.plot, only needed to draw

        return plot_forest(self._labelled(), ratio=True, ax=ax, **kwargs)


def fit_cause_specific(data, formula, *, event_type="event_type", causes=None, **cox_kwargs) -> CauseSpecificResult:
    """Fit a cause-specific Cox model for each exit type (other exits censored).

    Parameters
    ----------
    {data}
    {formula}
    event_type : str, default "event_type"
        Exit type column; each cause in turn is the event.
    causes : list of str, optional
        Exit types (default: every type except ``"censored"``).
    **cox_kwargs
        Passed to :func:`fit_cox` (``start``/``stop`` or ``duration``/``entry``,
        ``cluster``, ``strata``, ``alpha``); ``event`` is set per cause.

    Returns
    -------
    CauseSpecificResult
        ``tidy()``: ``cause`` then the :func:`fit_cox` columns; ``glance()``:
        one row per cause. ``by_cause`` (also ``model``): dict of the per-cause
        :class:`CoxResult` (outcome ``"<cause> exit"``). :func:`ph_test`
        accepts it.

    Notes
    -----
    Matches ``coxph(Surv(start, stop, event_type == "involuntary") ~ ...)`` per cause.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> intervals, _ = simulate_counting_process(500, seed=0)
    >>> res = ar.fit_cause_specific(intervals, "alignment_cascade", start="start", stop="stop")
    >>> res.tidy()["cause"].tolist()
    ['involuntary', 'voluntary']
    """
    check_columns(data, [event_type], what="The data")
    if "event" in cox_kwargs:
        raise ModelError("fit_cause_specific sets the event per cause from `event_type`; do not pass `event`.")
    etype = data[event_type].astype("string").fillna("censored")
    if causes is None:
        causes = sorted(set(etype.unique()) - {"censored"})
    if not len(causes):
        raise ModelError(f"No exit types other than 'censored' in `{event_type}`; nothing to model.")
    results = {}
    for cause in causes:
        frame = data.assign(_cause_event=(etype == cause).astype(int).to_numpy())
        res = fit_cox(frame, formula, event="_cause_event", **cox_kwargs)
        results[cause] = replace(res, outcome=_cause_outcome(cause), measure="cause-specific hazard ratio")
    table = _cause_first(pd.concat([r.tidy().assign(cause=c) for c, r in results.items()], ignore_index=True))
    summary = _cause_first(pd.concat([r.glance().assign(cause=c) for c, r in results.items()], ignore_index=True))
    caveats = [f"{cause}: {text}" for cause, res in results.items() for text in res.caveats]
    first = next(iter(results.values()))
    return CauseSpecificResult("cause_specific_cox", table, summary, results, {}, caveats, alpha=first.alpha,
                               outcome="exit, by type (" + ", ".join(map(str, results)) + ")", scale="ratio",
                               time_unit=first.time_unit, measure="cause-specific hazard ratio", by_cause=results)


def _cause_outcome(cause) -> str:
    text = str(cause)
    return text if "exit" in text else f"{text} exit"


fill_doc(fit_cause_specific)


# --------------------------------------------------------------------------- discrete time
def person_periods(data, *, start="start", stop="stop", event="event", period_days=DAYS_PER_MONTH * 3,
                   id_columns=("employee_id", "spell")) -> pd.DataFrame:
    """Expand start/stop intervals into person-period rows for a discrete-time hazard model.

    Parameters
    ----------
    data : pandas.DataFrame
        The ``intervals`` table.
    start, stop, event : str
        Interval and event columns.
    period_days : float, default one quarter (91.3125 days)
        Length of a period of tenure.
    id_columns : sequence of str
        Columns identifying a spell.

    Returns
    -------
    pandas.DataFrame
        One row per spell and period at risk: the covariates of the interval
        in force at the start of the period (or at entry), ``period`` (1 =
        first period of tenure) and ``event`` (1 if the exit falls in it).

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> intervals, _ = simulate_counting_process(200, seed=0)
    >>> int(ar.person_periods(intervals)["event"].sum()) == int(intervals["event"].sum())
    True
    """
    ids = [c for c in id_columns if c in data.columns]
    check_columns(data, [start, stop, event, *ids], what="The data")
    a = data[start].to_numpy(float)
    b = data[stop].to_numpy(float)
    first = np.floor(a / period_days).astype(np.int64) + 1  # period containing a+
    last = np.ceil(b / period_days).astype(np.int64)  # period containing b
    count = np.maximum(last - first + 1, 0)
    rows = np.repeat(np.arange(len(data)), count)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    period = np.repeat(first, count) + offset
    out = data.iloc[rows].reset_index(drop=True)
    out["period"] = period
    ev = out[event].to_numpy()
    out[event] = np.where(period == np.repeat(last, count), ev, 0)
    key = ids + ["period"]
    out = out.sort_values(key + [start], kind="stable")
    agg_event = out.groupby(key, sort=False)[event].transform("max")
    out = out.drop_duplicates(key, keep="first").copy()
    out[event] = agg_event.loc[out.index].to_numpy()
    return out.reset_index(drop=True)


def fit_discrete_time(data, formula, *, start="start", stop="stop", event="event", period_days=DAYS_PER_MONTH * 3,
                      time_formula="bs(period, df=4)", cluster=None, alpha=0.05) -> ModelResult:
    """Fit a discrete-time hazard model: logistic regression on person-period rows.

    Parameters
    ----------
    {data}
    {formula}
    start, stop : str
        Interval columns of the ``intervals`` table.
    {event}
    period_days : float, default one quarter
        Length of a period of tenure (days).
    time_formula : str, default "bs(period, df=4)"
        Terms for the baseline hazard over periods of tenure.
    {cluster}
    {alpha}

    Returns
    -------
    ModelResult
        ``tidy()``: the covariates of ``formula`` (not the baseline terms) with
        ``term, estimate, std_error, statistic, p_value, conf_low, conf_high,
        exp_estimate, exp_conf_low, exp_conf_high`` (odds ratios per period).
        ``glance()``: ``n, n_subjects, events, log_likelihood, aic, cov_type,
        formula, period_days``.

    Raises
    ------
    ModelError
        Perfect separation (a covariate predicts every event or non-event),
        a malformed formula, infinite values, or ``cluster`` with fewer than 2
        clusters.

    Warns
    -----
    StatisticalWarning
        Quasi-separation (a level without events, an estimate beyond ±10 on
        the log-odds scale), or fewer than 30 clusters; also in ``caveats``.

    Notes
    -----
    The toolkit's one logistic estimator (Newton-Raphson, as statsmodels
    ``GLM(Binomial)``; its separation rule decides the caveat); cluster-robust
    (CR1, as statsmodels ``cov_type="cluster"``) errors when ``cluster`` is
    given. ``model`` is the fitted ``LogisticFit`` (every column, baseline
    terms included). It should agree in direction with
    :func:`fit_cox`; for short periods odds ratios approach hazard ratios.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> intervals, _ = simulate_counting_process(500, seed=0)
    >>> res = ar.fit_discrete_time(intervals, "alignment_cascade", cluster="manager_id")
    >>> res.tidy()["term"].tolist()
    ['alignment_cascade']
    """
    _z(alpha)
    check_columns(data, [start, stop, event, cluster], what="The data")
    check_finite(data, [start, stop])
    data = _plain(_complete(data, [start, stop, event, cluster]))
    _event_array(data, event)
    pp = person_periods(data, start=start, stop=stop, event=event, period_days=period_days)
    if pp[event].sum() == 0:
        raise ModelError(f"No events (`{event}` == 1) in the person-period rows; a hazard model needs events.")
    full = f"{formula} + {time_formula}" if time_formula else formula
    X, kept = design_matrix(pp, full, intercept=True)
    y = pp.loc[kept, event].to_numpy(float)
    own = list(design_matrix(pp.loc[kept], formula, intercept=False)[0].columns)
    _check_perfect_separation(X, y, own)
    caveats = check_clusters(pp.loc[kept, cluster], cluster) if cluster is not None else []
    fit = fit_logistic(X.to_numpy(float), y)
    if np.all(np.abs(fit.fitted - y) <= 1e-8):  # every period predicted exactly: nothing is estimable
        raise ModelError(
            f"Perfect separation in the discrete-time model {formula!r}: the covariates predict every period "
            "exactly. Some covariate pattern predicts exit exactly; drop or coarsen the offending covariate."
        )
    cov = fit.cov
    if cluster is not None:
        cov = cluster_robust_cov(fit.scores(X.to_numpy(float), y), fit.cov, cluster_codes(pp.loc[kept, cluster]))
    pos = [X.columns.get_loc(c) for c in own]
    params = fit.params[pos]
    with np.errstate(invalid="ignore"):  # a diverging fit (caveat below) can leave no finite variance
        bse = np.sqrt(np.diag(cov))[pos]
    caveats += check_estimates(own, params, bse, model=f"discrete-time model {formula!r}", X=X[own], y=y,
                               kind="binary", converged=not fit.separated)
    table = tidy_table(own, params, bse, alpha=alpha, ratio=True)
    summary = pd.DataFrame([{"n": len(y), "n_subjects": _subject_count(pp.loc[kept]), "events": int(y.sum()),
                             "log_likelihood": fit.log_likelihood, "aic": -2 * fit.log_likelihood + 2 * X.shape[1],
                             "cov_type": f"cluster: {cluster}" if cluster else "model-based",
                             "formula": formula, "period_days": period_days}])
    return ModelResult("discrete_time", table, summary, fit, {}, caveats, alpha=alpha, outcome=_outcome(event),
                       scale="ratio", time_unit=_TIME_UNIT, measure="odds ratio")


def _check_perfect_separation(X: pd.DataFrame, y: np.ndarray, columns) -> None:
    """Refuse a column that splits periods with an exit from periods without one (an infinite odds ratio)."""
    for c in columns:
        x = X[c].to_numpy()
        if (x[y == 1].min() > x[y == 0].max()) or (x[y == 1].max() < x[y == 0].min()):
            raise ModelError(
                f"Perfect separation: `{c}` separates every period with an exit from every period without one, "
                "so its odds ratio is infinite. Drop or coarsen it, or use fewer categories."
            )


fill_doc(fit_discrete_time)


# --------------------------------------------------------------------------- sensitivity to the manager
#: The three ways :func:`retention_sensitivity` handles the group, in the order of its table.
_SENSITIVITY_MODELS = ("clustered", "stratified", "frailty")


def retention_sensitivity(intervals, formula, *, group="manager_id", start="start", stop="stop", event="event",
                          ties="efron", alpha=0.05) -> pd.DataFrame:
    """Fit the retention Cox model three ways around the manager and lay the hazard ratios side by side.

    A sensitivity analysis for what employees of one manager share:
    ``clustered`` (one baseline hazard, standard errors robust to the
    manager), ``stratified`` (a baseline hazard per manager: only
    comparisons within a manager's team inform the estimates) and
    ``frailty`` (a shared gamma frailty per manager: a random effect on the
    hazard). Estimates that agree across the three do not hinge on how the
    manager is modelled.

    Parameters
    ----------
    intervals : pandas.DataFrame
        The ``intervals`` table (start/stop rows).
    {formula}
    group : str, default "manager_id"
        The grouping column.
    start, stop : str, default "start", "stop"
        Interval columns.
    {event}
    ties : {"efron", "breslow"}, default "efron"
        Handling of tied event times.
    {alpha}

    Returns
    -------
    DataFrame
        One row per model and term: ``model`` (clustered / stratified /
        frailty), ``term, estimate, std_error, conf_low, conf_high,
        exp_estimate, exp_conf_low, exp_conf_high`` (log hazard ratios and
        hazard ratios), ``note`` (what the model assumes, with the frailty
        variance). ``attrs["results"]`` holds the three fits and
        ``attrs["caveats"]`` their caveats.

    Raises
    ------
    ModelError
        As :func:`fit_cox` (unknown columns, no events, fewer than 2 groups, ...).

    See Also
    --------
    fit_cox : each of the three fits.

    Notes
    -----
    The three fits match R's ``coxph(Surv(start, stop, event) ~ ... +
    cluster(manager_id))``, ``... + strata(manager_id)`` and ``... +
    frailty(manager_id)``. A manager whose team has no exit adds nothing to
    the stratified fit.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> intervals, _ = simulate_counting_process(400, seed=1)
    >>> table = ar.retention_sensitivity(intervals, "alignment_cascade", group="manager_id")
    >>> table["model"].tolist()
    ['clustered', 'stratified', 'frailty']
    """
    common = dict(start=start, stop=stop, event=event, ties=ties, alpha=alpha)
    fits = {
        "clustered": fit_cox(intervals, formula, cluster=group, **common),
        "stratified": fit_cox(intervals, formula, strata=group, **common),
        "frailty": fit_cox(intervals, formula, frailty=group, **common),
    }
    theta = float(fits["frailty"].stats["theta"].iloc[0])
    notes = {
        "clustered": f"one baseline hazard; standard errors robust to {group}",
        "stratified": f"a baseline hazard per {group}: compares people of the same {group} only",
        "frailty": f"shared gamma frailty per {group}, variance {theta:.3g}"
                   + (" (no variation between groups: the plain Cox fit)" if theta == 0 else ""),
    }
    columns = ["term", "estimate", "std_error", "conf_low", "conf_high", "exp_estimate", "exp_conf_low",
               "exp_conf_high"]
    table = pd.concat([fits[m].table[columns].assign(model=m, note=notes[m]) for m in _SENSITIVITY_MODELS],
                      ignore_index=True)
    table = table[["model", *columns, "note"]]
    table.attrs["results"] = fits
    table.attrs["caveats"] = list(dict.fromkeys(c for f in fits.values() for c in f.caveats))
    return table


fill_doc(retention_sensitivity)


# --------------------------------------------------------------------------- immortal time
def immortal_time_bias(intervals, *, exposure="manager_program", covariates="", start="start", stop="stop",
                       event="event", id_columns=("employee_id", "spell"), cluster="manager_id",
                       alpha=0.05) -> pd.DataFrame:
    """Show immortal-time bias: the same Cox model with exposure coded "ever" versus time-varying.

    Parameters
    ----------
    intervals : pandas.DataFrame
        The ``intervals`` table (time-varying exposure, start/stop rows).
    exposure : str, default "manager_program"
        Time-varying 0/1 exposure (1 from the day it started).
    covariates : str, default ""
        Further right-hand-side terms, identical in both fits.
    start, stop, event : str
        Interval and event columns.
    id_columns : sequence of str, default ("employee_id", "spell")
        Columns identifying an employment spell.
    cluster : str, optional
        Cluster column for robust errors (both fits).
    alpha : float, default 0.05
        Confidence level ``1 - alpha``.

    Returns
    -------
    pandas.DataFrame
        Two rows, ``coding`` "ever exposed (biased)" and "time-varying
        (correct)": ``term, estimate, std_error, hazard_ratio, conf_low,
        conf_high, p_value, n, events``.

    Notes
    -----
    The "ever" coding sets the exposure to 1 on every interval of a spell in
    which exposure started at some point, i.e. from entry, as an analysis
    that asks "did the employee's manager ever attend?" does. The exposed
    are then credited with the time before exposure, which they had to
    survive to become exposed ("immortal" time), so exposure looks
    protective. The time-varying coding counts exposed time only from the
    start date. Everything else (rows, covariates, clustering) is identical.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> intervals, _ = simulate_counting_process(500, seed=0)
    >>> ar.immortal_time_bias(intervals)["coding"].tolist()
    ['ever exposed (biased)', 'time-varying (correct)']
    """
    ids = [c for c in id_columns if c in intervals.columns]
    check_columns(intervals, [exposure, start, stop, event, cluster, *ids], what="The intervals table")
    if not ids:
        raise ModelError(f"The intervals table needs the spell identifiers {list(id_columns)} to code 'ever' exposure.")
    ever_col = f"{exposure}_ever"
    data = intervals.assign(**{ever_col: intervals.groupby(ids, sort=False, dropna=False)[exposure]
                               .transform("max").to_numpy()})
    extra = f" + {covariates}" if covariates.strip() else ""
    rows = []
    for coding, term in (("ever exposed (biased)", ever_col), ("time-varying (correct)", exposure)):
        res = fit_cox(data, term + extra, start=start, stop=stop, event=event, cluster=cluster, alpha=alpha)
        t = res.tidy().set_index("term").loc[term]
        g = res.glance().iloc[0]
        rows.append({"coding": coding, "term": exposure, "estimate": t["estimate"], "std_error": t["std_error"],
                     "hazard_ratio": t["exp_estimate"], "conf_low": t["exp_conf_low"],
                     "conf_high": t["exp_conf_high"], "p_value": t["p_value"], "n": int(g["n"]),
                     "events": int(g["events"])})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- plots
def plot_survival(data, *, at_risk=None, ax=None, band=True, **kwargs):
    """Draw retention curves (tenure in months) with confidence bands.

    Parameters
    ----------
    data : pandas.DataFrame
        A :func:`survival_table`: ``group, time_months, estimate, conf_low, conf_high``.
    at_risk : pandas.DataFrame, optional
        ``group, time_months, at_risk``: numbers at risk written under the x axis.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    band : bool, default True
        Shade the pointwise confidence band.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.step`.

    Returns
    -------
    matplotlib.axes.Axes
        One step line per group (starting at 1 at tenure 0).

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(300, seed=0)
    >>> ax = ar.plot_survival(ar.survival_table(person))
    """
    ax = axes_for(ax)
    kwargs.setdefault("where", "post")
    groups = list(pd.unique(data["group"]))
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, level in enumerate(groups):
        curve = data[data["group"] == level]
        x = np.concatenate([[0.0], curve["time_months"].to_numpy(float)])
        y = np.concatenate([[1.0], curve["estimate"].to_numpy(float)])
        color = colors[i % len(colors)]
        label = str(level) if len(groups) > 1 or level != "all" else "all"
        ax.step(x, y, label=label, color=color, **kwargs)
        if band:
            lo = np.concatenate([[1.0], curve["conf_low"].to_numpy(float)])
            hi = np.concatenate([[1.0], curve["conf_high"].to_numpy(float)])
            ax.fill_between(x, lo, hi, step="post", alpha=0.2, color=color, linewidth=0)
    ax.set_xlabel("Tenure (months)")
    ax.set_ylabel("Still employed (proportion)")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    if len(groups) > 1:
        ax.legend(title=None, frameon=False)
    if at_risk is not None and len(at_risk):
        trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        ticks = sorted(at_risk["time_months"].unique())
        ax.set_xticks(ticks)
        axes_frac = ax.transAxes
        ax.text(-0.05, -0.26, "Number at risk", transform=axes_frac, ha="right", va="center", fontsize="x-small",
                fontweight="bold")
        for i, level in enumerate(groups):
            sub = at_risk[at_risk["group"] == level]
            y = -0.33 - 0.07 * i
            ax.text(-0.05, y, f"{level}", transform=axes_frac, ha="right", va="center", fontsize="x-small",
                    color=colors[i % len(colors)])
            for t, n in zip(sub["time_months"], sub["at_risk"]):
                ax.text(t, y, f"{n}", transform=trans, ha="center", va="center", fontsize="x-small")
    return ax


def plot_cif(data, *, ax=None, band=True, **kwargs):
    """Draw cumulative incidence curves by exit type (tenure in months).

    Parameters
    ----------
    data : pandas.DataFrame
        A :func:`cif_table`: ``group, cause, time_months, estimate, conf_low, conf_high``.
    ax : matplotlib Axes, optional
        Axes to draw on.
    band : bool, default True
        Shade the pointwise confidence band.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.step`.

    Returns
    -------
    matplotlib.axes.Axes
        One step line per group and cause.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(300, seed=0)
    >>> ax = ar.plot_cif(ar.cif_table(person))
    """
    ax = axes_for(ax)
    kwargs.setdefault("where", "post")
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    keys = list(data[["group", "cause"]].drop_duplicates().itertuples(index=False, name=None))
    multi = data["group"].nunique() > 1
    for i, (level, cause) in enumerate(keys):
        curve = data[(data["group"] == level) & (data["cause"] == cause)]
        x = np.concatenate([[0.0], curve["time_months"].to_numpy(float)])
        y = np.concatenate([[0.0], curve["estimate"].to_numpy(float)])
        color = colors[i % len(colors)]
        ax.step(x, y, label=f"{cause} ({level})" if multi else str(cause), color=color, **kwargs)
        if band:
            lo = np.concatenate([[0.0], curve["conf_low"].fillna(0).to_numpy(float)])
            hi = np.concatenate([[0.0], curve["conf_high"].fillna(0).to_numpy(float)])
            ax.fill_between(x, lo, hi, step="post", alpha=0.2, color=color, linewidth=0)
    ax.set_xlabel("Tenure (months)")
    ax.set_ylabel("Cumulative incidence of exit")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    return ax


def plot_schoenfeld(data, *, term, label=None, ax=None, smooth=True, **kwargs):
    """Draw scaled Schoenfeld residuals of one term against tenure, with a smooth.

    A flat smooth near the estimate means the hazard ratio is constant over
    tenure (proportional hazards).

    Parameters
    ----------
    data : pandas.DataFrame
        ``PHTestResult.extras["residuals"]``: ``term, time_months, residual, estimate``.
    term : str
        Which term to draw.
    label : str, optional
        The term in words for the axis label (the term with spaces by default).
    ax : matplotlib Axes, optional
        Axes to draw on.
    smooth : bool, default True
        Add a LOWESS smooth of the residuals.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    matplotlib.axes.Axes
        Points (one per event), the smooth and a dashed line at the estimate.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> intervals, _ = simulate_counting_process(300, seed=0)
    >>> fit = ar.fit_cox(intervals, "alignment_cascade", start="start", stop="stop")
    >>> ax = ar.plot_schoenfeld(ar.ph_test(fit).extras["residuals"], term="alignment_cascade")
    """
    ax = axes_for(ax)
    sub = data[data["term"] == term]
    if sub.empty:
        raise ModelError(f"No residuals for term {term!r}; terms are {sorted(data['term'].unique())}.")
    kwargs.setdefault("s", 8)
    kwargs.setdefault("alpha", 0.4)
    kwargs.setdefault("color", "grey")
    x, y = sub["time_months"].to_numpy(float), sub["residual"].to_numpy(float)
    ax.scatter(x, y, **kwargs)
    if smooth and len(x) > 5:
        from statsmodels.nonparametric.smoothers_lowess import lowess  # deferred: statsmodels is heavy, only to draw

        fitted = lowess(y, x, frac=0.5, return_sorted=True)
        ax.plot(fitted[:, 0], fitted[:, 1], color="black", linewidth=2)
    ax.axhline(float(sub["estimate"].iloc[0]), color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("Tenure (months)")
    ax.set_ylabel(f"Effect of {label or term.replace('_', ' ')} over tenure\n(log hazard ratio, scaled Schoenfeld residual)")
    return ax


# --------------------------------------------------------------------------- adjusted survival curves
def cox_survival(result, newdata=None, *, times=None, alpha=None) -> pd.DataFrame:
    """Compute the survival curve a Cox model predicts for given covariate profiles.

    For each row of ``newdata`` (a covariate profile, e.g. "all goals linked
    to the manager's"), the probability of staying beyond each time,
    ``exp(-H0(t) exp(x'beta))``, with a pointwise band whose standard error
    includes the uncertainty of the baseline hazard and of the coefficients.

    Parameters
    ----------
    result : CoxResult
        A fit of :func:`fit_cox` (person or start/stop data, without ``strata``).
    newdata : pandas.DataFrame, optional
        One row per profile, with a column for each model term (the names of
        ``result.tidy()["term"]``, numeric). The index labels the profiles.
        Default: one profile at the covariate means of the fit (R's default).
    times : array-like, optional
        Times (days) at which to read the curves; default every event time.
        Between event times the curve is a step function (before the first
        event it is 1; after the last it keeps its last value).
    alpha : float, optional
        The band is at level ``1 - alpha``; default the fit's ``alpha``.

    Returns
    -------
    pandas.DataFrame
        ``profile, time, time_months, at_risk, events, estimate, std_error,
        conf_low, conf_high, cumulative_hazard``: ``estimate`` is the
        probability of staying beyond ``time``; ``std_error`` is that of the
        cumulative hazard (= of ``-log(estimate)``, R's ``std.err``); the band
        is R's ``conf.type = "log"`` (upper limit at most 1). ``at_risk``
        counts rows at risk at ``time``; ``events`` counts the events at that
        event time (with ``times``: since the previous requested time).

    Raises
    ------
    ModelError
        ``result`` is not a Cox fit or is stratified; ``newdata`` lacks a
        term, has a non-numeric or non-finite value (named by row and
        column), or no rows.

    See Also
    --------
    fit_cox : the model; survival_table : the unadjusted (Kaplan–Meier) curves.

    Notes
    -----
    Matches ``survival::survfit(coxph(...), newdata = ..., conf.type = "log")``
    (R, ``se.fit = TRUE``): with Efron ties the baseline hazard is the
    Efron-adjusted one ``survfit.coxph`` computes (Breslow ties: Breslow's).
    Tests hold ``surv``, ``std.err``, ``lower`` and ``upper`` to 1e-6 of R's
    on ``survival::veteran`` and ``survival::heart`` (start/stop). With a
    cluster-robust fit the coefficient part of the variance uses the fit's
    robust covariance, as R's ``survfit`` does (held to 1e-6 on ``heart``
    with ``cluster(id)``); the baseline-hazard part stays model-based.
    A weighted fit (``weights=``) gives R's curve of ``coxph(..., weights =
    w)`` (weighted risk sums, each Efron step weighted by the mean weight of
    the tied deaths; held to 1e-8 on ``heart``); ``at_risk`` and ``events``
    still count rows, where R's ``n.risk``/``n.event`` sum the weights. The
    default profile is the unweighted covariate means.

    Examples
    --------
    >>> import pandas as pd
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(500, seed=0)
    >>> fit = ar.fit_cox(person, "alignment_cascade", duration="exit", entry="entry")
    >>> profiles = pd.DataFrame({"alignment_cascade": [0.0, 1.0]}, index=["none linked", "all linked"])
    >>> curves = ar.cox_survival(fit, profiles, times=[365.25])
    >>> curves["profile"].tolist()
    ['none linked', 'all linked']
    """
    fit = getattr(result, "model", None)
    if not isinstance(fit, CoxFit):
        raise ModelError(f"cox_survival needs a result of fit_cox; got {type(result).__name__}.")
    cd = fit.data
    if len(np.unique(cd.strata)) > 1:
        raise ModelError("cox_survival does not handle a stratified Cox fit (one baseline hazard per stratum); "
                         "refit without `strata` or compare the strata with survival_table.")
    z = _z(result.alpha if alpha is None else alpha)
    Xnew, labels = _cox_profiles(fit, newdata)
    hazard, variance, xbar = _cox.baseline_hazard(cd, fit.evaluation)
    H0, V0, XB = np.cumsum(hazard), np.cumsum(variance), np.cumsum(xbar, axis=0)
    a, b, ev = fit.surv
    a_sorted, b_sorted = np.sort(a), np.sort(b)
    if times is None:
        grid = cd.times
        idx = np.arange(len(grid))
        events = cd.d.astype(int)
    else:
        grid = np.asarray(times, dtype=float).ravel()
        if not len(grid) or not np.isfinite(grid).all():
            raise ModelError(f"`times` must be finite numbers; got {times!r}.")
        idx = np.searchsorted(cd.times, grid, side="right") - 1
        cum_d = np.concatenate([[0], np.cumsum(cd.d)])
        before = np.concatenate([[0], cum_d[idx[:-1] + 1]])
        events = (cum_d[idx + 1] - before).astype(int)
    # rows with start < t <= stop: those with stop >= t less those with start >= t (start < stop)
    at_risk = np.searchsorted(a_sorted, grid, side="left") - np.searchsorted(b_sorted, grid, side="left")
    seen = idx >= 0
    at = np.where(seen, idx, 0)
    h0 = np.where(seen, H0[at], 0.0)
    v0 = np.where(seen, V0[at], 0.0)
    xb = np.where(seen[:, None], XB[at], 0.0)
    parts = []
    for label, x in zip(labels, Xnew - cd.center):
        risk = float(np.exp(x @ fit.beta))
        cumhaz = h0 * risk
        dt = h0[:, None] * x - xb
        se = np.sqrt(v0 + np.einsum("ij,jk,ik->i", dt, fit.var, dt)) * risk
        surv = np.exp(-cumhaz)
        parts.append(pd.DataFrame({
            "profile": label, "time": grid, "time_months": grid / DAYS_PER_MONTH, "at_risk": at_risk.astype(int),
            "events": events, "estimate": surv, "std_error": se, "conf_low": surv * np.exp(-z * se),
            "conf_high": np.minimum(surv * np.exp(z * se), 1.0), "cumulative_hazard": cumhaz,
        }))
    return pd.concat(parts, ignore_index=True)


def cox_restricted_mean(result, newdata, *, horizon: float, alpha=None) -> pd.DataFrame:
    """Restricted mean tenure a Cox model predicts for covariate profiles, and their differences.

    The area under each adjusted survival curve of :func:`cox_survival` from
    0 to ``horizon``: the expected tenure counted only up to the horizon
    ("over their first 3 years, employees stay on average 27 months"). The
    difference between two profiles reads "stay on average N months longer
    over 3 years".

    Parameters
    ----------
    result : CoxResult
        A fit of :func:`fit_cox` (without ``strata``).
    newdata : pandas.DataFrame
        One row per profile, a numeric column per model term (as for
        :func:`cox_survival`); the index labels the profiles. The first row
        is the reference of the differences.
    horizon : float
        Upper limit of the integral, in days (``3 * 365.25`` for three years).
    alpha : float, optional
        Intervals at level ``1 - alpha``; default the fit's ``alpha``.

    Returns
    -------
    pandas.DataFrame
        ``profile, term, estimate, std_error, conf_low, conf_high, horizon``
        (days): one row ``term="rmst"`` per profile, then one row
        ``term="difference"`` per further profile (its RMST minus the first
        profile's; ``profile`` reads ``"B - A"``). Also ``estimate_months``,
        ``conf_low_months`` and ``conf_high_months``.

    Raises
    ------
    ModelError
        As :func:`cox_survival`; a ``horizon`` that is not positive.

    Notes
    -----
    Each curve is the step function ``exp(-H0(t) exp(x'beta))`` of
    :func:`cox_survival` (R's ``survfit(coxph, newdata)``), 1 before the first
    event time; its area up to the horizon is a sum over event times. The
    point estimates equal R's ``rmean`` of ``print(survfit(fit, newdata),
    rmean = horizon)``. R's ``se(rmean)`` there treats the curve as a
    Kaplan–Meier curve, so the standard errors here are a delta method
    instead, with the two parts ``cox_survival`` uses for its band (Tsiatis'
    decomposition): the baseline-hazard increments (independent, with the
    variance of ``survfit.coxph``) and the coefficients (the fit's
    covariance, cluster-robust when the fit is). A difference of two profiles
    shares both, so its variance is computed jointly, not added. Intervals
    are Wald intervals; tests check the standard error of a difference
    against a bootstrap over subjects.

    Examples
    --------
    >>> import pandas as pd
    >>> import alignment_research as ar
    >>> from alignment_research._cox import simulate_counting_process
    >>> _, person = simulate_counting_process(500, seed=0)
    >>> fit = ar.fit_cox(person, "alignment_cascade", duration="exit", entry="entry")
    >>> profiles = pd.DataFrame({"alignment_cascade": [0.0, 1.0]}, index=["none linked", "all linked"])
    >>> ar.cox_restricted_mean(fit, profiles, horizon=730.5)["term"].tolist()
    ['rmst', 'rmst', 'difference']
    """
    fit = getattr(result, "model", None)
    if not isinstance(fit, CoxFit):
        raise ModelError(f"cox_restricted_mean needs a result of fit_cox; got {type(result).__name__}.")
    if not np.isfinite(horizon) or horizon <= 0:
        raise ModelError(f"The value for `horizon` must be a positive number of days, but {horizon!r} was passed.")
    cd = fit.data
    if len(np.unique(cd.strata)) > 1:
        raise ModelError("cox_restricted_mean does not handle a stratified Cox fit; refit without `strata`.")
    z = _z(result.alpha if alpha is None else alpha)
    Xnew, labels = _cox_profiles(fit, newdata)
    hazard, variance, xbar = _cox.baseline_hazard(cd, fit.evaluation)
    keep = cd.times <= horizon
    times = cd.times[keep]
    H0, XB, v = np.cumsum(hazard)[keep], np.cumsum(xbar, axis=0)[keep], variance[keep]
    # the curve holds S_k on [t_k, t_{k+1}) (t_{m+1} = horizon) and 1 on [0, t_1)
    lengths = np.diff(np.append(times, float(horizon)))
    lead = times[0] if len(times) else float(horizon)
    risk = np.exp((Xnew - cd.center) @ fit.beta)
    surv = np.exp(-H0[None, :] * risk[:, None])                                   # (profiles, times)
    # dH_x(t_k)/dbeta = r_x (H0_k x_c - XB_k)
    q = risk[:, None, None] * (H0[None, :, None] * (Xnew - cd.center)[:, None, :] - XB[None, :, :])
    rmst = lead + surv @ lengths

    def _se(coef: np.ndarray) -> float:
        """Delta-method SE of sum_x coef_x RMST_x (baseline part + coefficient part)."""
        a = (coef[:, None] * surv * risk[:, None] * lengths[None, :]).sum(axis=0)
        w = np.cumsum(a[::-1])[::-1]
        g = -np.einsum("x,xk,k,xkp->p", coef, surv, lengths, q)
        return float(np.sqrt(np.sum(v * w ** 2) + g @ fit.var @ g))

    rows = []
    eye = np.eye(len(labels))
    for i, label in enumerate(labels):
        rows.append({"profile": label, "term": "rmst", "estimate": float(rmst[i]), "std_error": _se(eye[i])})
    for i in range(1, len(labels)):
        rows.append({"profile": f"{labels[i]} - {labels[0]}", "term": "difference",
                     "estimate": float(rmst[i] - rmst[0]), "std_error": _se(eye[i] - eye[0])})
    out = pd.DataFrame(rows)
    out["conf_low"] = out["estimate"] - z * out["std_error"]
    out["conf_high"] = out["estimate"] + z * out["std_error"]
    out["horizon"] = float(horizon)
    for col in ("estimate", "conf_low", "conf_high"):
        out[f"{col}_months"] = out[col] / DAYS_PER_MONTH
    return out


def _cox_profiles(fit: CoxFit, newdata) -> tuple[np.ndarray, list]:
    """The design rows of the profiles in ``newdata`` (default: the covariate means) and their labels."""
    columns = fit.columns
    if newdata is None:
        return fit.data.center[None, :].copy(), ["mean"]
    if not isinstance(newdata, pd.DataFrame):
        raise ModelError(f"`newdata` must be a DataFrame with columns {columns}; got {type(newdata).__name__}.")
    missing = [c for c in columns if c not in newdata.columns]
    if missing:
        raise ModelError(f"`newdata` lacks the model term(s) {missing}; it needs a numeric column for each of "
                         f"{columns}.")
    if newdata.empty:
        raise ModelError("`newdata` has no rows; give one row per covariate profile.")
    values = newdata[columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ModelError(f"`newdata` row {newdata.index[r]!r}, column {columns[c]!r}: value "
                         f"{newdata[columns[c]].iloc[r]!r} is not a finite number (rule: every profile needs a "
                         "numeric value for each model term).")
    return values, list(newdata.index)


def survival_at(curves: pd.DataFrame, time: float, *, per: int | None = None) -> pd.DataFrame:
    """Read survival curves at one time, optionally as counts out of ``per`` people.

    Parameters
    ----------
    curves : pandas.DataFrame
        A tidy curve table with ``time, estimate, conf_low, conf_high`` and a
        ``profile`` (from :func:`cox_survival`) or ``group`` column (from
        :func:`survival_table`).
    time : float
        Time (days) at which to read each curve (a step function: the value at
        the last time not after ``time``; 1 before the first).
    per : int, optional
        Also give ``still_here, still_here_low, still_here_high``: the
        estimate and band times ``per`` ("of 100 employees, about 85 are
        still here after 12 months").

    Returns
    -------
    pandas.DataFrame
        One row per profile (or group): ``profile`` (or ``group``), ``time,
        estimate, conf_low, conf_high`` (and the ``still_here`` columns).

    Examples
    --------
    >>> import pandas as pd
    >>> curves = pd.DataFrame({"profile": ["a", "a"], "time": [10.0, 20.0], "estimate": [0.9, 0.8],
    ...                        "conf_low": [0.85, 0.7], "conf_high": [0.95, 0.9]})
    >>> survival_at(curves, 15, per=100)["still_here"].tolist()
    [90.0]
    """
    key = "profile" if "profile" in curves.columns else "group" if "group" in curves.columns else None
    need = ["time", "estimate", "conf_low", "conf_high"]
    missing = [c for c in need if c not in curves.columns]
    if missing or key is None:
        raise ModelError(f"`curves` must have the columns profile (or group), {', '.join(need)}; missing "
                         f"{missing or ['profile']}.")
    # each curve's last row not after ``time`` (1 before its first), for every curve at once: the rows by curve
    # (in order of first appearance) and time, the last of each curve's rows up to ``time``
    labels, first = pd.factorize(curves[key], use_na_sentinel=True)
    times = curves["time"].to_numpy(float)
    order = np.lexsort((times, labels))
    order = order[labels[order] >= 0]  # a missing label is no curve (as grouping leaves it out)
    upto = order[times[order] <= float(time)]
    last = np.full(len(first), -1)
    ends = np.r_[labels[upto][1:] != labels[upto][:-1], True] if len(upto) else np.zeros(0, bool)
    last[labels[upto][ends]] = upto[ends]  # each curve's rows are in time order: its end is its latest time
    out = pd.DataFrame({key: first, "time": float(time)})
    for col in need[1:]:
        values = curves[col].to_numpy(float)
        out[col] = np.where(last >= 0, values[np.maximum(last, 0)], 1.0)
    if per is not None:
        for col, name in zip(need[1:], ["still_here", "still_here_low", "still_here_high"]):
            out[name] = out[col] * per
    return out
