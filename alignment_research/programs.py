"""Programme effects from observational data: trial emulation, propensity matching, balance, E-values."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from matplotlib.ticker import FormatStrFormatter

from ._checks import check_clusters, check_finite
from ._estimators import WildBootstrap, cluster_codes, cluster_robust_cov, demean, fit_logistic, wild_cluster_bootstrap
from ._formula import check_columns, design_matrix, formula_terms
from .errors import ModelError, StatisticalWarning
from .plots import axes_for, plot_forest
from .privacy import group_sizes, size_gate
from .results import TIDY_COLUMNS, ModelResult, tidy_table
from .retention import fit_cox
from .spells import index_of, locate_pairs
from .study import CleanStudy

__all__ = [
    "PROGRAM_COVARIATES",
    "WILD_BOOTSTRAP_BELOW",
    "ProgramEffectResult",
    "program_trials",
    "fit_propensity",
    "PropensityResult",
    "match_trials",
    "balance_table",
    "plot_love",
    "plot_overlap",
    "e_value",
    "event_study",
    "plot_event_study",
    "estimate_program_effect",
    "estimate_program_effects",
]

#: Covariates measured before each enrolment date and used for the propensity model and balance.
PROGRAM_COVARIATES = [
    "rating",
    "team_size",
    "job_level",
    "tenure_years",
    "team_engagement",
    "team_alignment",
    "department",
]

#: Terms of the default propensity (enrolment) model over the trial table (logit).
PROPENSITY_TERMS = (
    "rating", "np.log(team_size)", "job_level", "tenure_years", "team_engagement", "team_alignment", "C(department)",
)
#: The default propensity model as a right-hand-side formula.
PROPENSITY_FORMULA = " + ".join(PROPENSITY_TERMS)
#: Trial columns present only when the study has the data behind them (reviews, surveys, goals).
_OPTIONAL_TRIAL_COLUMNS = ("rating", "team_engagement", "team_alignment")

_SMD_THRESHOLD = 0.1
#: Below this many matched enrolling managers, cluster-robust intervals are flagged as too narrow.
_FEW_TREATED = 40
#: With fewer treated managers (clusters) than this in the engagement model, ``inference="auto"`` takes the
#: programme effect's p-value and interval from the wild cluster restricted bootstrap
#: (:func:`~alignment_research._estimators.wild_cluster_bootstrap`, weights by matched set, two-way t): cluster-robust
#: intervals can be too narrow when few clusters are treated (MacKinnon & Webb 2017). In simulation (default truth,
#: about 29 treated managers) the bootstrap covers 96% of seeds 0-49 and 93% of seeds 50-149; with the simulator's
#: practices off, 92% of seeds 0-49 and 98% of seeds 50-249 (96.8% of all 250),
#: the two-way CR1 interval 96% and 98.5% (its K counts the absorbed dummies, which widens it by about 1.25 and
#: leaves the bootstrap unchanged); clustered by manager alone, CR1 covered 92% (80% without job history): see
#: tests/test_wildboot.py.
WILD_BOOTSTRAP_BELOW = 50
#: The engagement wild bootstrap: Webb weights, this many draws, this seed (results are reproducible).
_WILD_DRAWS, _WILD_TYPE, _WILD_SEED = 9999, "webb", 0
_INFERENCE = ("auto", "cluster", "wild")
#: How the engagement effect's standard error is clustered (``glance()["inference"]`` without the bootstrap).
_ENGAGEMENT_CR1 = "cluster (CR1, two-way: manager and matched set)"


# --------------------------------------------------------------------------------------------
# Balance
# --------------------------------------------------------------------------------------------


def _indicator_columns(data: pd.DataFrame, covariates):
    """Yield each covariate's columns: one 0/1 column per level of a categorical one, with label and type.

    Yields ``(label, type, values)`` with ``values`` a float array (missing
    where the covariate is), one covariate at a time, so no frame of them all
    is built (a trial table has millions of rows).
    """
    for name in covariates:
        values = data[name]
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object or pd.api.types.is_string_dtype(
            values
        ):
            levels = sorted(values.dropna().astype(str).unique())
            for level in levels:
                x = (values.astype("string") == level).astype(float).where(values.notna())
                yield f"{name}[{level}]", "binary", x.to_numpy(float)
        else:
            v = pd.to_numeric(values, errors="raise").to_numpy(float)
            # binary: every observed value is 0 or 1 (at most two distinct values, those), without hashing them
            yield name, "binary" if ((v == 0.0) | (v == 1.0) | np.isnan(v)).all() else "continuous", v


def _wmean(x: np.ndarray, w: np.ndarray | None = None) -> float:
    """Weighted mean over the present values with positive weight (``w=None``: all weights 1)."""
    if w is None:
        # a weight of 1 leaves each value and adds 1 to the total: the same sums as the weighted formula
        x = x[~np.isnan(x)]
        return float(np.sum(x) / float(len(x))) if len(x) else np.nan
    ok = ~np.isnan(x) & (w > 0)
    return float(np.sum(x[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else np.nan


def _var(x: np.ndarray, binary: bool) -> float:
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return np.nan
    if binary:
        p = x.mean()
        return float(p * (1 - p))
    return float(np.var(x, ddof=1)) if len(x) > 1 else 0.0


def balance_table(data: pd.DataFrame, treatment: str, covariates, weights=None) -> pd.DataFrame:
    """Compute standardised mean differences before and after adjustment.

    Each covariate's difference in means between treated and control rows is
    divided by the pooled standard deviation of the *unadjusted* groups,
    ``sqrt((s_t^2 + s_c^2) / 2)``, so that before and after use the same yard
    stick. Categorical covariates get one 0/1 row per level.

    Parameters
    ----------
    data : DataFrame
        One row per unit (here: a manager in a trial), with the treatment and covariates.
    treatment : str
        Column holding 1 for treated and 0 for control rows.
    covariates : list of str
        Columns to check. Text or categorical columns are split into levels.
    weights : str or array-like, optional
        Matching or inverse-probability weights (a column name or one value per
        row). Without them only the ``before`` columns are filled.

    Returns
    -------
    DataFrame
        One row per covariate (or level): ``covariate, type`` (binary or
        continuous), ``mean_treated, mean_control, smd_before`` and, with
        weights, ``mean_treated_adj, mean_control_adj, smd_after``.

    Raises
    ------
    ModelError
        When a column is missing or the treatment is not 0/1 with both groups present.

    See Also
    --------
    plot_love : Draw the table.

    Notes
    -----
    Matches R's ``cobalt::bal.tab(covs, treat, weights = w, s.d.denom = "pooled",
    binary = "std", continuous = "std")``: for a binary treatment the denominator
    is the pooled SD of the unweighted groups; a continuous covariate's variance
    is the sample variance (n - 1), a binary covariate's is ``p (1 - p)``.
    Differences are treated minus control. An absolute SMD above 0.1 is the
    usual sign of imbalance (Austin 2009).

    References
    ----------
    Austin, P. C. (2009). Balance diagnostics for comparing the distribution of
    baseline covariates between treatment groups in propensity-score matched
    samples. Statistics in Medicine, 28, 3083-3107.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> d = pd.DataFrame({"t": [1, 1, 0, 0, 0], "x": [3.0, 5.0, 1.0, 2.0, 3.0]})
    >>> ar.balance_table(d, "t", ["x"])[["covariate", "smd_before"]].round(3)
      covariate  smd_before
    0         x       1.633
    """
    covariates = list(covariates)
    check_columns(data, [treatment, *covariates], what="balance data")
    t = pd.to_numeric(data[treatment], errors="coerce").to_numpy(float)
    if not set(np.unique(t[~np.isnan(t)])) == {0.0, 1.0}:
        raise ModelError(f"`{treatment}` must hold 0 (control) and 1 (treated), both present; got {np.unique(t)}.")
    if weights is not None:
        w = data[weights].to_numpy(float) if isinstance(weights, str) else np.asarray(weights, float)
        if len(w) != len(data) or np.any(w < 0) or np.any(np.isnan(w)):
            raise ModelError("`weights` must be one non-negative, non-missing value per row of `data`.")
    treated, control = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    if weights is not None:
        # only rows of positive weight enter an adjusted mean: pick them once (the same values, in row order)
        treated_w, control_w = treated[w[treated] > 0], control[w[control] > 0]
    rows = []
    for label, kind, x in _indicator_columns(data, covariates):
        binary = kind == "binary"
        x1, x0 = x[treated], x[control]
        sd = np.sqrt((_var(x1, binary) + _var(x0, binary)) / 2)
        m1, m0 = _wmean(x1), _wmean(x0)
        row = dict(covariate=label, type=kind, mean_treated=m1, mean_control=m0, smd_before=_smd(m1 - m0, sd))
        if weights is not None:
            a1, a0 = _wmean(x[treated_w], w[treated_w]), _wmean(x[control_w], w[control_w])
            row.update(mean_treated_adj=a1, mean_control_adj=a0, smd_after=_smd(a1 - a0, sd))
        rows.append(row)
    return pd.DataFrame(rows)


def _smd(diff: float, sd: float) -> float:
    if np.isnan(diff):
        return np.nan
    if sd == 0 or np.isnan(sd):
        return 0.0 if diff == 0 else np.nan
    return float(diff / sd)


def effective_sample_size(weights) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of a set of weights."""
    w = np.asarray(weights, float)
    return float(w.sum() ** 2 / np.sum(w**2)) if np.sum(w**2) > 0 else 0.0


def plot_love(balance: pd.DataFrame, *, threshold: float = _SMD_THRESHOLD, ax=None, **kwargs):
    """Draw a love plot: absolute standardised mean differences before and after adjustment.

    Parameters
    ----------
    balance : DataFrame
        A :func:`balance_table` (``covariate, smd_before`` and optionally ``smd_after``).
    threshold : float, default 0.1
        Draw a dashed line at this absolute SMD.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.plot` for both series.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes; ``ax.lines[0]`` holds the before points and ``ax.lines[1]``
        the after points as ``(|smd|, row)``, covariates ordered by their
        imbalance before adjustment (largest on top).

    See Also
    --------
    balance_table : Compute the table.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> b = pd.DataFrame({"covariate": ["x", "y"], "smd_before": [0.5, -0.2], "smd_after": [0.05, 0.01]})
    >>> ax = ar.plot_love(b)
    """
    ax = axes_for(ax)
    table = balance.assign(_abs=balance["smd_before"].abs()).sort_values(["_abs", "covariate"], kind="stable")
    y = np.arange(len(table))
    kwargs.setdefault("linestyle", "none")
    ax.plot(table["smd_before"].abs().to_numpy(), y, marker="o", fillstyle="none", label="before", **kwargs)
    if "smd_after" in table:
        ax.plot(table["smd_after"].abs().to_numpy(), y, marker="o", label="after", **kwargs)
    ax.axvline(threshold, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(table["covariate"].astype(str))
    ax.set_xlabel("Absolute standardised mean difference")
    ax.legend(loc="lower right")
    return ax


def plot_overlap(
    data: pd.DataFrame,
    *,
    propensity: str = "propensity",
    treatment: str = "treated",
    weights: str | None = None,
    bins: int = 20,
    limits=None,
    ax=None,
    **kwargs,
):
    """Draw the propensity score distributions of treated and control rows, mirrored.

    Treated rows are drawn above the axis and control rows below it, as
    densities over common bins; where one group has mass and the other none,
    the groups do not overlap and no comparison is possible there.

    Parameters
    ----------
    data : DataFrame
        The trial table (``ProgramEffectResult.extras["trials"]``) or any table
        with a propensity and a 0/1 treatment column.
    propensity : str, default "propensity"
        Column of propensity scores in (0, 1).
    treatment : str, default "treated"
        Column of 0/1 treatment indicators.
    weights : str, optional
        Column of weights; rows with weight 0 are left out (e.g. unmatched controls).
    bins : int, default 20
        Number of equal-width bins.
    limits : tuple of float, optional
        Range of the bins; the range of the scores shown by default (daily
        enrolment probabilities are small, so [0, 1] would hide the shape).
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.bar`.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes; its ``containers[0]`` are the treated bars (heights =
        densities), ``containers[1]`` the control bars (heights = minus densities).

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> d = pd.DataFrame({"treated": [1, 0, 0], "propensity": [0.6, 0.3, 0.5]})
    >>> ax = ar.plot_overlap(d)
    """
    ax = axes_for(ax)
    check_columns(data, [propensity, treatment] + ([weights] if weights else []), what="overlap data")
    rows = data if weights is None else data[data[weights] > 0]
    shown = rows[propensity].to_numpy(float)
    lo, hi = limits if limits is not None else (float(np.nanmin(shown)), float(np.nanmax(shown)))
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-9, bins + 1)
    width = edges[1] - edges[0]
    kwargs.setdefault("alpha", 0.8)
    for value, sign, label in ((1, 1, "treated"), (0, -1, "control")):
        ps = rows.loc[rows[treatment] == value, propensity].to_numpy(float)
        dens, _ = np.histogram(ps, bins=edges, density=True) if len(ps) else (np.zeros(bins), None)
        ax.bar(edges[:-1], sign * dens, width=width, align="edge", label=f"{label} (n = {len(ps)})", **kwargs)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Propensity score (probability of enrolling)")
    ax.set_ylabel("Density (control below the axis)")
    ax.legend(loc="upper right")
    return ax


