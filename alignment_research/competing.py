"""Competing-risks regression: Fine–Gray subdistribution hazards, the model of R's ``cmprsk::crr``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _finegray
from ._checks import check_estimates, check_finite, warn_caveat
from ._docs import fill_doc
from ._formula import check_columns, design_matrix
from .errors import ModelError
from .results import ModelResult, tidy_table

__all__ = ["fit_finegray", "FineGrayResult"]

#: Unit of the survival time columns of the analysis tables (tenure).
_TIME_UNIT = "days"


class FineGrayResult(ModelResult):
    """Fine–Gray result: subdistribution hazard ratios in ``tidy()``, a forest plot in ``plot()``.

    Attributes
    ----------
    model : dict
        The engine's state: ``beta``, ``var`` (crr's sandwich), ``naive_var``
        (inverse information), ``columns``, ``iterations`` and ``data`` (the
        prepared arrays, sorted by time).

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._finegray import simulate
    >>> res = ar.fit_finegray(simulate(300, seed=1), "mentoring", duration="exit", cause="promotion")
    >>> type(res).__name__, res.measure
    ('FineGrayResult', 'subdistribution hazard ratio')
    """


def _status(data: pd.DataFrame, event_type: str, cause, censored) -> tuple[np.ndarray, list]:
    """Codes 1 (the cause), 2 (a competing event), 0 (censored) per row, and the competing types."""
    labels = data[event_type].astype("string")
    is_cause = (labels == str(cause)).to_numpy(dtype=bool)
    is_censored = (labels == str(censored)).to_numpy(dtype=bool)
    if not is_cause.any():
        present = sorted(map(str, labels.dropna().unique()))
        raise ModelError(
            f"No row of `{event_type}` is the cause {cause!r}; the values present are {present}. Pass "
            f"`cause=` as one of them (e.g. cause=\"promotion\")."
        )
    status = np.where(is_cause, 1, np.where(is_censored, 0, 2))
    competing = sorted(map(str, labels[status == 2].unique()))
    return status, competing


def _one_row_per_spell(data: pd.DataFrame) -> None:
    """Refuse start/stop rows: several rows of one spell mean time-varying covariates."""
    keys = [c for c in ("employee_id", "spell") if c in data.columns]
    if "employee_id" not in keys:
        return
    repeated = data.duplicated(keys, keep=False)
    if repeated.any():
        first = data.loc[repeated, keys].iloc[0].tolist()
        raise ModelError(
            f"fit_finegray needs one row per spell, but {int(repeated.sum())} rows share their {keys} (first: "
            f"{first}): several rows per spell are time-varying covariates, which this Fine–Gray model does not "
            "support (its weights assume each subject's covariates are fixed). Use fit_cause_specific(data, "
            "formula, event_type=..., start=\"start\", stop=\"stop\") for time-varying covariates, or collapse "
            "to one row per spell with the values at its start."
        )


def _entry_times(rows: pd.DataFrame, entry: str | None, time: np.ndarray) -> np.ndarray | None:
    """Entry times of the rows used (None without ``entry``); each must come before its row's time."""
    if entry is None:
        return None
    if not pd.api.types.is_numeric_dtype(rows[entry]) or pd.api.types.is_bool_dtype(rows[entry]):
        raise ModelError(f"The entry column `{entry}` must be numeric (tenure at entry), but it holds "
                         f"{rows[entry].dtype} values; convert it first.")
    values = rows[entry].to_numpy(dtype=float)
    bad = ~(values < time)
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise ModelError(
            f"{int(bad.sum())} row(s) do not end after they start (`{entry}`={values[i]!r}, time={time[i]!r} in "
            f"row {rows.index[i]!r}); the risk interval (entry, time] must not be empty. Drop or fix these rows."
        )
    return values