# --------------------------------------------------------------------------------------------
# Sensitivity
# --------------------------------------------------------------------------------------------

_MEASURES = ("RR", "HR", "OR", "SMD")


def _to_rr(x, measure: str, rare: bool):
    x = np.asarray(x, float)
    if measure == "RR" or (measure in ("HR", "OR") and rare):
        return x
    if measure == "HR":
        return (1 - 0.5 ** np.sqrt(x)) / (1 - 0.5 ** np.sqrt(1 / x))
    if measure == "OR":
        return np.sqrt(x)
    return np.exp(0.91 * x)  # SMD


def _e(rr: float) -> float:
    rr = 1 / rr if rr < 1 else rr
    return float(rr + np.sqrt(rr * (rr - 1)))


def e_value(estimate, conf_low=None, conf_high=None, *, measure: str = "HR", rare: bool = True) -> pd.DataFrame:
    """Compute the E-value of an estimate and of its confidence limit nearer the null.

    The E-value is the minimum strength of association, on the risk-ratio
    scale, that an unmeasured confounder would need with both the exposure and
    the outcome, beyond the measured covariates, to explain away the estimate.

    Parameters
    ----------
    estimate : float
        The point estimate on its natural scale (a ratio, not its log; for
        ``"SMD"`` a standardised mean difference).
    conf_low, conf_high : float, optional
        The confidence limits on the same scale.
    measure : {"HR", "RR", "OR", "SMD"}, default "HR"
        What the estimate is.
    rare : bool, default True
        Whether the outcome is rare (< 15% by the end of follow-up). For a
        common outcome a hazard ratio is converted to a risk ratio with
        ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))`` and an odds ratio with
        ``sqrt(OR)``.

    Returns
    -------
    DataFrame
        One row: ``measure, estimate, conf_low, conf_high`` as given,
        ``rr, rr_conf_low, rr_conf_high`` (on the risk-ratio scale),
        ``e_value`` (for the estimate) and ``e_value_ci`` (for the limit nearer
        1; equal to 1 when the interval contains 1; NaN without limits).

    Raises
    ------
    ModelError
        For a non-positive ratio, an unknown measure, or limits on the wrong
        side of the estimate.

    Notes
    -----
    ``E = RR + sqrt(RR (RR - 1))`` for ``RR >= 1``, applied to ``1/RR`` below 1
    (VanderWeele & Ding 2017). Matches R's ``EValue::evalues.HR(est, lo, hi,
    rare)``, ``evalues.RR``, ``evalues.OR`` and, for ``"SMD"``, the conversion
    ``RR = exp(0.91 d)`` of ``evalues.MD`` (VanderWeele 2017; there the limits
    are ``exp(0.91 d -/+ 1.78 se)``, here ``exp(0.91 limit)``: equal up to rounding).

    References
    ----------
    VanderWeele, T. J., & Ding, P. (2017). Sensitivity analysis in observational
    research: introducing the E-value. Annals of Internal Medicine, 167, 268-274.
    VanderWeele, T. J. (2020). Optimal approximate conversions of odds ratios and
    hazard ratios to risk ratios. Biometrics, 76, 746-752.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.e_value(3.9, 1.8, 8.7, measure="RR")[["e_value", "e_value_ci"]].round(2)
       e_value  e_value_ci
    0     7.26         3.0
    """
    if measure not in _MEASURES:
        raise ModelError(f"The value for `measure` must be one of {list(_MEASURES)}, but {measure!r} was passed.")
    values = [estimate, conf_low, conf_high]
    if measure != "SMD" and any(v is not None and not v > 0 for v in values):
        raise ModelError(f"A {measure} and its limits must be positive ratios (not logs); got {values}.")
    if conf_low is not None and conf_low > estimate or conf_high is not None and conf_high < estimate:
        raise ModelError(f"The limits must bracket the estimate; got {conf_low} <= {estimate} <= {conf_high}.")
    rr = float(_to_rr(estimate, measure, rare))
    lo = np.nan if conf_low is None else float(_to_rr(conf_low, measure, rare))
    hi = np.nan if conf_high is None else float(_to_rr(conf_high, measure, rare))
    nearer = lo if rr >= 1 else hi
    if np.isnan(nearer):
        e_ci = np.nan
    elif (rr >= 1 and nearer <= 1) or (rr < 1 and nearer >= 1):
        e_ci = 1.0  # the interval contains the null
    else:
        e_ci = _e(nearer)
    return pd.DataFrame(
        [
            dict(
                measure=measure,
                estimate=float(estimate),
                conf_low=np.nan if conf_low is None else float(conf_low),
                conf_high=np.nan if conf_high is None else float(conf_high),
                rr=rr,
                rr_conf_low=lo,
                rr_conf_high=hi,
                e_value=_e(rr),
                e_value_ci=e_ci,
            )
        ]
    )


# --------------------------------------------------------------------------------------------
# Trial emulation: one trial per enrolment date, managers not yet enrolled as controls
# --------------------------------------------------------------------------------------------


def _first_enrolment(programs: pd.DataFrame, program: str) -> pd.Series:
    check_columns(programs, ["employee_id", "program", "start_date"], what="programs")
    rows = programs[programs["program"] == program]
    return rows.groupby("employee_id")["start_date"].min()


def program_trials(
    employees: pd.DataFrame,
    programs: pd.DataFrame,
    *,
    program: str = "leadership_development",
    ratings: pd.DataFrame | None = None,
    team_measures: pd.DataFrame | None = None,
    window=None,
) -> pd.DataFrame:
    """Build the sequence of emulated trials: one per enrolment date.

    At each date on which a manager starts ``program`` (a trial), the
    *treated* row is that manager and the *control* rows are every other
    manager who has reports that day and has not started the programme by then
    (they may enrol later; the outcome analysis censors them at their own
    enrolment). Covariates are those known on the trial date, never later.

    Parameters
    ----------
    employees : DataFrame
        Clean ``employees`` table (``employee_id, hire_date, termination_date,
        department, job_level, manager_id``).
    programs : DataFrame
        Clean ``programs`` table (``employee_id, program, start_date``).
    program : str, default "leadership_development"
        The programme whose first enrolment dates define the trials.
    ratings : DataFrame, optional
        ``employee_id, known_date, rating``: review ratings with the date from
        which each was known (a cycle's end + 1 day).
    team_measures : DataFrame, optional
        ``employee_id, date, measure, value`` (long form): report-level measures
        with the date they became known, e.g. survey engagement. For each
        measure the team mean of every report's latest value known strictly
        before the trial date becomes column ``team_<measure>``.
    window : tuple of dates, optional
        Observation window ``(start, end)``; only enrolments inside it start trials.

    Returns
    -------
    DataFrame
        One row per manager and trial: ``trial`` (1, 2, ...), ``index_date``,
        ``manager_id``, ``treated`` (1 for the manager enrolling that day),
        ``enrol_date`` (the manager's own first enrolment, NaT if never),
        ``rating`` (latest known; missing values take the trial mean),
        ``team_size`` (reports employed that day), ``job_level``,
        ``tenure_years``, ``department`` and ``team_<measure>`` columns
        (missing take the trial mean).

    Raises
    ------
    ModelError
        When no manager with reports enrols in ``program`` inside the window.

    Notes
    -----
    This is the sequential target-trial emulation of Hernán & Robins (2016)
    with risk-set sampling (Li, Propert & Rosenbaum 2001): exposure is defined
    by date, so nobody is counted as treated before enrolment (no immortal
    time). A manager enrolled before the window never serves as a control.

    References
    ----------
    Hernán, M. A., & Robins, J. M. (2016). Using big data to emulate a target
    trial when a randomized trial is not available. American Journal of
    Epidemiology, 183, 758-764.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> trials = ar.program_trials(clean.tables["employees"], clean.tables["programs"])
    >>> int(trials["treated"].sum()) > 0
    True
    """
    check_columns(employees, ["employee_id", "hire_date", "termination_date", "manager_id"], what="employees")
    enrol = _first_enrolment(programs, program)
    dates = _trial_dates(enrol, window)
    spells = employees.reset_index(drop=True)
    spells = spells.assign(employee_id=spells["employee_id"].astype(str),
                           manager_id=spells["manager_id"].astype("string"))
    managers, members, ids = _managers_at_risk(spells, dates, enrol)
    if managers.empty:
        raise ModelError(
            f"No manager with reports starts {program!r} inside the observation window, so there is no trial to "
            f"emulate. Programmes present: {sorted(programs['program'].dropna().unique())}."
        )
    trials = _trial_covariates(managers, spells)
    if ratings is not None:
        trials["rating"] = _latest_ratings(trials, ratings)
    if team_measures is not None:
        number = np.zeros(len(dates), dtype=np.int64)  # trial number of each trial date with a trial, else 0
        number[managers["t"].to_numpy()] = trials["trial"].to_numpy()
        inside = np.flatnonzero(number[members["t"]] > 0)  # in date order, as the trial dates are sorted
        team = {name: values[inside] for name, values in members.items()}
        team["trial"] = number[team["t"]]
        for measure, values in _team_means(trials, managers["_e"].to_numpy(), team, dates, team_measures, ids):
            trials[f"team_{measure}"] = values
    return _fill_with_trial_means(trials).reset_index(drop=True)


def _trial_dates(enrol: pd.Series, window) -> np.ndarray:
    """The distinct first-enrolment dates inside the window: one trial each."""
    dates = enrol.sort_values()
    if window is not None:
        start, end = pd.Timestamp(window[0]), pd.Timestamp(window[1])
        dates = dates[(dates >= start) & (dates < end)]
    return np.unique(dates.to_numpy("datetime64[ns]"))


def _employed_until(spells: pd.DataFrame) -> np.ndarray:
    """Each spell's termination date, far in the future while it is open."""
    term = spells["termination_date"].to_numpy("datetime64[ns]")
    return np.where(np.isnat(term), np.datetime64("2262-01-01"), term)


def _managers_at_risk(spells: pd.DataFrame, dates: np.ndarray, enrol: pd.Series):
    """Who is at risk in each trial: managers with reports that day who have not started the programme.

    Returns the managers (``t`` the trial's position in ``dates``,
    ``employee_id``, ``_s`` their spell's row, ``team_size``, ``_e`` their id's
    code, ``index_date``, ``enrol_date``, ``treated``), only in trials with an
    enrolling manager, sorted by trial and id; the members (every employee
    with a manager on each trial date: arrays ``t`` and the codes ``_e`` of the
    employee and ``_m`` of the manager, millions of rows, so no frame), in
    trial order; and the ids the codes index.

    Ids are matched as integer codes of one factorisation of the employee and
    manager ids (sorted, so the codes order as the ids do): a trial table
    holds every (trial date, employee) pair, millions of rows at 20,000
    employees, and hashing their text for each step cost most of the time.
    """
    hire = spells["hire_date"].to_numpy("datetime64[ns]")
    term = _employed_until(spells)
    # every (trial date, spell) pair employed that day: hire <= d < termination
    t_idx, s_idx = np.nonzero((hire[None, :] <= dates[:, None]) & (term[None, :] > dates[:, None]))
    employee = spells["employee_id"].to_numpy(object)
    manager = spells["manager_id"]
    has_manager = manager.notna().to_numpy()
    codes, ids = pd.factorize(np.concatenate([employee, manager[has_manager].to_numpy(object)]), sort=True)
    n = len(ids)
    person = codes[:len(employee)]
    boss = np.full(len(employee), -1, dtype=codes.dtype)
    boss[has_manager] = codes[len(employee):]
    who, boss_of = person[s_idx], boss[s_idx]
    # the last spell per person and day: only people with several spells can have two on one day; an earlier
    # one is left out of both the reports (``led``) and the managers (``leads``) below
    rehired = np.flatnonzero((np.bincount(person, minlength=n) > 1)[who])
    latest = np.ones(len(who), bool)
    latest[rehired[pd.Series(t_idx[rehired].astype(np.int64) * n + who[rehired]).duplicated(keep="last")
                   .to_numpy()]] = False
    led = np.flatnonzero((boss_of >= 0) & latest)
    members = {"t": t_idx[led], "_e": who[led], "_m": boss_of[led]}  # codes: no text copied per row
    # team sizes per (trial date, manager), counted over the managers only (a few of the ids): dates x managers bins
    boss_ids = np.flatnonzero(np.bincount(boss_of[led], minlength=n))  # the distinct managers, in code order
    lead = np.full(n, -1, dtype=np.int64)  # each id's place among the managers; -1 for the others
    lead[boss_ids] = np.arange(len(boss_ids))
    m = max(len(boss_ids), 1)
    team_size = np.append(np.bincount(t_idx[led].astype(np.int64) * m + lead[boss_of[led]],
                                      minlength=len(dates) * m), 0)  # the last bin: not a manager
    place = lead[who]
    size = team_size[np.where(place >= 0, t_idx.astype(np.int64) * m + place, len(team_size) - 1)]
    leads = (size > 0) & latest
    enrolled = enrol.reindex(ids).to_numpy("datetime64[ns]")  # each id's first enrolment, NaT if none
    managers = pd.DataFrame({"t": t_idx[leads], "employee_id": employee[s_idx[leads]], "_s": s_idx[leads],
                             "team_size": size[leads], "_e": who[leads]})
    managers["index_date"] = dates[managers["t"].to_numpy()]
    managers["enrol_date"] = enrolled[who[leads]]
    managers = managers[managers["enrol_date"].isna() | (managers["enrol_date"] >= managers["index_date"])]
    managers = managers.assign(treated=(managers["enrol_date"] == managers["index_date"]).astype(int))
    trial = managers["t"].to_numpy()
    has_treated = np.bincount(trial, weights=managers["treated"].to_numpy(), minlength=len(dates))[trial] > 0
    managers = managers[has_treated]
    by_id = np.lexsort((managers["_e"].to_numpy(), managers["t"].to_numpy()))  # trial, then id, as the text sorts
    return managers.iloc[by_id], members, pd.Index(ids)


def _trial_covariates(managers: pd.DataFrame, spells: pd.DataFrame) -> pd.DataFrame:
    """One row per manager and trial with the covariates of the manager's spell on the trial date."""
    s_of = managers["_s"].to_numpy()
    hire = spells["hire_date"].to_numpy("datetime64[ns]")
    return pd.DataFrame(
        {
            "trial": pd.factorize(managers["t"], sort=True)[0] + 1,
            "index_date": managers["index_date"].to_numpy(),
            "manager_id": managers["employee_id"].to_numpy(),
            "treated": managers["treated"].to_numpy(int),
            "enrol_date": managers["enrol_date"].to_numpy(),
            "team_size": managers["team_size"].to_numpy(int),
            "job_level": pd.to_numeric(spells["job_level"], errors="coerce").to_numpy(float)[s_of]
            if "job_level" in spells
            else np.nan,
            "tenure_years": (managers["index_date"].to_numpy() - hire[s_of]) / np.timedelta64(1, "D") / 365.25,
            "department": spells["department"].astype("string").to_numpy()[s_of] if "department" in spells else "all",
        }
    )


def _latest_ratings(trials: pd.DataFrame, ratings: pd.DataFrame) -> pd.Series:
    """Each trial manager's latest rating known on the trial date (missing when none yet)."""
    order = np.argsort(trials["index_date"].to_numpy(), kind="stable")
    known = ratings.dropna(subset=["rating", "known_date"]).astype({"employee_id": str})
    known = known.sort_values("known_date", kind="stable")[["employee_id", "known_date", "rating"]]
    left = trials.iloc[order][["index_date", "manager_id"]].reset_index()
    got = pd.merge_asof(left, known.rename(columns={"employee_id": "manager_id"}), left_on="index_date",
                        right_on="known_date", by="manager_id", allow_exact_matches=True)
    return got.set_index("index")["rating"].reindex(trials.index).astype(float)


def _team_means(trials: pd.DataFrame, manager_codes: np.ndarray, team: dict, dates: np.ndarray,
                team_measures: pd.DataFrame, ids: pd.Index):
    """Yield each measure and, per trial row, the mean of the reports' latest values known before the trial date.

    ``team`` holds the reports on each trial date in date order (arrays: the
    date's place ``t`` in ``dates``, ``trial``, and the codes of their ids
    ``_e`` and managers' ``_m`` among ``ids``); ``manager_codes`` are the
    trial rows' managers' codes.
    """
    tm = team_measures.dropna(subset=["value", "date"])
    person = index_of(tm["employee_id"].astype(str), ids)  # -1: nobody in any team
    n = len(ids)
    team_key = team["trial"].astype(np.int64) * n + team["_m"]
    trial_key = trials["trial"].to_numpy(np.int64) * n + manager_codes
    measures = tm["measure"].to_numpy()
    names = sorted(team_measures["measure"].unique())
    latest = {}
    for measure in names:
        chosen = measures == measure
        latest[measure] = _latest_before(team["_e"], team["t"], dates, person[chosen],
                                         tm["date"].to_numpy("datetime64[ns]")[chosen],
                                         tm["value"].to_numpy(float)[chosen])
    # one grouping of the reports by trial and manager for every measure (each column's means as on its own)
    means = pd.DataFrame(latest).groupby(team_key).mean() if names else None
    for measure in names:
        yield measure, means[measure].reindex(trial_key).to_numpy(float)


def _latest_before(who: np.ndarray, t: np.ndarray, dates: np.ndarray, known_who: np.ndarray,
                   known_when: np.ndarray, known_value: np.ndarray) -> np.ndarray:
    """Each (``who``, ``dates[t]``) row's latest known value dated strictly before it (NaN when none).

    ``pd.merge_asof(by=who, allow_exact_matches=False)`` on the known values
    sorted by date, as integer keys: ties on one person and date take the last
    known row in its original order, as merge_asof does.
    """
    days = np.unique(known_when)  # the distinct dates, as ranks: a date's rank, or how many dates lie before
    width = len(days) + 1
    key = known_who.astype(np.int64) * width + np.searchsorted(days, known_when)
    order = np.argsort(key, kind="stable")
    key = key[order]
    before = np.searchsorted(days, dates, side="left")  # known dates before each trial date: earlier ones only
    # one place past the latest known key below each row's, read from arrays with a sentinel in front
    at = np.searchsorted(key, who.astype(np.int64) * width + before[t], side="left")
    owner = np.r_[-1, known_who[order]]
    value = np.r_[np.nan, known_value[order]]
    return np.where(owner[at] == who, value[at], np.nan)


def _fill_with_trial_means(trials: pd.DataFrame) -> pd.DataFrame:
    """Fill a missing rating or team measure with its trial's mean (else the overall mean)."""
    for column in trials.columns:
        if column == "rating" or column.startswith("team_") and column != "team_size":
            trial_mean = trials.groupby("trial")[column].transform("mean")
            trials[column] = trials[column].fillna(trial_mean).fillna(trials[column].mean())
    return trials


@dataclass(frozen=True, repr=False)
class PropensityResult(ModelResult):
    """The enrolment (propensity) model and the trials it scored.

    ``tidy()`` is the pooled logistic regression (log odds ratios of
    enrolling, ``exp_estimate`` the odds ratio); ``trials`` (also
    ``extras["trials"]``) is the trial table with ``propensity`` and
    ``logit_propensity`` added.
    """

    @property
    def trials(self) -> pd.DataFrame:
        """The scored trial table: a copy of the input with ``propensity`` and ``logit_propensity``."""
        return self.extras["trials"]


def fit_propensity(
    data: pd.DataFrame, formula: str = PROPENSITY_FORMULA, *, treatment: str = "treated", alpha: float = 0.05,
    copy: bool = True,
) -> PropensityResult:
    """Fit the enrolment (propensity) model on the stacked trials and score every trial row.

    Parameters
    ----------
    data : DataFrame
        The trial table (:func:`program_trials`): one row per manager and trial.
    formula : str, default PROPENSITY_FORMULA
        Right-hand side of the logit model for enrolment.
    treatment : str, default "treated"
        The 0/1 column to predict.
    alpha : float, default 0.05
        Intervals in ``tidy()`` are at level ``1 - alpha``.
    copy : bool, default True
        ``False`` scores a shallow copy: ``trials`` shares ``data``'s columns
        (editing one in place edits the other) and only adds its own two.
        For a trial table made just to be scored, whose copy would cost
        hundreds of MB; ``data`` itself never changes either way.

    Returns
    -------
    PropensityResult
        ``tidy()``: ``term, estimate, std_error, statistic, p_value, conf_low,
        conf_high`` (log odds ratios of enrolling) and ``exp_estimate,
        exp_conf_low, exp_conf_high`` (odds ratios). ``glance()``: ``n,
        n_treated, log_likelihood, aic, separated, formula``. ``trials`` (and
        ``extras["trials"]``): a copy of ``data`` with ``propensity``
        (predicted probability of enrolling that day) and ``logit_propensity``
        (missing for rows with a missing covariate).

    Warns
    -----
    StatisticalWarning
        When the model shows (quasi-)separation by the toolkit's one rule
        (Newton-Raphson does not converge, an estimate is not finite, or a
        fitted probability is within 1e-10 of 0 or 1): some covariate pattern
        predicts enrolment perfectly. The text is also in
        ``caveats``.

    Notes
    -----
    A pooled logistic regression over the stacked risk sets, as R's
    ``glm(treated ~ ..., family = binomial, data = trials)``.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> t = pd.DataFrame({"treated": [1, 0, 0, 1, 0, 0], "x": [3, 1, 2, 2, 3, 1]})
    >>> res = ar.fit_propensity(t, "x")
    >>> bool(res.trials["propensity"].between(0, 1).all()), res.measure
    (True, 'odds ratio')
    """
    X, kept = design_matrix(data, formula, what="trials")
    y = data.loc[kept, treatment].to_numpy(float)
    fit = fit_logistic(X.to_numpy(float), y)
    caveats = []
    if fit.separated:
        caveats.append(
            "The enrolment model shows (quasi-)separation: some covariate pattern predicts enrolment "
            "perfectly. Propensities near 0 or 1 follow; check plot_overlap and consider coarser covariates."
        )
        warnings.warn(caveats[-1], StatisticalWarning, stacklevel=2)
    trials = data.copy(deep=copy)
    if len(kept) == len(trials) and kept.equals(trials.index):  # every row scored: no alignment needed
        trials["logit_propensity"] = X.to_numpy(float) @ fit.params
    else:
        trials["logit_propensity"] = np.nan
        trials.loc[kept, "logit_propensity"] = X.to_numpy(float) @ fit.params
    trials["propensity"] = 1 / (1 + np.exp(-trials["logit_propensity"]))
    with np.errstate(invalid="ignore"):  # a separated fit's covariance is not to be read (the caveat says so)
        std_errors = fit.std_errors
    table = tidy_table(list(X.columns), fit.params, std_errors, alpha=alpha, ratio=True)
    stats = pd.DataFrame([dict(n=len(y), n_treated=int(y.sum()), log_likelihood=fit.log_likelihood,
                               aic=2 * X.shape[1] - 2 * fit.log_likelihood, separated=fit.separated,
                               formula=formula)])
    return PropensityResult(name="propensity", table=table, stats=stats, model=fit, extras={"trials": trials},
                            caveats=caveats, alpha=alpha, outcome="enrolment", scale="ratio",
                            measure="odds ratio")