def fit_finegray(data, formula, *, duration, event_type="event_type", cause, censored="censored", entry=None,
                 alpha=0.05) -> FineGrayResult:
    """Fit a Fine–Gray subdistribution hazards model (time to one cause, others competing).

    For time to promotion, with exits as competing events: the model says how
    a covariate changes the cumulative incidence of promotion, counting that
    someone who left can no longer be promoted. Matches ``cmprsk::crr``:
    the censoring-weighted score and crr's sandwich variance, which accounts
    for the estimated censoring distribution.

    Parameters
    ----------
    {data}
        One row per spell (fixed covariates).
    {formula}
    duration : str
        Time column (tenure at the event or at censoring).
    event_type : str, default "event_type"
        What ended each row: the ``cause``, the ``censored`` label, or any
        other value (a competing event, e.g. voluntary / involuntary / other).
    cause : str or int
        The ``event_type`` value of interest (e.g. ``"promotion"``).
    censored : str or int, default "censored"
        The ``event_type`` value of a row still at risk at the end of follow-up.
    entry : str, optional
        Entry time column (left truncation: a row is at risk after its
        entry). With late entrants the weights are those of
        ``survival::finegray`` (see Notes).
    {alpha}

    Returns
    -------
    FineGrayResult
        ``tidy()``: ``term, estimate, std_error, statistic, p_value,
        conf_low, conf_high, exp_estimate, exp_conf_low, exp_conf_high`` (log
        subdistribution hazard ratios, then the ratios). ``glance()``: ``n,
        events, n_competing, n_censored, log_pseudo_likelihood,
        log_pseudo_likelihood_null, converged, cov_type, formula, cause,
        competing``. ``extras["baseline"]``: ``time, hazard,
        cumulative_hazard``, the baseline (all covariates 0) cumulative
        subdistribution hazard at each time of the cause (crr's ``bfitj``);
        the cumulative incidence of a profile ``x`` is
        ``1 - exp(-cumulative_hazard * exp(x'beta))``. ``measure`` is
        ``"subdistribution hazard ratio"``, ``outcome`` the cause in words.

    Raises
    ------
    ModelError
        Unknown columns, a malformed formula, a ``cause`` absent from
        ``event_type``, collinear or constant covariates, a row that does not
        end after its entry, or several rows per spell (time-varying
        covariates; use :func:`fit_cause_specific`).

    Warns
    -----
    StatisticalWarning
        When no row carries the ``censored`` label (every non-cause row is
        then read as a competing event), when there are no competing events,
        or when the fit does not converge or an estimate diverges. Each is
        also kept in ``caveats``.

    See Also
    --------
    fit_cause_specific : cause-specific Cox models (time-varying covariates, late entry).
    fit_cif : cumulative incidence of each type by group (Aalen–Johansen).

    Notes
    -----
    At a time ``u`` of the cause, the risk set holds everyone without an event
    yet (weight 1) and everyone with a competing event before ``u``, weighted
    by ``G(u-) / G(t-)``, the Kaplan–Meier of the censoring distribution
    just before ``u`` over its value just before their own time ``t``. Ties
    are Breslow's. The variance is ``I^-1 V I^-1``, ``V`` summing each
    subject's score term plus the term for the estimated ``G`` (Fine and Gray
    1999). Tests hold coefficients to 1e-6 and standard errors to 1e-5
    (relative) of ``crr(ftime, fstatus, cov1, failcode=, cencode=)`` on
    ``survival::mgus2``, crr's own example and a data set with tied times.
    The fit converges to a tighter tolerance than crr's default stopping rule
    (``gtol = 1e-6``), so tiny differences from a default crr are crr's.
    With no competing events and no censoring it is a Cox model with Breslow
    ties and a robust (one cluster per row) variance.

    Late entry (some ``entry > 0``), which crr cannot fit, follows Geskus
    (2011) as ``survival::finegray`` does: a row is at risk after its entry,
    and the weight ``W(u-) / W(t-)`` has ``W = G H``, ``G`` the censoring
    Kaplan–Meier with delayed entry and ``H`` the reverse-time Kaplan–Meier
    of the entry times. Coefficients, log pseudo-likelihood and standard
    errors then match ``coxph(Surv(fgstart, fgstop, fgstatus) ~ x +
    cluster(id), weights = fgwt, ties = "breslow", data = finegray(Surv(entry,
    exit, type) ~ ., data, id = id))`` (tested to 1e-6 and 1e-5): the robust
    sandwich treats the weights as known (``cov_type`` says so), where crr's
    adds a term for their estimation. Rows with a missing
    value in a column used are left out (complete cases, as crr's ``na.omit``).

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research._finegray import simulate
    >>> careers = simulate(500, seed=0)
    >>> res = ar.fit_finegray(careers, "mentoring + rating", duration="exit", cause="promotion")
    >>> res.tidy()["term"].tolist(), res.glance()["competing"].iloc[0]
    (['mentoring', 'rating'], 'involuntary, voluntary')
    """
    if not 0 < alpha < 1:
        raise ModelError(f"The value for `alpha` must lie between 0 and 1, but {alpha!r} was passed.")
    check_columns(data, [duration, event_type, entry], what="The data")
    check_finite(data, [duration, entry])
    if not pd.api.types.is_numeric_dtype(data[duration]) or pd.api.types.is_bool_dtype(data[duration]):
        raise ModelError(f"The time column `{duration}` must be numeric (tenure), but it holds "
                         f"{data[duration].dtype} values; convert it first.")
    _one_row_per_spell(data)
    rows = data.loc[data[[c for c in (duration, event_type, entry) if c is not None]].notna().all(axis=1)]
    X, kept = design_matrix(rows, formula, intercept=False)
    rows = rows.loc[kept]
    columns = list(X.columns)
    Xv = X.to_numpy(float)
    Xc = Xv - Xv.mean(axis=0)
    if np.linalg.matrix_rank(Xc.T @ Xc / max(len(Xc), 1)) < Xc.shape[1]:
        raise ModelError(f"The covariates {columns} are collinear (one is a combination of others); drop one of them.")
    status, competing = _status(rows, event_type, cause, censored)
    caveats = []
    if not (status == 0).any() and (status == 2).any():
        caveats.append(warn_caveat(
            f"No row of `{event_type}` is {censored!r} (censored): every row other than {cause!r} is read as a "
            f"competing event ({competing}). If one of them means censoring, pass it as `censored=`."
        ))
    if not (status == 2).any():
        caveats.append(warn_caveat(
            f"No competing events in `{event_type}`: the Fine–Gray model is then a Cox model of {cause!r} "
            "(fit_cox gives the same hazard ratios)."
        ))
    time = rows[duration].to_numpy(dtype=float)
    fd = _finegray.prepare(Xv, time, status, _entry_times(rows, entry, time))
    beta, evaluation, loglik0, iterations, converged = _finegray.fit(fd)
    var, naive = _finegray.sandwich(fd, evaluation)
    with np.errstate(invalid="ignore"):  # a diverging fit (caveat below) can leave no finite variance
        se = np.sqrt(np.diag(var))
        naive_se = np.sqrt(np.diag(naive))
    caveats += check_estimates(columns, beta, naive_se, model=f"Fine–Gray fit of {formula!r}", X=X,
                               y=(status == 1).astype(int), kind="events", converged=converged)
    table = tidy_table(columns, beta, se, alpha=alpha, ratio=True)
    summary = pd.DataFrame([{
        "n": len(rows),
        "events": int((status == 1).sum()),
        "n_competing": int((status == 2).sum()),
        "n_censored": int((status == 0).sum()),
        "log_pseudo_likelihood": evaluation.loglik,
        "log_pseudo_likelihood_null": loglik0,
        "converged": bool(converged),
        "cov_type": ("robust, late entry: weights as known (as coxph on finegray rows)" if fd.delayed
                     else "sandwich (censoring estimated, as crr)"),
        "formula": formula,
        "cause": str(cause),
        "competing": ", ".join(competing),
    }])
    jumps = _finegray.baseline_hazard(fd, evaluation, beta)
    baseline = pd.DataFrame({"time": fd.times, "hazard": jumps, "cumulative_hazard": np.cumsum(jumps)})
    model = {"beta": beta, "var": var, "naive_var": naive, "columns": columns, "data": fd,
             "iterations": iterations}
    outcome = str(cause).replace("_", " ")
    return FineGrayResult("finegray", table, summary, model, {"baseline": baseline}, caveats, alpha=alpha,
                          outcome=outcome + (f" (competing: {', '.join(competing)})" if competing else ""),
                          scale="ratio", time_unit=_TIME_UNIT, measure="subdistribution hazard ratio")


fill_doc(fit_finegray)