def match_trials(
    trials: pd.DataFrame, *, ratio: int = 3, caliper: float = 0.2, exact=None, mahalanobis=None,
    unit: str = "manager_id",
) -> pd.DataFrame:
    """Match each enrolling manager to not-yet-enrolled controls from the same trial.

    Greedy nearest-neighbour matching on the logit of the propensity score,
    within each trial (same index date), without replacement inside a trial;
    a manager can be a control in several trials (risk-set matching).

    Parameters
    ----------
    trials : DataFrame
        Trials with ``trial, manager_id, treated, logit_propensity`` (see
        :func:`fit_propensity`).
    ratio : int, default 3
        Controls per treated manager (fewer when the caliper leaves fewer).
    caliper : float, default 0.2
        Largest allowed distance, in standard deviations of the logit
        propensity over all trial rows (Austin 2011).
    exact : list of str, optional
        Columns on which controls must equal their treated manager (e.g.
        ``["department"]``).
    mahalanobis : list of str, optional
        Columns (text columns become 0/1 indicators): among the controls inside the propensity caliper,
        choose the nearest by Mahalanobis distance on these (covariance over
        all trial rows) instead of by propensity (Rubin & Thomas 2000). This
        balances the covariates themselves much better than the score alone.
    unit : str, default "manager_id"
        Column naming who is matched (``"employee_id"`` for an employee's own
        programme, :func:`estimate_development_effect`).

    Returns
    -------
    DataFrame
        A copy with ``matched_set`` (``"<trial>:<treated manager>"``, NA when
        unmatched) and ``weight`` (1 for a matched treated manager,
        ``1 / controls in its set`` for a matched control, 0 otherwise).

    Notes
    -----
    Equivalent to R's ``MatchIt::matchit(..., method = "nearest", distance =
    logit_ps, caliper = 0.2, ratio = 3)`` run separately in each trial.

    References
    ----------
    Austin, P. C. (2011). Optimal caliper widths for propensity-score matching.
    Pharmaceutical Statistics, 10, 150-161.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> t = pd.DataFrame({"trial": 1, "manager_id": list("abcd"), "treated": [1, 0, 0, 0],
    ...                   "logit_propensity": [0.0, 0.1, 3.0, -0.2]})
    >>> ar.match_trials(t, ratio=1, caliper=0.2)["matched_set"].tolist()
    ['1:a', '1:a', <NA>, <NA>]
    """
    exact = [exact] if isinstance(exact, str) else list(exact or [])
    check_columns(trials, ["trial", unit, "treated", "logit_propensity", *exact], what="trials")
    if ratio < 1:
        raise ModelError(f"`ratio` must be a positive integer, got {ratio}.")
    out = trials.reset_index(drop=True)
    logit = out["logit_propensity"].to_numpy(float)
    treated = out["treated"].to_numpy(int) == 1
    ids = out[unit].astype(str).to_numpy()
    width = caliper * float(np.nanstd(logit, ddof=1))
    strata = (pd.factorize(out[exact].astype(str).agg("|".join, axis=1))[0] if exact
              else np.zeros(len(out), int))
    if mahalanobis:
        Z = pd.get_dummies(out[list(mahalanobis)], drop_first=True, dtype=float).to_numpy(float)
        Z = Z - np.nanmean(Z, axis=0)
        root = np.linalg.cholesky(np.linalg.pinv(np.cov(Z, rowvar=False)) + 1e-12 * np.eye(Z.shape[1]))
        Z = Z @ root  # Euclidean distance on Z = Mahalanobis distance on the covariates
    labels = np.full(len(out), None, dtype=object)
    weight = np.zeros(len(out))
    for trial, rows in out.groupby("trial", sort=True).indices.items():
        pool = rows[~treated[rows]]
        available = np.ones(len(pool), bool)
        tr = rows[treated[rows]]
        tr = tr[np.lexsort((ids[tr], -logit[tr]))]
        for i in tr:
            distance = np.abs(logit[pool] - logit[i])
            ok = np.flatnonzero(available & (distance <= width) & (strata[pool] == strata[i]))
            if not len(ok):
                continue
            if mahalanobis:
                distance = np.sqrt(np.sum((Z[pool] - Z[i]) ** 2, axis=1))
            chosen = ok[np.argsort(distance[ok], kind="stable")[:ratio]]
            label = f"{trial}:{ids[i]}"
            labels[i] = label
            labels[pool[chosen]] = label
            weight[i] = 1.0
            weight[pool[chosen]] = 1.0 / len(chosen)
            available[chosen] = False
    out["matched_set"] = pd.array(labels, dtype="string")
    out["weight"] = weight
    return out


# --------------------------------------------------------------------------------------------
# Outcome data
# --------------------------------------------------------------------------------------------


def _censor_dates(matched: pd.DataFrame, window_end: pd.Timestamp) -> pd.Series:
    """Follow-up ends at the window end; controls are censored when they enrol themselves."""
    own = matched["enrol_date"].where((matched["treated"] == 0) & (matched["enrol_date"] > matched["index_date"]))
    return own.fillna(window_end).clip(upper=window_end)


def _history_team(team: pd.DataFrame, spells: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Reports whose manager in force on the trial date is the trial's manager, censored when that ends.

    ``history`` is the clean ``job_history``; a report is followed until the first later row that names
    another manager (its ``censor_date`` moves there), so the arm always matches the manager in force.
    """
    h = history[["employee_id", "effective_date", "manager_id"]].dropna(subset=["employee_id", "effective_date"])
    h = h.assign(employee_id=h["employee_id"].astype(str), manager_id=h["manager_id"].astype("string"))
    h = h.sort_values(["employee_id", "effective_date"], kind="stable").reset_index(drop=True)
    same = h["employee_id"].eq(h["employee_id"].shift())
    changed = ~same | h["manager_id"].fillna("").ne(h["manager_id"].shift().fillna(""))
    # each row holds until the employee's next row; its manager holds until the next row naming another
    h["next_date"] = h["effective_date"].shift(-1).where(same.shift(-1, fill_value=False))
    change_date = h["effective_date"].where(changed)
    h["manager_until"] = change_date.shift(-1).where(same.shift(-1, fill_value=False))
    h["manager_until"] = h.groupby("employee_id")["manager_until"].bfill()
    cand = team.merge(h.dropna(subset=["manager_id"]), on="manager_id", how="inner")
    held = (cand["effective_date"] <= cand["index_date"]) & (
        cand["next_date"].isna() | (cand["next_date"] > cand["index_date"]))
    cand = cand[held]
    until = cand["manager_until"]
    cand = cand.assign(censor_date=until.where(until.notna() & (until < cand["censor_date"]), cand["censor_date"]))
    cand = cand.drop(columns=["effective_date", "next_date", "manager_until"])
    # the spell the report is in on the trial date
    sp = spells.drop(columns="manager_id").assign(employee_id=spells["employee_id"].astype(str))
    out = cand.merge(sp, on="employee_id", how="inner")
    term = out["termination_date"]
    return out[(out["hire_date"] <= out["index_date"]) & (term.isna() | (term > out["index_date"]))]


def team_followup(
    matched: pd.DataFrame, employees: pd.DataFrame, *, window_end, event_types=("voluntary",), history=None
) -> pd.DataFrame:
    """Return the reports of each matched manager, followed from the trial date (tenure scale).

    Parameters
    ----------
    matched : DataFrame
        Matched trial rows (``matched_set`` not missing) with ``trial,
        index_date, manager_id, treated, enrol_date``.
    employees : DataFrame
        Clean ``employees`` table.
    window_end : date
        End of the observation window (an exit on that day is an event).
    event_types : sequence of str, default ("voluntary",)
        Termination types that count as the event.
    history : DataFrame, optional
        The clean ``job_history``. With it, a manager's team on the trial date is
        the reports whose manager *in force* that day is the manager, and each
        report is followed only while that manager stays theirs (censored at the
        next manager change); without it, the spell's manager at hire holds.

    Returns
    -------
    DataFrame
        One row per report and matched manager: ``matched_set, trial,
        manager_id, treated, employee_id, hire_date, entry`` (tenure in days on the trial
        date), ``exit`` (tenure at exit, window end, or the control manager's
        own enrolment, whichever is first), ``event`` (1 for an exit of an
        event type by then) and, when ``matched`` has one, the manager's
        ``weight`` in the design (matching or inverse-probability weight).
    """
    window_end = pd.Timestamp(window_end)
    rows = matched.dropna(subset=["matched_set"]).assign(censor_date=lambda d: _censor_dates(d, window_end))
    spells = employees[["employee_id", "manager_id", "hire_date", "termination_date", "termination_type"]]
    carried = ["weight"] if "weight" in rows else []
    team = rows[["matched_set", "trial", "index_date", "manager_id", "treated", "censor_date", *carried]]
    if history is not None and len(history):
        team = _history_team(team, spells, history)
    else:
        team = team.merge(spells, on="manager_id", how="inner")
    term = team["termination_date"]
    team = team[(team["hire_date"] <= team["index_date"]) & (term.isna() | (term > team["index_date"]))]
    term = team["termination_date"]
    end = term.where(term.notna() & (term <= team["censor_date"]), team["censor_date"])
    event = term.notna() & (term <= team["censor_date"]) & team["termination_type"].isin(list(event_types))
    out = pd.DataFrame(
        {
            "matched_set": team["matched_set"].astype(str),
            "trial": team["trial"],
            "manager_id": team["manager_id"],
            "treated": team["treated"].astype(int),
            "employee_id": team["employee_id"],
            "hire_date": team["hire_date"],
            "entry": (team["index_date"] - team["hire_date"]).dt.days.astype(float),
            "exit": (end - team["hire_date"]).dt.days.astype(float),
            "event": event.astype(int),
        }
    )
    for column in carried:
        out[column] = team[column].to_numpy(float)
    return out[out["exit"] > out["entry"]].reset_index(drop=True)


def team_intervals(followup: pd.DataFrame, intervals: pd.DataFrame, person: pd.DataFrame) -> pd.DataFrame:
    """Cut the analysis ``intervals`` of each followed report to its follow-up after the trial date.

    Parameters
    ----------
    followup : DataFrame
        The output of :func:`team_followup`.
    intervals : DataFrame
        The analysis ``intervals`` table (``employee_id, spell, start, stop,
        event`` and time-varying covariates).
    person : DataFrame
        The analysis ``person`` table (``employee_id, spell, hire_date``), to
        find each report's spell.

    Returns
    -------
    DataFrame
        The interval rows inside ``(entry, exit]`` of each follow-up, with
        ``start``/``stop`` clipped to it, ``event`` 1 only on the row ending
        with the follow-up's event, and the follow-up's ``matched_set, trial,
        manager_id, treated`` (and ``weight`` when it has one) beside the
        interval covariates.
    """
    spells = person[["employee_id", "spell", "hire_date"]].astype({"employee_id": str})
    f = followup.astype({"employee_id": str}).merge(spells, on=["employee_id", "hire_date"], how="inner")
    f = f.rename(columns={"entry": "_entry", "exit": "_exit", "event": "_event", "manager_id": "_manager"})
    carried = ["weight"] if "weight" in f else []
    # only the followed spells' intervals, in their order (the inner merge keeps the left order): no copy of
    # the whole table
    pairs = f[["employee_id", "spell"]].drop_duplicates()
    followed = locate_pairs(intervals["employee_id"].astype(str), intervals["spell"], pairs["employee_id"],
                            pairs["spell"]) >= 0
    iv = intervals[followed].astype({"employee_id": str}).drop(columns=carried, errors="ignore").merge(
        f[["employee_id", "spell", "matched_set", "trial", "_manager", "treated", *carried, "_entry", "_exit",
           "_event"]],
        on=["employee_id", "spell"], how="inner",
    )
    iv = iv[(iv["stop"] > iv["_entry"]) & (iv["start"] < iv["_exit"])].copy()
    iv["start"] = np.maximum(iv["start"].to_numpy(float), iv["_entry"].to_numpy(float))
    iv["stop"] = np.minimum(iv["stop"].to_numpy(float), iv["_exit"].to_numpy(float))
    iv["event"] = ((iv["_event"] == 1) & (iv["stop"] == iv["_exit"]) & (iv["event"] == 1)).astype(int)
    iv = iv.drop(columns=["manager_id"], errors="ignore").rename(columns={"_manager": "manager_id"})
    return iv.drop(columns=["_entry", "_exit", "_event"]).reset_index(drop=True)


def _wave_dates(survey_panel: pd.DataFrame) -> pd.Series:
    """Each wave's median survey date, used to place waves relative to a trial date."""
    if "wave" in survey_panel:
        return survey_panel.groupby("wave")["survey_date"].median().sort_values()
    return survey_panel.groupby("survey_date")["survey_date"].first().sort_values()


def team_survey_panel(
    matched: pd.DataFrame, survey_panel: pd.DataFrame, *, outcome: str = "engagement", covariates=()
) -> pd.DataFrame:
    """Return the survey responses of each matched manager's team, placed relative to the trial date.

    Parameters
    ----------
    matched : DataFrame
        Matched trial rows with ``matched_set, trial, index_date, manager_id, treated, enrol_date``.
    survey_panel : DataFrame
        The analysis ``survey_panel`` (``employee_id, manager_id, survey_date, wave`` and the outcome).
    outcome : str, default "engagement"
        The scale score to analyse.
    covariates : sequence of str, default ()
        Further ``survey_panel`` columns to carry (covariates known on the survey date).

    Returns
    -------
    DataFrame
        One row per response and matched manager: ``matched_set, manager_id,
        treated, employee_id, survey_date, wave, rel_wave`` (waves after the
        trial date: 0 is the first wave whose median date is on or after it),
        ``post`` (answered on or after the trial date), ``treated_post``, the outcome, the
        panel's ``manager_program`` when present, and the trial row's ``weight``
        when ``matched`` has one (the design's weight of that manager in that set).
        A control team's responses stop at its manager's own enrolment.
    """
    check_columns(survey_panel, ["employee_id", "manager_id", "survey_date", outcome], what="survey_panel")
    panel = survey_panel.dropna(subset=[outcome, "manager_id"])
    if "wave" not in panel:
        panel = panel.assign(wave=panel["survey_date"])
    waves = _wave_dates(panel)
    order = pd.Series(np.arange(len(waves)), index=waves.index)
    rows = matched.dropna(subset=["matched_set"]).assign(
        censor_date=lambda d: _censor_dates(d, pd.Timestamp.max.normalize())
    )
    first_post = np.searchsorted(waves.to_numpy(), rows["index_date"].to_numpy(), side="left")
    rows = rows.assign(first_post=first_post)
    carried = ["matched_set", "manager_id", "treated", "index_date", "censor_date", "first_post"]
    team = rows[carried + (["weight"] if "weight" in rows else [])].merge(
        panel[["employee_id", "manager_id", "survey_date", "wave", outcome]
              + [c for c in ("manager_program", *covariates) if c in panel and c != outcome]],
        on="manager_id", how="inner",
    )
    team = team[team["survey_date"] < team["censor_date"]]
    rel = team["wave"].map(order).to_numpy(int) - team["first_post"].to_numpy(int)
    out = team.drop(columns=["censor_date", "first_post"]).assign(rel_wave=rel)
    out["post"] = (out["survey_date"] >= out["index_date"]).astype(int)
    out["treated_post"] = out["treated"] * out["post"]
    out["matched_set"] = out["matched_set"].astype(str)
    return out.reset_index(drop=True)


@dataclass(frozen=True, repr=False)
class _FEFit:
    """Coefficients of an OLS fit with absorbed fixed effects and cluster-robust (CR1) errors."""

    params: pd.Series
    bse: pd.Series
    cov: pd.DataFrame
    nobs: int
    n_clusters: int
    n_absorbed: int
    #: The absorbed (FWL) outcome and design, cluster codes (one array per dimension), weights and fixed-effect
    #: codes the fit used: what the bootstrap resamples.
    design: tuple = field(default=(), compare=False)

    def tidy(self, terms, *, alpha: float) -> pd.DataFrame:
        """The tidy rows of ``terms`` (normal reference, as statsmodels' cluster covariance)."""
        terms = list(terms)
        return tidy_table(terms, self.params[terms], self.bse[terms], alpha=alpha)

    def wild_bootstrap(self, term: str, *, alpha: float, n_boot: int = _WILD_DRAWS, weight_type: str = _WILD_TYPE,
                       rng=_WILD_SEED) -> WildBootstrap:
        """The wild cluster restricted bootstrap of ``term`` = 0 on the fit's own absorbed data and weights.

        The weights are drawn per cluster of the *last* clustering dimension
        (one dimension: its clusters; the engagement model: the matched set),
        and every draw's t uses the fit's own (multiway) CR1 variance, as
        MacKinnon, Nielsen and Webb (2021) do for multiway clustering.
        """
        yd, Xd, clusters, weights, codes = self.design
        return wild_cluster_bootstrap(yd, Xd, clusters[-1], column=list(self.params.index).index(term),
                                      weights=weights, fixed=codes, n_params=Xd.shape[1] + self.n_absorbed,
                                      n_boot=n_boot, weight_type=weight_type, rng=rng, alpha=alpha,
                                      variance_clusters=clusters if len(clusters) > 1 else None)

    def tidy_wild(self, term: str, *, alpha: float, **kwargs) -> tuple[pd.DataFrame, WildBootstrap]:
        """The tidy row of ``term`` with its p-value and interval from :meth:`wild_bootstrap` (CR1 std_error and t)."""
        boot = self.wild_bootstrap(term, alpha=alpha, **kwargs)
        row = self.tidy([term], alpha=alpha).assign(p_value=boot.p_value, conf_low=boot.conf_low,
                                                    conf_high=boot.conf_high)
        return row, boot


def _absorbed_codes(fixed) -> tuple[list[np.ndarray], int]:
    """Codes of each set of nested fixed effects, and how many dummies they absorb.

    ``fixed`` is a list of ``(block, level)`` pairs of Series, one fixed
    effect per ``block|level``. Every set after the first loses one dummy
    per block to collinearity with the first.
    """
    codes, n_levels = [], 0
    for block, level in fixed:
        label = block.reset_index(drop=True).astype(str) + "|" + level.reset_index(drop=True).astype(str)
        c = pd.factorize(label)[0]
        codes.append(c)
        n_levels += c.max() + 1
    n_blocks = pd.Series(fixed[0][0]).nunique()
    return codes, int(n_levels - (len(fixed) - 1) * n_blocks)


def _ols_cluster(y, X: pd.DataFrame, fixed, groups, *, alpha: float, weights=None) -> _FEFit:
    """OLS (WLS with ``weights``) with nested fixed effects absorbed and cluster-robust (CR1) standard errors.

    ``fixed`` is a list of ``(block, level)`` pairs of Series, one fixed
    effect per ``block|level`` (e.g. team within matched set, wave within
    matched set). The fit equals OLS with those dummies (Frisch-Waugh-Lovell),
    and the standard errors equal statsmodels' ``cov_type="cluster"`` on the
    dummy regression: ``G/(G-1) (N-1)/(N-K)`` with ``K`` counting the dummies.
    Without fixed effects an intercept (``const``) is added. With ``weights``
    (positive case weights) the fixed effects are absorbed by weighted means and
    every row is multiplied by ``sqrt(weight)``: R's ``lm(weights = w)`` with the
    dummies and ``vcovCL(type = "HC1")``. ``groups`` may be a list of Series
    (multiway clustering, as ``vcovCL(cluster = ~ a + b)``).
    """
    X = X.reset_index(drop=True).astype(float)
    y_name = str(getattr(y, "name", None) or "outcome")
    check_finite(pd.concat([pd.Series(np.asarray(y, float), name=y_name), X], axis=1), [y_name, *X.columns])
    yv = np.asarray(y, float)
    w = None if weights is None else np.asarray(weights, float)
    if w is not None and not (np.all(np.isfinite(w)) and np.all(w > 0)):
        bad = int(np.flatnonzero(~(np.isfinite(w) & (w > 0)))[0])
        raise ModelError(f"The outcome model's weights must be positive and finite, but row {bad} has "
                         f"{float(w[bad]):g}.")
    ways = list(groups) if isinstance(groups, (list, tuple)) else [groups]
    clusters = [cluster_codes(pd.Series(g).reset_index(drop=True)) for g in ways]
    check_clusters(clusters[0], getattr(ways[0], "name", None) or "cluster")  # its caveat: few clusters
    for codes_of_way, way in zip(clusters[1:], ways[1:]):  # further ways: the few-clusters caveat is the first's
        if codes_of_way.max() < 1:
            raise ModelError(f"Cluster-robust standard errors need at least 2 clusters in every dimension, but "
                             f"`{getattr(way, 'name', None) or 'cluster'}` has one in the rows used.")
    if fixed:
        codes, n_absorbed = _absorbed_codes(fixed)
        Z = demean(np.column_stack([yv, X.to_numpy()]), codes, weights=w)
        yd, Xd = Z[:, 0], Z[:, 1:]
    else:
        X = pd.concat([pd.DataFrame({"const": np.ones(len(X))}), X], axis=1)
        n_absorbed, yd, Xd = 0, yv, X.to_numpy()
    design = (yd, Xd, clusters, w, codes if fixed else None)
    if w is not None:
        yd, Xd = yd * np.sqrt(w), Xd * np.sqrt(w)[:, None]
    bread = np.linalg.inv(Xd.T @ Xd)
    beta = bread @ Xd.T @ yd
    resid = yd - Xd @ beta
    cov = cluster_robust_cov(Xd * resid[:, None], bread, clusters, n_params=Xd.shape[1] + n_absorbed)
    names = list(X.columns)
    return _FEFit(
        params=pd.Series(beta, index=names),
        bse=pd.Series(np.sqrt(np.diag(cov)), index=names),
        cov=pd.DataFrame(cov, index=names, columns=names),
        nobs=len(yd),
        n_clusters=int(clusters[0].max()) + 1,
        n_absorbed=n_absorbed,
        design=design,
    )


def event_study(
    team_panel: pd.DataFrame,
    *,
    outcome: str = "engagement",
    covariates=(),
    window: int = 4,
    alpha: float = 0.05,
    min_group_size: int | None = None,
) -> pd.DataFrame:
    """Estimate the treated-minus-control difference in team outcome by survey wave around the trial date.

    Parameters
    ----------
    team_panel : DataFrame
        The output of :func:`team_survey_panel` (``matched_set, manager_id,
        employee_id, treated, wave, rel_wave`` and the outcome).
    outcome : str, default "engagement"
        The outcome column.
    covariates : sequence of str, default ()
        Time-varying columns added to the regression (complete, no missing values).
    window : int, default 4
        Waves shown on each side; earlier and later waves are binned into the end points.
    alpha : float, default 0.05
        Confidence intervals are at level ``1 - alpha``.
    min_group_size : int, optional
        Pass the study's ``min_group_size`` when the table (or its plot) is
        meant for leadership: a relative wave whose treated respondents are
        fewer than ``min_group_size`` distinct people then has its ``n``,
        ``n_people`` and its estimate, standard error and interval set to
        missing, and is flagged in ``suppressed`` / ``suppression``
        (:func:`size_gate`, people not responses; no complementary suppression,
        since one person answers in several waves and no total over waves is
        shown). The reference wave keeps its fixed 0 but its counts are hidden
        too. ``None`` (the default, for analysts) gates nothing.

    Returns
    -------
    DataFrame
        One row per relative wave from ``-window`` to ``window``: ``rel_wave,
        estimate, std_error, conf_low, conf_high, n`` (responses of treated
        teams), ``n_people`` (distinct treated respondents, counted by
        :func:`group_sizes`; the gate uses this), and with ``min_group_size`` also ``suppressed`` and
        ``suppression``. Wave ``-1`` (the last survey before the start) is the
        reference, fixed at 0. Pre-period estimates near 0 support parallel
        trends. The gate changes no estimate of the waves it shows.

    Notes
    -----
    OLS of the outcome on treated x relative-wave indicators with fixed
    effects for person (within matched set) and for wave (within matched set),
    standard errors clustered by manager: a stacked event study (Cengiz et al.
    2019), as R's ``lm(y ~ rel_k:treated + factor(set:person) + factor(set:wave))``
    with ``sandwich::vcovCL(cluster = ~manager_id, type = "HC1")``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> res = ar.estimate_program_effect(clean, outcome="engagement", warn=False)
    >>> ar.event_study(res.extras["outcome_data"], window=2)["rel_wave"].tolist()
    [-2, -1, 0, 1, 2]
    """
    check_columns(team_panel, ["matched_set", "manager_id", "employee_id", "treated", "wave", "rel_wave", outcome],
                  what="team panel")
    data = team_panel.dropna(subset=[outcome]).reset_index(drop=True)
    rel = data["rel_wave"].clip(-window, window)
    levels = [k for k in range(-window, window + 1) if k != -1]
    X = pd.DataFrame({f"rel_{k}": ((rel == k) & (data["treated"] == 1)).astype(float) for k in levels})
    present = [c for c in X.columns if X[c].sum() > 0]
    X = pd.concat([X[present], data[list(covariates)].astype(float)], axis=1)
    fit = _ols_cluster(
        data[outcome],
        X,
        [(data["matched_set"], data["employee_id"]), (data["matched_set"], data["wave"])],
        data["manager_id"],
        alpha=alpha,
    )
    tidy = fit.tidy(present, alpha=alpha).assign(rel_wave=[int(c.split("_")[1]) for c in present])
    treated = data.loc[data["treated"] == 1, ["employee_id"]].assign(rel_wave=rel[data["treated"] == 1])
    counts = group_sizes(treated, "rel_wave", person="employee_id").set_index("rel_wave")
    table = pd.DataFrame({"rel_wave": range(-window, window + 1)}).merge(
        tidy[["rel_wave", "estimate", "std_error", "conf_low", "conf_high"]], on="rel_wave", how="left"
    )
    ref = table["rel_wave"] == -1
    table.loc[ref, ["estimate", "std_error", "conf_low", "conf_high"]] = 0.0
    table["n"] = table["rel_wave"].map(counts["n_rows"]).fillna(0).astype(int)
    table["n_people"] = table["rel_wave"].map(counts["n"]).fillna(0).astype(int)
    if min_group_size is None:
        return table
    # the one gate (people, not responses); a wave with no treated respondent has size 0 and is hidden too
    sizes = size_gate(treated, "rel_wave", min_group_size=min_group_size, person="employee_id", total=False)
    hidden = ~table["rel_wave"].isin(sizes.loc[~sizes["suppressed"], "rel_wave"]).to_numpy()
    for column in ["n", "n_people"]:
        table[column] = table[column].astype("Int64").mask(hidden)
    table.loc[hidden & ~ref.to_numpy(), ["estimate", "std_error", "conf_low", "conf_high"]] = np.nan
    table["suppressed"] = hidden
    table["suppression"] = pd.array(np.where(hidden, "small group", None), dtype="string")
    return table


def plot_event_study(table: pd.DataFrame, *, ax=None, **kwargs):
    """Draw an event-study table: estimate and interval by wave relative to the start date.

    Parameters
    ----------
    table : DataFrame
        The output of :func:`event_study` (``rel_wave, estimate, conf_low, conf_high``).
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.errorbar`.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes; ``ax.lines[0]`` holds ``(rel_wave, estimate)`` for the waves with an estimate.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> t = pd.DataFrame({"rel_wave": [-2, -1, 0], "estimate": [0.0, 0.0, 0.2],
    ...                   "conf_low": [-0.1, 0.0, 0.1], "conf_high": [0.1, 0.0, 0.3]})
    >>> ax = ar.plot_event_study(t)
    """
    ax = axes_for(ax)
    t = table.dropna(subset=["estimate"])
    x, est = t["rel_wave"].to_numpy(float), t["estimate"].to_numpy(float)
    kwargs.setdefault("fmt", "o-")
    kwargs.setdefault("color", "black")
    kwargs.setdefault("capsize", 3)
    ax.errorbar(x, est, yerr=[est - t["conf_low"].to_numpy(float), t["conf_high"].to_numpy(float) - est], **kwargs)
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.axvline(-0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("Survey wave relative to the manager's programme start (0 = first wave after)")
    ax.set_ylabel("Treated minus matched control teams")
    return ax


# --------------------------------------------------------------------------------------------
# The estimate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ProgramEffectResult(ModelResult):
    """The effect of a programme: adjusted (trial emulation + matching or weighting) and naive estimates.

    ``tidy()`` has one row per ``method`` (``adjusted``, then ``naive``); for
    retention ``exp_estimate`` is the hazard ratio. ``extras`` holds
    ``trials`` (every manager in every emulated trial with propensity,
    matched set and weight), ``balance`` (:func:`balance_table`),
    ``outcome_data`` (the rows the outcome model used), ``e_value``
    (:func:`e_value` of the adjusted estimate), ``propensity_model`` (the
    tidy enrolment model, :func:`fit_propensity`) and, for engagement,
    ``event_study``.
    """

    def _display_table(self) -> pd.DataFrame:
        """The base class's columns, each row named by its ``method`` (both rows share one term)."""
        shown = super()._display_table()
        return shown.assign(term=self.table["method"]).rename(columns={"term": "method"})

    def plot(self, *, xlabel: str | None = None, labels: dict | None = None, ax=None, **kwargs):
        """Draw the naive and adjusted estimates with their intervals and return the Axes.

        ``xlabel`` overrides the axis label; ``labels`` maps ``"naive"`` and
        ``"adjusted"`` to the row names shown.
        """
        table = self.table.assign(term=self.table["method"])
        ax = plot_forest(table, ratio="exp_estimate" in table, terms=["naive", "adjusted"], ax=ax, **kwargs)
        if labels:
            ax.set_yticklabels([labels.get(m, m) for m in ("naive", "adjusted")])
        if "exp_estimate" in table:
            ax.xaxis.set_major_formatter(FormatStrFormatter("%.2g"))
            ax.xaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
        ax.set_ylim(-0.5, 1.5)
        ax.set_xlabel(xlabel or (
            f"Hazard ratio of a {self.outcome} ({self.conf_label}, log scale)"
            if "exp_estimate" in table
            else f"Difference in team {self.outcome} (scale points, {self.conf_label})"
        ))
        return ax


# ---------------------------------------------------------------- stage 1: the emulated trials


def _observation_window(config) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(config.window.start), pd.Timestamp(config.window.end)


def _ratings_known(reviews: pd.DataFrame, config) -> pd.DataFrame:
    """Review ratings with the date from which each is known: the cycle's end + 1 day."""
    ends = {c.name: pd.Timestamp(c.end) + pd.Timedelta(days=1) for c in config.cycles}
    out = reviews[["employee_id", "cycle", "rating"]].copy()
    out["known_date"] = out["cycle"].astype(str).map(ends)
    out["rating"] = pd.to_numeric(out["rating"], errors="coerce").astype(float)
    return out.dropna(subset=["known_date"])


def _team_measures(analysis, config) -> pd.DataFrame:
    """Report-level measures known by date, long form: survey engagement and cascade alignment."""
    frames = []
    panel = getattr(analysis, "survey_panel", None)
    if panel is not None and "engagement" in panel:
        frames.append(
            pd.DataFrame(
                {"employee_id": panel["employee_id"], "date": panel["survey_date"], "measure": "engagement",
                 "value": panel["engagement"].astype(float)}
            )
        )
    cycles = getattr(analysis, "cycles", None)
    column = next((c for c in ("alignment_cascade", "alignment") if cycles is not None and c in cycles), None)
    if column is not None:
        starts = {c.name: pd.Timestamp(c.start) for c in config.cycles}
        frames.append(
            pd.DataFrame(
                {"employee_id": cycles["employee_id"], "date": cycles["cycle"].astype(str).map(starts),
                 "measure": "alignment", "value": pd.to_numeric(cycles[column], errors="coerce").astype(float)}
            ).dropna(subset=["date"])
        )
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def _emulate_trials(clean: CleanStudy, program: str) -> pd.DataFrame:
    """Stage 1: one trial per enrolment date, with what was known on it (ratings, team measures)."""
    tables, config = clean.tables, clean.config
    for name in ("employees", "programs"):
        if name not in tables:
            raise ModelError(f"The study has no {name!r} table; a programme effect needs employees and programs.")
    ratings = _ratings_known(tables["reviews"], config) if "reviews" in tables else None
    return program_trials(
        tables["employees"], tables["programs"], program=program, ratings=ratings,
        team_measures=_team_measures(clean.analysis, config), window=_observation_window(config),
    )


# ---------------------------------------------------------------- stage 2: the enrolment model


def _usable_propensity_formula(formula: str, trials: pd.DataFrame) -> str:
    """The enrolment model without the terms these trials cannot carry.

    A measure the study lacks (no reviews: no ``rating``; no surveys or goals:
    no ``team_engagement``/``team_alignment``) and a single department are left out.
    """
    unusable = {c for c in _OPTIONAL_TRIAL_COLUMNS if c not in trials}
    if trials["department"].nunique() < 2:
        unusable.add("C(department)")
    return " + ".join(t for t in formula_terms(formula) if t not in unusable)


def _with_caveats(stage, *args, **kwargs):
    """Run a fitting stage; return its value and its StatisticalWarnings as text (other warnings pass on)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        value = stage(*args, **kwargs)
    for w in caught:
        if not issubclass(w.category, StatisticalWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return value, [str(w.message) for w in caught if issubclass(w.category, StatisticalWarning)]


# ---------------------------------------------------------------- stage 3: matching and balance


@dataclass(frozen=True)
class _Matching:
    """Matched (or weighted) trials, the balance they reach, and what the design cannot promise.

    ``trials["weight"]`` is each trial row's weight in the outcome models
    under either design (0: not used).
    """

    trials: pd.DataFrame
    balance: pd.DataFrame
    caveats: tuple = ()
    design: str = "matched"

    @property
    def n_enrolled(self) -> int:
        return int(self.trials["treated"].sum())

    @property
    def n_treated(self) -> int:
        return int(((self.trials["treated"] == 1) & (self.trials["weight"] > 0)).sum())

    @property
    def controls(self) -> pd.DataFrame:
        return self.trials[(self.trials["treated"] == 0) & (self.trials["weight"] > 0)]

    @property
    def max_abs_smd_after(self) -> float:
        return float(self.balance["smd_after"].abs().max())


def _match_and_balance(scored: pd.DataFrame, *, ratio, caliper, exact, mahalanobis, covariates) -> _Matching:
    """Stage 3: match within trials on the scores, check balance, and name what the design cannot promise."""
    trials = scored.dropna(subset=["logit_propensity"]).reset_index(drop=True)
    exact = [c for c in (exact or ()) if c in trials and trials[c].nunique() > 1]
    mahalanobis = [c for c in (mahalanobis or ()) if c in trials and trials[c].nunique() > 1]
    matched = match_trials(trials, ratio=ratio, caliper=caliper, exact=exact, mahalanobis=mahalanobis)
    if covariates is None:
        covariates = [c for c in PROGRAM_COVARIATES if c in matched and matched[c].nunique() > 1]
    matching = _Matching(matched, balance_table(matched, "treated", covariates, weights="weight"))
    if matching.n_treated == 0:
        raise ModelError("No enrolling manager found a control within the caliper; widen `caliper`.")
    return replace(matching, caveats=_design_caveats(matching))


def _ipw_and_balance(scored: pd.DataFrame, *, covariates) -> _Matching:
    """Stage 3 (``design="ipw"``): weight every trial's controls by their odds of enrolling, check balance."""
    trials = scored.dropna(subset=["logit_propensity"]).reset_index(drop=True)
    weighted = _att_weights(trials)
    if covariates is None:
        covariates = [c for c in PROGRAM_COVARIATES if c in weighted and weighted[c].nunique() > 1]
    matching = _Matching(weighted, balance_table(weighted, "treated", covariates, weights="weight"), design="ipw")
    if matching.n_treated == 0:
        raise ModelError("No trial has both an enrolling manager and a not-yet-enrolled control; nothing to compare.")
    return replace(matching, caveats=_design_caveats(matching))


def _att_weights(trials: pd.DataFrame) -> pd.DataFrame:
    """ATT weights within each trial: 1 for the enrolling managers, the odds ``p / (1 - p)`` for controls.

    The controls' odds are rescaled so that in each trial they sum to the
    number of enrolling managers (as a matched set's ``1 / k`` weights sum to
    1 per treated manager); a trial without a control gives its enrolling
    managers weight 0 (nothing to compare them with). ``matched_set`` is the
    trial (the set within which treated and controls are compared), missing
    for a row of weight 0, as for an unmatched row of :func:`match_trials`.
    """
    out = trials.copy()
    treated = out["treated"].to_numpy(int) == 1
    p = np.clip(out["propensity"].to_numpy(float), 0.0, 1.0 - 1e-12)
    odds = np.where(treated, 0.0, p / (1.0 - p))
    by_trial = out.groupby("trial", sort=False)
    control_odds = pd.Series(odds, index=out.index).groupby(out["trial"]).transform("sum").to_numpy(float)
    n_treated = by_trial["treated"].transform("sum").to_numpy(float)
    has_controls = control_odds > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        control_weight = np.where(has_controls, odds / control_odds * n_treated, 0.0)
    out["weight"] = np.where(treated, has_controls.astype(float), control_weight)
    out["matched_set"] = pd.array(out["trial"].astype(str).where(out["weight"] > 0), dtype="string")
    return out


def _design_caveats(matching: _Matching) -> tuple:
    """Imbalance after matching or weighting, poor overlap, and too few enrolling managers for clustered intervals."""
    caveats = []
    enrolled, treated, worst = matching.n_enrolled, matching.n_treated, matching.max_abs_smd_after
    ipw = matching.design == "ipw"
    if worst > _SMD_THRESHOLD:
        bad = matching.balance.loc[matching.balance["smd_after"].abs() > _SMD_THRESHOLD, "covariate"].tolist()
        caveats.append(
            f"Balance fails after {'weighting' if ipw else 'matching'}: |SMD| > {_SMD_THRESHOLD} for {bad} "
            f"(largest {worst:.2f}). "
            "Add these covariates (or interactions) to the propensity model, or read the estimate with caution."
        )
    if enrolled - treated > 0.1 * enrolled:
        caveats.append(
            f"Poor overlap: {enrolled - treated} of {enrolled} enrolling managers have no control "
            + ("in their trial" if ipw else "within the caliper")
            + " and were trimmed; the estimate describes the managers who could be "
            + ("compared." if ipw else "matched.")
        )
    if ipw:
        ess = effective_sample_size(matching.controls["weight"])
        if ess < treated:
            caveats.append(
                f"Extreme weights: the control teams' weights have an effective sample size of {ess:.0f} managers "
                f"for {treated} enrolling managers; a few controls drive the estimate (compare design='matched')."
            )
    if treated < _FEW_TREATED:
        caveats.append(
            f"Few enrolling managers ({treated} matched): cluster-robust intervals are too narrow when few "
            "clusters are treated (in simulation, 83% instead of 95% coverage for engagement with about 30); "
            "read the interval as a lower bound on the uncertainty."
        )
    return tuple(caveats)


# ---------------------------------------------------------------- stage 4: the effect on the outcome


@dataclass(frozen=True)
class _OutcomeEffect:
    """The adjusted and naive rows of one outcome, the adjusted fit and what it used."""

    table: pd.DataFrame
    fit: object
    data: pd.DataFrame
    e_value: pd.DataFrame
    n: int
    events: float
    cov_type: str
    extras: dict
    #: How the adjusted row's p-value and interval were made: "cluster" (CR1) or the bootstrap's method.
    inference: str = "cluster"


def _cox_row(data, formula, *, start, stop, alpha, term, method, weights=None):
    """The tidy row of ``term`` in a Cox model clustered by manager, labelled with ``method``."""
    res = fit_cox(data, formula, start=start, stop=stop, event="event", cluster="manager_id", alpha=alpha,
                  weights=weights)
    row = res.tidy()
    return row[row["term"] == term].assign(method=method), res


def _fill_adjusters(data: pd.DataFrame, adjust) -> tuple[pd.DataFrame, list[str]]:
    """Fill missing adjustment covariates with their mean (plus an indicator when >= 5% miss); return the terms."""
    data = data.copy()
    terms = []
    for name in adjust:
        if name not in data:
            continue
        x = pd.to_numeric(data[name], errors="coerce").astype(float)
        if x.notna().sum() == 0 or x.nunique() < 2:
            continue
        missing = x.isna()
        data[name] = x.fillna(x.mean())
        terms.append(name)
        if 0.05 <= missing.mean() < 1:  # rarer gaps are just filled: an indicator could separate
            data[f"{name}_missing"] = missing.astype(float)
            terms.append(f"{name}_missing")
    return data, terms


def _retention_effect(matched: pd.DataFrame, clean: CleanStudy, *, adjust, alpha) -> _OutcomeEffect:
    """Stage 4, retention: Cox model of the reports' exits after the trial date; naive: ever-exposed teams."""
    analysis = clean.analysis
    event_types = tuple(getattr(clean.config, "event_types", ["voluntary"]))
    followup = team_followup(matched, clean.tables["employees"], window_end=_observation_window(clean.config)[1],
                             history=clean.tables.get("job_history"),
                             event_types=event_types)
    data, terms = _fill_adjusters(team_intervals(followup, analysis.intervals, analysis.person), adjust)
    # the design's weights (matching: 1 / controls per set; ipw: odds of enrolling) enter the Cox model
    adjusted, fit = _cox_row(data, " + ".join(["treated", *terms]), start="start", stop="stop", alpha=alpha,
                             term="treated", method="adjusted", weights="weight")
    naive, _ = _cox_row(analysis.person, "manager_ever_program", start="entry", stop="exit", alpha=alpha,
                        term="manager_ever_program", method="naive")
    table = pd.concat([adjusted, naive], ignore_index=True)
    table = table[TIDY_COLUMNS + ["exp_estimate", "exp_conf_low", "exp_conf_high", "method"]]
    row = table.iloc[0]
    rare = followup["event"].mean() < 0.15
    ev = e_value(row["exp_estimate"], row["exp_conf_low"], row["exp_conf_high"], measure="HR", rare=bool(rare))
    return _OutcomeEffect(table, fit, data, ev, n=len(followup), events=int(data["event"].sum()),
                          cov_type="cluster: manager_id", extras={})


def _engagement_inference(fit: _FEFit, data: pd.DataFrame, inference: str, alpha: float):
    """The adjusted row: two-way CR1, or its p-value and interval from the wild bootstrap (forced, or few treated
    managers), whose weights are drawn by matched set and whose t is the two-way one."""
    treated = int(data.loc[data["treated"] == 1, "manager_id"].nunique())
    if inference == "cluster" or (inference == "auto" and treated >= WILD_BOOTSTRAP_BELOW):
        return fit.tidy(["treated_post"], alpha=alpha), _ENGAGEMENT_CR1
    row, boot = fit.tidy_wild("treated_post", alpha=alpha)
    method = f"{boot.method}, weights by matched set, two-way t"
    if inference == "auto":
        warnings.warn(
            f"Engagement p-value and interval by {method} because only {treated} managers were treated "
            f"(fewer than {WILD_BOOTSTRAP_BELOW}): cluster-robust intervals are too narrow with few treated "
            "clusters; the standard error shown is still the two-way cluster-robust one.",
            StatisticalWarning, stacklevel=3,
        )
    return row, method


def _engagement_effect(matched: pd.DataFrame, clean: CleanStudy, program: str, *, outcome, adjust, event_window,
                       alpha, inference="auto") -> _OutcomeEffect:
    """Stage 4, engagement: stacked difference in differences of the teams' scores; naive: ever-enrolled managers.

    The outcome model is weighted by the design's ``weight`` of each trial row
    (matching: 1 per treated manager, ``1/k`` per control of a set with ``k``).
    """
    panel = getattr(clean.analysis, "survey_panel", None)
    if panel is None or outcome not in panel:
        raise ModelError("The study has no engagement scores in `survey_panel`; add a surveys table.")
    wanted = [c for c in adjust if c != outcome]
    data = team_survey_panel(matched, panel, outcome=outcome, covariates=wanted)
    if data["treated_post"].sum() == 0:
        raise ModelError("No survey response of a treated team after its manager's start; cannot estimate.")
    data, terms = _fill_adjusters(data, wanted)
    fit = _ols_cluster(
        data[outcome], data[["treated_post", *terms]],
        [(data["matched_set"], data["employee_id"]), (data["matched_set"], data["wave"])],
        # two-way: a manager's team recurs across trials, and matching ties each set's teams together
        [data["manager_id"], data["matched_set"]], alpha=alpha, weights=data["weight"] if "weight" in data else None,
    )
    adjusted, method = _engagement_inference(fit, data, inference, alpha)
    raw = panel.dropna(subset=[outcome, "manager_id"])
    enrolled_ids = _first_enrolment(clean.tables["programs"], program).index
    raw = raw.assign(ever_enrolled=raw["manager_id"].isin(enrolled_ids).astype(float))
    naive_fit = _ols_cluster(raw[outcome], raw[["ever_enrolled"]], [], raw["manager_id"], alpha=alpha)
    table = pd.concat([adjusted.assign(method="adjusted"),
                       naive_fit.tidy(["ever_enrolled"], alpha=alpha).assign(method="naive")], ignore_index=True)
    sd = float(raw[outcome].std(ddof=1))
    row = table.iloc[0]
    ev = e_value(row["estimate"] / sd, row["conf_low"] / sd, row["conf_high"] / sd, measure="SMD")
    # the event study is plotted in the reports: waves with too few treated people show no estimate
    study = event_study(data, outcome=outcome, covariates=terms, window=event_window, alpha=alpha,
                        min_group_size=getattr(clean.config, "min_group_size", None))
    return _OutcomeEffect(table, fit, data, ev, n=len(data), events=np.nan,
                          cov_type="cluster: manager_id and matched set (two-way); fixed effects: person x set, "
                                   "wave x set",
                          extras={"event_study": study}, inference=method)


# ---------------------------------------------------------------- stage 5: the summary


def _program_summary(program, outcome, matching: _Matching, effect: _OutcomeEffect, *, caliper, ratio,
                     caveats) -> pd.DataFrame:
    """Stage 5: the one-row ``glance()`` of the design, the outcome fit and the caveats."""
    controls = matching.controls
    matched = matching.design == "matched"
    return pd.DataFrame(
        [
            dict(
                program=program,
                outcome=outcome,
                design=matching.design,
                n_trials=int(matching.trials["trial"].nunique()),
                n_enrolled=matching.n_enrolled,
                n_treated=matching.n_treated,
                n_unmatched=matching.n_enrolled - matching.n_treated,
                n_controls=int(controls["manager_id"].nunique()),
                n_control_rows=len(controls),
                ess_controls=effective_sample_size(controls["weight"]),
                max_abs_smd_before=float(matching.balance["smd_before"].abs().max()),
                max_abs_smd_after=matching.max_abs_smd_after,
                caliper=caliper if matched else np.nan,
                ratio=ratio if matched else np.nan,
                n=effect.n,
                events=effect.events,
                cov_type=effect.cov_type,
                inference=effect.inference,
                e_value=float(effect.e_value["e_value"].iloc[0]),
                e_value_ci=float(effect.e_value["e_value_ci"].iloc[0]),
                caveats=" ".join(caveats) if caveats else "none",
            )
        ]
    )


def _program_result(program, outcome, propensity: PropensityResult, matching: _Matching, effect: _OutcomeEffect,
                    *, caliper, ratio, caveats, alpha) -> ProgramEffectResult:
    term = "manager_program" if program == "leadership_development" else f"manager_{program}"
    extras = dict(trials=matching.trials, balance=matching.balance, propensity_model=propensity.table,
                  **effect.extras, outcome_data=effect.data, e_value=effect.e_value)
    retention = outcome == "retention"
    return ProgramEffectResult(
        name=f"{program}: {outcome}", table=effect.table.assign(term=term, outcome=outcome),
        stats=_program_summary(program, outcome, matching, effect, caliper=caliper, ratio=ratio, caveats=caveats),
        # the retention analysis models the hazard of a voluntary exit: that is the outcome a sentence names
        model=effect.fit, extras=extras, caveats=caveats, alpha=alpha,
        outcome="voluntary exit" if retention else outcome, scale="ratio" if retention else "difference", measure="hazard ratio" if retention else "difference",
        time_unit="days" if retention else None,
    )


def estimate_program_effect(
    clean: CleanStudy,
    program: str = "leadership_development",
    *,
    outcome: str = "retention",
    design: str = "matched",
    propensity_formula: str = PROPENSITY_FORMULA,
    covariates=None,
    ratio: int = 3,
    caliper: float = 0.2,
    exact=None,
    mahalanobis=("rating", "team_size", "job_level", "tenure_years", "team_engagement", "team_alignment"),
    adjust=("alignment_cascade", "engagement", "manager_rating"),
    event_window: int = 4,
    inference: str = "auto",
    alpha: float = 0.05,
    warn: bool = True,
) -> ProgramEffectResult:
    """Estimate a leadership programme's effect on the teams of the managers who took it.

    Enrolment is compared by date, never by "ever": every date on which a
    manager starts the programme opens an emulated trial in which the
    enrolling manager is matched, on a propensity score built from what was
    known that day, to managers not yet enrolled. Their teams are then
    followed forward (retention) or compared before and after (engagement).
    The naive comparison, teams of managers who ever took the programme
    against the rest, is reported beside it so the size of the bias is visible.

    Parameters
    ----------
    clean : CleanStudy
        A cleaned study (``ar.clean_study(...)`` or ``ar.open_clean(...)``):
        its clean tables, configuration and analysis tables are all used.
    program : str, default "leadership_development"
        The programme, as named in the ``programs`` table.
    outcome : {"retention", "engagement"}, default "retention"
        ``retention``: Cox model of the reports' voluntary exits after the trial
        date, stratified by matched set. ``engagement``: difference in
        differences of the reports' engagement across survey waves.
    design : {"matched", "ipw"}, default "matched"
        How the enrolment model makes the groups comparable. ``matched``:
        each enrolling manager is matched to up to ``ratio`` controls of its
        trial (weight 1 for the treated manager, ``1 / controls`` for each
        of its controls). ``ipw``: every not-yet-enrolled manager of a trial
        is a control, weighted by its odds of enrolling ``p / (1 - p)``
        (ATT weights), rescaled so a trial's control weights sum to its
        number of enrolling managers; no trimming (see Notes). Either way the
        weights are the trial table's ``weight`` column, balance is reported
        with them, the retention Cox model uses them as case weights and the
        engagement model as least-squares weights.
    propensity_formula : str, default PROPENSITY_FORMULA
        Right-hand side of the enrolment model.
    covariates : list of str, optional
        Covariates whose balance is checked; ``PROGRAM_COVARIATES`` by default.
    ratio : int, default 3
        Controls matched to each enrolling manager (``design="matched"``).
    caliper : float, default 0.2
        Matching caliper in SDs of the logit propensity (``design="matched"``).
    exact : sequence of str, optional
        Trial columns a control must share with its enrolling manager
        (e.g. ``("department",)``).
    mahalanobis : sequence of str, default: the numeric balance covariates
        Among controls inside the caliper, match on the Mahalanobis distance
        of these trial columns; ``None`` matches on the propensity score alone.
    adjust : sequence of str, default ("alignment_cascade", "engagement", "manager_rating")
        Time-varying covariates added to the outcome model, from ``intervals``
        (retention) or ``survey_panel`` (engagement; the outcome itself is
        skipped); missing values take the mean (plus a missing indicator when
        at least 5% of rows miss the value). The
        manager's current rating makes the censoring of control teams at their
        manager's own (rating-driven) enrolment uninformative. Adjusting
        retention for engagement, which the programme may raise, makes the
        hazard ratio the effect *not passing through* measured engagement (the
        quantity the simulator's ``hr_manager_program`` defines); drop it for
        the total effect.
    event_window : int, default 4
        Waves on each side in the engagement event study.
    inference : {"auto", "cluster", "wild"}, default "auto"
        Engagement only: where the adjusted row's p-value and interval come
        from. ``"cluster"``: the two-way CR1 standard error, clustered by
        manager and by matched set (normal reference). ``"wild"``: the wild
        cluster restricted bootstrap, weights drawn by matched set, each draw's
        t two-way (Webb weights, 9,999 draws, seed 0, interval by test
        inversion; the standard error shown stays the CR1 one). ``"auto"``: the
        bootstrap when fewer than ``WILD_BOOTSTRAP_BELOW`` (50) managers were
        treated, with a caveat saying so. Retention always uses the robust Cox
        variance.
    alpha : float, default 0.05
        Confidence intervals are at level ``1 - alpha``.
    warn : bool, default True
        Raise the balance and overlap caveats as ``StatisticalWarning``; they
        are in ``glance()["caveats"]`` either way (a notebook can show them
        there instead of as a warning).

    Returns
    -------
    ProgramEffectResult
        ``tidy()``: two rows, ``adjusted`` then ``naive`` (column ``method``),
        with ``term`` (``manager_program`` for leadership development, else
        ``manager_<program>``), ``estimate, std_error, statistic, p_value,
        conf_low, conf_high`` (log hazard ratio for retention, scale points for
        engagement), ``exp_estimate, exp_conf_low, exp_conf_high`` (hazard
        ratio, retention only) and ``outcome``.
        ``glance()``: ``program, outcome, design, n_trials, n_enrolled`` (managers
        enrolling in the window with reports), ``n_treated`` (matched),
        ``n_unmatched`` (outside the caliper, or for ``ipw`` in a trial
        without controls: trimmed), ``n_controls`` (distinct control
        managers), ``n_control_rows``, ``ess_controls`` (Kish, of the
        control weights), ``max_abs_smd_before, max_abs_smd_after, caliper,
        ratio`` (missing for ``ipw``),
        n, events, cov_type``, ``inference`` (``"cluster (CR1, two-way:
        manager and matched set)"`` or the bootstrap, e.g. ``"wild cluster
        bootstrap (Webb, 9,999 draws, restricted null), weights by matched
        set, two-way t"``), ``e_value, e_value_ci`` and ``caveats`` (the
        balance and overlap warnings as text, ``"none"`` when there are none).
        The result's ``caveats`` attribute holds them one by one, with those of
        the outcome models (few manager clusters, separation). ``outcome`` is
        ``"retention"`` or ``"engagement"``; ``scale``/``measure`` are
        ``"ratio"``/``"hazard ratio"`` (``time_unit`` ``"days"``) for
        retention and ``"difference"`` for engagement.

    Raises
    ------
    TypeError
        When ``clean`` is not a CleanStudy (e.g. its analysis tables alone).
    ModelError
        When there is no enrolment to emulate, or the outcome is unknown.

    Warns
    -----
    StatisticalWarning
        When a covariate is still imbalanced after matching (|SMD| > 0.1),
        when more than 10% of enrolling managers find no control within the
        caliper (poor overlap), when the enrolment model separates, or when
        fewer than 40 enrolling managers are matched (cluster-robust intervals
        then come out too narrow: MacKinnon & Webb 2017), and for engagement
        when the wild cluster bootstrap replaced them (fewer than
        ``WILD_BOOTSTRAP_BELOW`` treated managers); not with ``warn=False``.

    See Also
    --------
    program_trials, fit_propensity, match_trials, balance_table, e_value, event_study

    Notes
    -----
    Retention: ``survival::coxph(Surv(start, stop, event) ~ treated +
    alignment_cascade + engagement, weights = weight, cluster = manager_id)``
    on the start/stop intervals of the reports of the compared managers (the
    sample pooled, not stratified by matched set, whose small risk sets made
    the robust variance too small in simulation), tenure in days,
    left-truncated at the trial date; control teams are censored when their
    manager enrols. Each report's interval rows carry its manager's design
    weight (matching: ``1 / controls`` per set, as ``MatchIt``; ipw: the
    rescaled odds), so a control team stands for its share of a treated
    team; the variance is R's robust one over weighted
    score residuals, clustered by manager. IPW weights are not trimmed or
    truncated: the enrolment model is fitted on the trials themselves, and
    the ``Extreme weights`` caveat (effective number of control managers
    below the number of enrolling managers) says when a few controls drive
    the estimate. The naive row is
    ``coxph(Surv(entry, exit, event) ~ manager_ever_program, cluster =
    manager_id)`` on the ``person`` table: "ever" exposure, which mixes
    selection with immortal time. Engagement: weighted least squares of
    engagement on ``treated x post`` with person-by-set and wave-by-set fixed
    effects (within-person change; stacked difference in differences), weighted
    by the design's ``weight`` of each trial row, clustered two ways, by
    manager and by matched set: R's ``lm(y ~ treated_post + factor(set:person)
    + factor(set:wave), weights = weight)`` with ``vcovCL(cluster = ~
    manager_id + set, type = "HC1")``. Two ways, because a manager's team
    recurs in several trials (as a control, later treated) and matching ties
    the teams of one matched set together (cluster by matched set after
    matching: Abadie and Spiess 2022); by manager alone the standard error
    was about 20% smaller than the estimate's spread over simulated studies
    without job history, by matched set it equalled it. With few treated
    managers the p-value and interval are those of the wild cluster
    restricted bootstrap, Webb weights drawn per matched set (each holds one
    treated manager) and each draw's t two-way (MacKinnon, Nielsen and Webb
    2021), as ``fwildclusterboot::boottest(param = "treated_post", clustid =
    c("manager_id", "set"), bootcluster = "set", type = "webb", B = 9999)``. With a ``job_history``
    table a team is the reports whose manager in force on the trial date is
    the trial's manager, followed while that manager stays theirs; without
    one, the manager on each spell holds throughout.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> res = ar.estimate_program_effect(clean, warn=False)  # caveats in res.glance()["caveats"]
    >>> res.tidy()["method"].tolist()
    ['adjusted', 'naive']
    """
    return _program_effects(
        clean, program, (outcome,), design=design, propensity_formula=propensity_formula, covariates=covariates,
        ratio=ratio, caliper=caliper, exact=exact, mahalanobis=mahalanobis, adjust=adjust, event_window=event_window,
        inference=inference, alpha=alpha, warn=warn)[outcome]


def estimate_program_effects(clean: CleanStudy, program: str = "leadership_development", *,
                             outcomes=("retention", "engagement"), **options) -> dict:
    """Estimate a programme's effect on several outcomes from one emulated, matched design.

    The trials, the enrolment model and the matching do not depend on the
    outcome, so they are made once and each outcome model is fitted on them:
    each result is what :func:`estimate_program_effect` gives for that
    outcome (each with trials of its own), in a fraction of the time.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study.
    program : str, default "leadership_development"
        The programme.
    outcomes : sequence of {"retention", "engagement"}
        The outcomes, in the order of the returned dict.
    **options
        Any other parameter of :func:`estimate_program_effect` (``design``,
        ``ratio``, ``caliper``, ``alpha``, ``warn``, ...).

    Returns
    -------
    dict of str to ProgramEffectResult
        Outcome to its result.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> effects = ar.estimate_program_effects(clean, warn=False)
    >>> list(effects), effects["engagement"].glance()["outcome"].iloc[0]
    (['retention', 'engagement'], 'engagement')
    """
    if "outcome" in options:
        raise TypeError("estimate_program_effects takes `outcomes` (a list), not `outcome`.")
    return _program_effects(clean, program, tuple(outcomes), **{**_program_defaults(), **options})


def _program_defaults() -> dict:
    """The keyword defaults of :func:`estimate_program_effect` but ``outcome``: one place states them."""
    return {name: p.default for name, p in inspect.signature(estimate_program_effect).parameters.items()
            if p.kind is p.KEYWORD_ONLY and name != "outcome"}


def _program_effects(clean: CleanStudy, program: str, outcomes: tuple, *, design, propensity_formula, covariates,
                     ratio, caliper, exact, mahalanobis, adjust, event_window, inference, alpha, warn) -> dict:
    """The design once, then each outcome's model: outcome to :class:`ProgramEffectResult` (see estimate_program_effect)."""
    if not isinstance(clean, CleanStudy):
        raise TypeError(
            f"A programme effect needs a cleaned study, not {type(clean).__name__}: pass "
            "`ar.clean_study(study)` or `ar.open_clean(study_dir)` (its analysis tables come with it)."
        )
    for outcome in outcomes:
        if outcome not in ("retention", "engagement"):
            raise ModelError(f"The value for `outcome` must be 'retention' or 'engagement', but {outcome!r} was passed.")
    if inference not in _INFERENCE:
        raise ModelError(f"The value for `inference` must be one of {list(_INFERENCE)}, but {inference!r} was passed.")
    if design not in ("matched", "ipw"):
        raise ModelError(f"The value for `design` must be 'matched' or 'ipw', but {design!r} was passed.")
    trials = _emulate_trials(clean, program)
    propensity, caveats = _with_caveats(fit_propensity, trials, _usable_propensity_formula(propensity_formula, trials),
                                        alpha=alpha)
    if design == "ipw":
        matching = _ipw_and_balance(propensity.trials, covariates=covariates)
    else:
        matching = _match_and_balance(propensity.trials, ratio=ratio, caliper=caliper, exact=exact,
                                      mahalanobis=mahalanobis, covariates=covariates)
    results = {}
    for i, one in enumerate(outcomes):
        # each result gets trials of its own: an edit in place of one never changes another
        mine = matching if i == 0 else replace(matching, trials=matching.trials.copy())
        # the outcome models' own caveats (few clusters, separation) join the design caveats
        if one == "retention":
            effect, fitting = _with_caveats(_retention_effect, mine.trials, clean, adjust=adjust, alpha=alpha)
        else:
            effect, fitting = _with_caveats(_engagement_effect, mine.trials, clean, program, outcome=one,
                                            adjust=adjust, event_window=event_window, alpha=alpha,
                                            inference=inference)
        said = list(dict.fromkeys([*caveats, *mine.caveats, *fitting]))
        if warn:
            for text in said:
                warnings.warn(text, StatisticalWarning, stacklevel=3)
        results[one] = _program_result(program, one, propensity, mine, effect, caliper=caliper, ratio=ratio,
                                       caveats=said, alpha=alpha)
    return results
