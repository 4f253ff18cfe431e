"""Engagement and performance models: clustered OLS, mixed, within-person, ordinal, logit, mediation, drivers."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats as st

from ._checks import check_clusters, check_estimates, check_finite, check_variance_components, warn_caveat
from ._docs import fill_doc
from ._estimators import cluster_codes, cluster_robust_cov, demean, fit_logistic
from ._formula import (
    SUPPORTED_RANDOM_TERMS,
    build_design as _design,
    check_columns,
    formula_variables,
    parse_formula,
    prepare_rows,
    split_formula,
    split_random_terms,
)
from ._lmm import fit_nested_intercepts, fit_random_intercept, fit_random_slopes, random_intercept_scores
from .errors import ModelError, StatisticalWarning
from .executors import run_bootstrap
from .plots import axes_for
from .privacy import group_sizes, pool_small_levels, pooled_label, size_gate
from .report import TERM_LABELS
from .results import RATIO_COLUMNS, ModelResult, conf_label, tidy_table

__all__ = [
    "fit_ols",
    "fit_mixed",
    "fit_within",
    "fit_ordinal",
    "fit_logit",
    "fit_glmm",
    "fit_mediation",
    "driver_analysis",
    "cycle_engagement",
    "plot_drivers",
    "RegressionResult",
    "MixedResult",
    "GLMMResult",
    "OrdinalResult",
    "MediationResult",
    "DriverResult",
]

_EXAMPLE_PANEL = """    >>> import alignment_research as ar
    >>> panel = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis.survey_panel"""


# --------------------------------------------------------------------------- result classes


@dataclass(frozen=True, repr=False)
class RegressionResult(ModelResult):
    """A fitted regression (OLS, within-person, logit): tidy table, summary, plot.

    Like every result it says what it is: ``alpha``, ``outcome`` (the
    formula's left side in words, e.g. ``"engagement"``), ``scale``
    (``"ratio"`` for a logit or ordinal model, else ``"difference"``) and
    ``measure`` (``"odds ratio"`` or ``"difference"``).

    Attributes
    ----------
    formula : str
        The formula as given.
    design_info : object
        The patsy design of the right-hand side, used to predict on new rows.
    params : ndarray
        Coefficients in the order of ``tidy()``.
    cov_params : ndarray
        Their covariance matrix (the one behind ``std_error``).
    link : str
        ``"identity"`` or ``"logit"``.
    """

    formula: str = ""
    design_info: Any = None
    params: Any = None
    cov_params: Any = None
    link: str = "identity"

    def plot(self, *, ax=None, **kwargs):
        """Draw a forest plot of the estimates (odds ratios for a logit) and return the Axes."""
        from .plots import plot_forest  # deferred: seaborn is heavy and only needed to draw

        table = self.table[self.table["term"] != "Intercept"]
        return plot_forest(table, ratio="exp_estimate" in table.columns, ax=ax, **kwargs)


@dataclass(frozen=True, repr=False)
class MixedResult(RegressionResult):
    """A fitted linear mixed model; ``glance()`` adds the variance components and ICC.

    Attributes
    ----------
    random_effects : DataFrame
        Predicted random effects (BLUPs): ``group, estimate`` for a random
        intercept; with random slopes ``group`` and one column per effect
        (``Intercept``, then the slope variables).
    """

    random_effects: Any = None


@dataclass(frozen=True, repr=False)
class OrdinalResult(RegressionResult):
    """A proportional-odds model; ``extras["proportional_odds"]`` holds the Brant test."""

    def plot(self, *, ax=None, **kwargs):
        """Draw the odds ratios of the slopes (not the cut-points) and return the Axes."""
        from .plots import plot_forest  # deferred: seaborn is heavy and only needed to draw

        table = self.table[~self.table["term"].str.contains(r"\|", regex=True)]
        return plot_forest(table, ratio=True, ax=ax, **kwargs)


@dataclass(frozen=True, repr=False)
class MediationResult(ModelResult):
    """Indirect, direct and total effects with bootstrap intervals, and the share mediated."""

    def plot(self, *, ax=None, **kwargs):
        """Draw the indirect, direct and total effects with their intervals and return the Axes."""
        from .plots import plot_forest  # deferred: seaborn is heavy and only needed to draw

        table = self.table[self.table["term"].isin(["indirect", "direct", "total"])]
        return plot_forest(table, ax=ax, **kwargs)


@dataclass(frozen=True, repr=False)
class DriverResult(ModelResult):
    """Relative importance of drivers (dominance analysis) with bootstrap intervals."""

    def plot(self, *, group="all", ax=None, **kwargs):
        """Draw each driver's share of explained variance for one group and return the Axes.

        Parameters
        ----------
        group : str, default "all"
            Which group to draw (``"all"`` for the whole sample).
        ax : matplotlib Axes, optional
            Axes to draw on.
        **kwargs
            Passed to :func:`plot_drivers`.

        Returns
        -------
        matplotlib.axes.Axes
            The Axes drawn on.
        """
        return plot_drivers(self.table, group=group, ax=ax, **kwargs)


# --------------------------------------------------------------------------- helpers


def _prepare(data: pd.DataFrame, formula: str, *, extra=(), intercept=True, binary=False):
    """Check columns, drop incomplete rows, return (y, X, sub) with aligned rows."""
    if not isinstance(data, pd.DataFrame):
        raise ModelError(f"`data` must be a pandas DataFrame, but {type(data).__name__} was passed.")
    lhs, rhs = split_formula(formula)
    sub, _ = prepare_rows(data, rhs, extra=[lhs, *extra])
    if sub.empty:
        raise ModelError(f"No rows with {list(sub.columns)} all present.")
    X, info = _design(sub, rhs, intercept=intercept, columns=data.columns)
    y = pd.to_numeric(sub[lhs], errors="coerce")
    if y.isna().any():
        raise ModelError(f"The outcome {lhs!r} must be numeric; it has values that are not numbers.")
    y = y.to_numpy(float)
    if binary and not np.isin(y, [0.0, 1.0]).all():
        raise ModelError(f"The outcome {lhs!r} must be 0/1 for a logistic model; found {sorted(set(y))[:6]}.")
    if np.ptp(y) == 0:
        raise ModelError(f"The outcome {lhs!r} does not vary in the {len(y)} rows used; nothing to model.")
    if len(y) <= X.shape[1]:
        raise ModelError(f"Only {len(y)} complete rows for {X.shape[1]} coefficients; add data or drop terms.")
    Xa = X.to_numpy(float)
    scale = np.sqrt((Xa * Xa).sum(axis=0))
    rank = np.linalg.matrix_rank((Xa / scale).T @ (Xa / scale), tol=1e-10, hermitian=True)
    if rank < X.shape[1]:
        raise ModelError(
            f"The design matrix of {rhs!r} is rank deficient ({rank} < {X.shape[1]} columns): some terms are "
            "linear combinations of others (e.g. a dummy for every level). Drop one of them."
        )
    return lhs, rhs, y, X, sub, info


def _std_estimates(X: pd.DataFrame, params, y=None) -> np.ndarray:
    """Standardised effects: per SD of a continuous x (or per unit of a 0/1 x), in SD units of y if given."""
    sd_y = float(np.std(y, ddof=1)) if y is not None else 1.0
    out = []
    for col, b in zip(X.columns, params):
        x = X[col].to_numpy(float)
        if col == "Intercept" or np.ptp(x) == 0:
            out.append(np.nan)
        elif np.isin(x, [0.0, 1.0]).all():
            out.append(b / sd_y)
        else:
            out.append(b * np.std(x, ddof=1) / sd_y)
    return np.asarray(out)


def _statsmodels_table(res, *, alpha, ratio=False, **extra) -> pd.DataFrame:
    """A statsmodels fit's estimates through ``tidy_table``, with the fit's own reference distribution.

    statsmodels tests with t when ``use_t`` (OLS: ``df_resid``, or ``G - 1``
    with clustered errors, its ``df_resid_inference``), else with the normal.
    """
    df = getattr(res, "df_resid_inference", None)
    df = res.df_resid if df is None else df
    return tidy_table(list(res.model.exog_names), np.asarray(res.params, float), np.asarray(res.bse, float),
                      alpha=alpha, dist="t" if res.use_t else "norm", df=df, ratio=ratio, **extra)


def _cov_label(cluster, default="nonrobust"):
    if isinstance(cluster, (list, tuple)):
        cluster = " + ".join(cluster)
    return f"cluster: {cluster}" if cluster else default


def _cluster_columns(cluster) -> list[str]:
    """The cluster column(s) of ``cluster=`` as a list (empty without clustering)."""
    if cluster is None:
        return []
    if isinstance(cluster, str):
        return [cluster]
    if isinstance(cluster, (list, tuple)) and cluster and all(isinstance(c, str) for c in cluster):
        repeated = sorted({c for c in cluster if list(cluster).count(c) > 1})
        if repeated:
            raise ModelError(f"`cluster` names {repeated} more than once; name each cluster dimension once, "
                             "e.g. cluster=['manager_id', 'cycle'].")
        return list(cluster)
    raise ModelError(
        f"`cluster` must be a column name or a non-empty list of column names (e.g. cluster=['manager_id', "
        f"'cycle'] for two-way clustering), but {cluster!r} was passed."
    )


def _multiway_codes(sub: pd.DataFrame, columns: list[str]):
    """Cluster codes for :func:`cluster_robust_cov` (one array, or a list for several ways), caveats, group counts.

    Every dimension is checked by :func:`check_clusters` (at least 2 levels;
    a caveat below 30). ``(None, [], {})`` without clustering.
    """
    if not columns:
        return None, [], {}
    codes, caveats = [], []
    for column in columns:
        c, caveat = _cluster_codes(sub, column)
        codes.append(c)
        caveats += caveat
    counts = {column: int(c.max() + 1) for column, c in zip(columns, codes)}
    return (codes[0] if len(codes) == 1 else codes), caveats, counts


def _group_stats(counts: dict) -> dict:
    """``n_groups`` for glance(): the count of one-way clusters; with several ways the smallest, and one per way."""
    if not counts:
        return {"n_groups": np.nan}
    out = {"n_groups": min(counts.values())}
    if len(counts) > 1:
        out.update({f"n_groups_{column}": g for column, g in counts.items()})
    return out


def _cluster_count_stats(counts: dict) -> dict:
    """``n_clusters`` for glance() of the random-intercept and within models: the smallest count of the cluster
    columns, and with several columns ``n_clusters_<column>`` for each."""
    out = {"n_clusters": min(counts.values())}
    if len(counts) > 1:
        out.update({f"n_clusters_{column}": g for column, g in counts.items()})
    return out


def _cluster_codes(sub: pd.DataFrame, cluster: str | None):
    """Integer cluster codes and the caveats of :func:`check_clusters` (None, [] without clustering)."""
    if cluster is None:
        return None, []
    codes = cluster_codes(sub[cluster])
    return codes, check_clusters(codes, cluster)


def _residual_table(fitted, resid) -> pd.DataFrame:
    return pd.DataFrame({"fitted": np.asarray(fitted, float), "residual": np.asarray(resid, float)})


def _outcome_words(column: str) -> str:
    """The outcome in words, as the report labels a formula's left side (``"engagement"``)."""
    label = TERM_LABELS.get(column)
    if label is None and column.startswith("program_"):
        label = f"the {column[len('program_'):].replace('_', ' ')} programme"
    return (label or column.replace("_", " ")).split(" (")[0]


def _regression_result(cls, name, table, stats, *, lhs, alpha, formula, info, params, cov, link, **fields):
    """Build a RegressionResult (or subclass) that says what it is: outcome, scale, measure, alpha."""
    ratio = link in ("logit", "ordinal")
    return cls(
        name=name,
        table=table,
        stats=stats,
        alpha=alpha,
        outcome=_outcome_words(lhs),
        scale="ratio" if ratio else "difference",
        measure="odds ratio" if ratio else "difference",
        formula=formula,
        design_info=info,
        params=np.asarray(params, float),
        cov_params=np.asarray(cov, float),
        link=link,
        **fields,
    )


# --------------------------------------------------------------------------- OLS


def fit_ols(
    data: pd.DataFrame, formula: str, *, cluster: str | list[str] | None = None, alpha: float = 0.05
) -> RegressionResult:
    """Fit a linear regression with (optionally) cluster-robust standard errors.

    Use it for the engagement score on the survey panel, with ``cluster="manager_id"``
    because team members share a manager and their answers are not independent.

    Parameters
    ----------
    {data}
    formula : str
        ``"outcome ~ right-hand side"`` in R/patsy syntax, e.g.
        ``"engagement ~ alignment_cascade + manager_program + C(job_level)"``.
        Categorical terms use treatment coding with the first sorted level as reference.
    cluster : str or list of str, optional
        Column whose values define clusters (usually ``"manager_id"``);
        standard errors are then cluster-robust. A list clusters several
        ways at once, e.g. ``["manager_id", "cycle"]`` (multiway).
    {alpha}

    Returns
    -------
    RegressionResult
        ``tidy()``: ``term, estimate, std_error, statistic, p_value, conf_low,
        conf_high, std_estimate`` (``std_estimate`` is the effect in outcome SDs
        per SD of a continuous covariate, or per unit of a 0/1 covariate).
        ``glance()``: ``n, n_groups, log_likelihood, aic, bic, n_params, r_squared,
        adj_r_squared, sigma, cov_type, formula`` (``aic`` as statsmodels, which
        does not count the residual variance; ``bic`` and ``n_params`` as R's
        ``BIC(lm)`` and ``attr(logLik(lm), "df")``, which do); with several cluster columns ``n_groups`` is
        the smallest count and ``n_groups_<column>`` gives each, and ``cov_type``
        reads ``"cluster: manager_id + cycle"``. ``extras["residuals"]``: ``fitted, residual``.
        ``extras["naive_std_error"]``: the model-based standard errors next to
        the clustered ones (``term, std_error_naive, std_error, ratio``).

    Raises
    ------
    ModelError
        Unknown column, a malformed formula, infinite values, a covariate
        that does not vary, too few rows, a ``cluster`` column with fewer than 2
        clusters, or a ``cluster`` that is not a column name or list of them.

    Warns
    -----
    StatisticalWarning
        Fewer than 30 clusters in a cluster column (also kept in the result's ``caveats``).

    See Also
    --------
    fit_mixed : random intercepts instead of clustered errors.

    Notes
    -----
    statsmodels ``OLS(...).fit(cov_type="cluster")``: CR1 with the small-sample
    factor ``G/(G-1) * (N-1)/(N-K)``; tests and intervals use the normal reference
    with clustered errors (statsmodels' default there) and t with ``N-K`` degrees
    of freedom without. The estimates and standard errors match
    ``sandwich::vcovCL(lm(...), cluster = ~manager_id, type = "HC1")`` in R.
    With several cluster columns the variance is the multiway one of Cameron,
    Gelbach and Miller: the sum over every intersection ``S`` of the columns of
    ``(-1)^(|S|+1) G_S/(G_S-1)`` times its clustered meat, times ``(N-1)/(N-K)``,
    matching ``sandwich::vcovCL(fit, cluster = ~ a + b, type = "HC1")`` with its
    defaults (``cadjust = TRUE``, ``multi0 = FALSE``, ``fix = FALSE``: no
    eigenvalue fix, so a variance can in rare cases be negative and its
    standard error NaN); tests and intervals then use the normal reference.
    ``model`` is then the statsmodels fit with model-based errors; the
    clustered covariance is the result's ``cov_params``.

    Examples
    --------
    {example}
    >>> res = ar.fit_ols(panel, "engagement ~ alignment_cascade + manager_program", cluster="manager_id")
    >>> list(res.tidy().columns[:3])
    ['term', 'estimate', 'std_error']
    """
    from statsmodels.regression.linear_model import OLS  # deferred: statsmodels is heavy; loaded on the first fit

    columns = _cluster_columns(cluster)
    lhs, rhs, y, X, sub, info = _prepare(data, formula, extra=columns)
    codes, caveats, counts = _multiway_codes(sub, columns)
    model = OLS(y, X)
    naive = model.fit()
    if len(columns) > 1:
        res = naive
        cov = cluster_robust_cov(X.to_numpy(float) * np.asarray(res.resid, float)[:, None],
                                 res.normalized_cov_params, codes)
        table = tidy_table(X.columns, np.asarray(res.params, float), np.sqrt(np.diag(cov)), alpha=alpha,
                           std_estimate=_std_estimates(X, res.params, y))  # normal, as one-way
    else:
        res = model.fit(cov_type="cluster", cov_kwds={"groups": codes}) if columns else naive
        cov = res.cov_params()
        table = _statsmodels_table(res, alpha=alpha, std_estimate=_std_estimates(X, res.params, y))
    stats = pd.DataFrame(
        [
            {
                "n": int(res.nobs),
                **_group_stats(counts),
                "log_likelihood": float(res.llf),
                "aic": float(res.aic),
                "bic": float(-2 * res.llf + np.log(res.nobs) * (X.shape[1] + 1)),  # R's BIC(lm): sigma counts
                "n_params": X.shape[1] + 1,
                "r_squared": float(res.rsquared),
                "adj_r_squared": float(res.rsquared_adj),
                "sigma": float(np.sqrt(res.scale)),
                "cov_type": _cov_label(columns),
                "formula": formula,
            }
        ]
    )
    naive_se = pd.DataFrame(
        {"term": table["term"], "std_error_naive": np.asarray(naive.bse), "std_error": table["std_error"]}
    )
    naive_se["ratio"] = naive_se["std_error"] / naive_se["std_error_naive"]
    return _regression_result(
        RegressionResult, "ols", table, stats, lhs=lhs, alpha=alpha, formula=formula, info=info,
        params=res.params, cov=cov, link="identity", model=res, caveats=caveats,
        extras={"residuals": _residual_table(res.fittedvalues, res.resid), "naive_std_error": naive_se},
    )


# --------------------------------------------------------------------------- mixed


def fit_mixed(
    data: pd.DataFrame,
    formula: str,
    *,
    groups: str | None = None,
    reml: bool = True,
    vc: str | dict | None = None,
    alpha: float = 0.05,
    engine: str = "auto",
    cluster: str | list[str] | None = None,
) -> MixedResult:
    """Fit a linear mixed model: a random intercept per group (e.g. per manager), optionally random slopes.

    Parameters
    ----------
    {data}
    formula : str
        ``"outcome ~ right-hand side"``, e.g. ``"engagement ~ alignment_cascade + manager_program"``.
        Random effects may be written in lme4's bar notation instead of ``groups``:
        ``(1 | g)`` (random intercept), ``(1 + x | g)`` or ``(x | g)`` (correlated
        random intercept and slope of ``x``; the intercept is implied, as in lme4),
        ``(0 + x | g)`` (random slope only), ``(1 + x || g)`` (independent
        intercept and slope), or several such terms with the same grouping column.
    groups : str, optional
        Column whose levels get a random intercept (usually ``"manager_id"``);
        not needed when the formula has a bar term (if given, it must name the
        bar term's grouping column).
    reml : bool, default True
        Restricted maximum likelihood (lme4's default); False for maximum likelihood
        (needed to compare models that differ in fixed effects by likelihood ratio).
    vc : str or dict, optional
        A second grouping with its own variance: a column name such as
        ``"department"`` (groups nested within it: lme4's ``(1 | vc) + (1 |
        vc:groups)``, fitted by the exact nested engine), or a dict of
        statsmodels variance-component formulas (fitted with statsmodels
        ``MixedLM``). Not with random slopes.
    {alpha}
    engine : {"auto", "numpy", "statsmodels"}, default "auto"
        ``"auto"`` uses the fast exact engines for one grouping column (random
        intercept, or random slopes) and for intercepts nested in a ``vc``
        column, and statsmodels ``MixedLM`` when ``vc`` is a dict of formulas.
        ``"statsmodels"`` fits a random intercept or a ``vc`` model with
        ``MixedLM`` (its optimiser stops about 1e-3 from lme4's optimum).
    cluster : str or list of str, optional
        Cluster-robust (sandwich) standard errors around the fixed effects of a
        single random intercept, clustered by this column or, with a list,
        several ways at once: ``cluster=["manager_id", "employee_id"]`` when
        people answer several waves and some change manager, which the
        manager's intercept alone does not model. The estimates are unchanged.

    Returns
    -------
    MixedResult
        ``tidy()``: fixed effects with ``term, estimate, std_error, statistic,
        p_value, conf_low, conf_high, std_estimate`` (z tests, as statsmodels).
        ``glance()``: ``n, n_groups, log_likelihood, aic, bic, sigma2, var_<groups>
        [, var_<vc>], icc [, icc_<vc>], boundary, converged, method, engine, cov_type, formula``; with
        ``cluster`` also ``n_clusters`` (the smallest count; with several columns ``n_clusters_<column>``
        for each), and ``cov_type``
        reads ``"random intercept: manager_id; cluster: manager_id + employee_id"``.
        With random slopes the variance components are ``var_<g>`` (intercept),
        ``var_<g>_<x>`` (slope of ``x``), ``cor_<g>_<x>`` (intercept-slope
        correlation) and ``cor_<g>_<x>:<z>`` (between two slopes), as lme4's
        ``VarCorr``; ``icc`` is then Nakagawa et al.'s (2017): the random-effect
        variance averaged over the rows, ``mean(z_i' Sigma z_i)``, over itself plus
        ``sigma2``. ``random_effects``: ``group, estimate`` (BLUPs), or with slopes
        ``group`` and one column per effect. ``extras["residuals"]``:
        ``fitted, residual`` (conditional on the random effects); with slopes
        also ``extras["variance_components"]`` (``group, effect, effect2,
        variance, sd_cor``, as ``as.data.frame(VarCorr(fit))``) and
        ``extras["theta"]`` (lme4's ``getME(fit, "theta")``).

    Raises
    ------
    ModelError
        Unknown column, a covariate that does not vary, fewer than 2 groups,
        or a variance that is not identified: every group has one row, or
        the ``vc`` column has one level (both engines alike). A bar term of a
        form not supported (nested ``g1/g2`` or crossed groupings, several
        grouping columns), a bar term together with a different ``groups`` or
        with ``vc``, and no more rows than random effects (as lme4). ``cluster``
        with random slopes or ``vc``, or a cluster column with fewer than 2 levels.

    Warns
    -----
    StatisticalWarning
        The random-intercept variance is estimated at (or numerically near) zero,
        a boundary fit: statsmodels ``MixedLM`` may then return degenerate
        fixed effects while claiming convergence. With random slopes: the
        covariance of the random effects is singular (a variance at zero or a
        correlation at +-1, lme4's ``isSingular``). The flag is also in
        ``glance()["boundary"]``. Also when a variance is barely identified
        (fewer than 5 groups with more than one row, or ``vc`` levels).
        Every warning is kept in the result's ``caveats``.

    See Also
    --------
    fit_ols : clustered standard errors instead of random intercepts.

    Notes
    -----
    The single-intercept engine profiles the (restricted) likelihood over the
    variance ratio and needs only per-group sums (see ``_lmm.py``); it matches
    ``lme4::lmer(y ~ x + (1 | manager_id), REML = reml)`` in fixed effects,
    standard errors (``vcov``), variance components (``VarCorr``) and
    ``logLik`` to about 1e-8 relative, and is faster than lmer on large data.
    ``icc`` = group variance / (group + residual variance) (+ the ``vc`` variance
    in the denominator when given, and then ``icc_<vc>`` is the ``vc`` share).
    With ``groups="employee_id", vc="manager_id"`` the model has random
    intercepts for employees nested in managers, the natural model for a
    repeated survey panel. The nested engine inverts each manager's
    covariance through two rank-one updates, so the criterion needs only
    per-cell sums (``_lmm.fit_nested_intercepts``); it is profiled over
    lme4's ``theta`` with an analytic gradient and matches ``lmer(y ~ x + (1 |
    vc) + (1 | vc:groups))`` in log-likelihood to 1e-12 and in estimates,
    standard errors and variances to lme4's own precision (1e-7 to 1e-6;
    ``tests/test_engagement.py``, with lme4's ``Pastes``). At 70,000 survey
    rows in 17,000 employee cells it takes 0.4 s against statsmodels' 6.5 s.

    The random-slope engine profiles lme4's criterion over lme4's ``theta``
    (the Cholesky factor of the random-effects covariance over ``sigma^2``)
    from per-group cross-products, with an exact gradient; it matches ``lmer``
    on ``sleepstudy`` and on the toolkit's survey panel to better than 1e-6
    (``tests/test_mixed_slopes.py``). When the effect of ``x`` differs between
    groups, a random-intercept-only model understates the standard error of
    ``x`` (on ``sleepstudy`` 1.9 times too small); fit the slope to see it.

    Examples
    --------
    {example}
    >>> res = ar.fit_mixed(panel, "engagement ~ alignment_cascade + manager_program", groups="manager_id")
    >>> 0 <= float(res.glance()["icc"].iloc[0]) <= 1
    True
    >>> slopes = ar.fit_mixed(panel, "engagement ~ alignment_cascade + (1 + alignment_cascade | manager_id)")
    >>> list(slopes.random_effects.columns)
    ['group', 'Intercept', 'alignment_cascade']
    >>> "var_manager_id_alignment_cascade" in slopes.glance().columns
    True
    """
    vc_col, vc_vars = _check_mixed_options(engine, vc)
    terms = split_random_terms(formula)[1] if isinstance(formula, str) and "|" in formula else []
    if terms:
        return _fit_mixed_bars(data, formula, terms, groups=groups, reml=reml, vc=vc, alpha=alpha, engine=engine,
                               cluster=cluster)
    if groups is None:
        raise ModelError(
            "fit_mixed needs the grouping of its random effects: groups='manager_id', or a term such as "
            f"'(1 + alignment_cascade | manager_id)' in the formula (supported: {SUPPORTED_RANDOM_TERMS})."
        )
    return _fit_mixed_intercept(data, formula, groups=groups, reml=reml, vc=vc, alpha=alpha, engine=engine,
                                vc_col=vc_col, vc_vars=vc_vars, cluster=cluster)


def _fit_mixed_intercept(data, formula, *, groups, reml, vc, alpha, engine, vc_col, vc_vars, shown=None,
                         cluster=None):
    """One random intercept (exact engine) or statsmodels with ``vc``; ``shown`` is the formula as the user wrote it."""
    shown = formula if shown is None else shown
    columns = _cluster_columns(cluster)
    if columns and (vc is not None or engine == "statsmodels"):
        raise ModelError("`cluster` gives sandwich errors for a single random intercept (the exact engine); it "
                         "cannot be combined with `vc` or engine='statsmodels'.")
    lhs, rhs, y, X, sub, info = _prepare(data, formula, extra=[groups, vc_col, *vc_vars,
                                                               *(c for c in columns if c != groups)])
    n_groups = sub[groups].nunique()
    if n_groups < 2:
        raise ModelError(f"A random intercept for {groups!r} needs at least 2 groups; found {n_groups}.")
    # the same identification rules for both engines (they disagree on what to return otherwise)
    caveats = check_variance_components(sub, groups, vc_col, vc_vars)
    use_numpy = engine == "numpy" or (engine == "auto" and not isinstance(vc, dict))
    if use_numpy and isinstance(vc, dict):
        raise ModelError("engine='numpy' fits a random intercept, or intercepts nested in a `vc` column; use "
                         "engine='statsmodels' with variance-component formulas.")
    if use_numpy and vc_col is not None:
        fit = _fit_numpy_nested(X, y, sub, groups=groups, vc=vc_col, reml=reml)
    elif use_numpy:
        fit = _fit_numpy_mixed(X, y, sub, groups=groups, reml=reml)
    else:
        fit = _fit_statsmodels_mixed(X, y, sub, groups=groups, vc=vc, reml=reml)
    cluster_stats = {}
    if columns:
        codes, cluster_caveats, counts = _multiway_codes(sub, columns)
        bread, scores = random_intercept_scores(fit.model, X.to_numpy(float), y)
        fit = replace(fit, cov=cluster_robust_cov(scores, bread, codes),
                      caveats=[*fit.caveats, *cluster_caveats])
        cluster_stats = {**_cluster_count_stats(counts), "cov_type": f"random intercept: {groups}; {_cov_label(columns)}"}
    with np.errstate(invalid="ignore"):  # a multiway variance can be negative: its standard error is then NaN
        se = np.sqrt(np.diag(fit.cov))
    table = tidy_table(X.columns, fit.params, se, alpha=alpha, std_estimate=_std_estimates(X, fit.params, y))
    stats = _mixed_stats(fit, n=len(y), k=X.shape[1], n_groups=int(n_groups), groups=groups, vc_col=vc_col,
                         method="REML" if reml else "ML", engine="numpy" if use_numpy else "statsmodels",
                         formula=shown)
    stats = stats.assign(**cluster_stats)
    return _regression_result(
        MixedResult, "mixed", table, stats, lhs=lhs, alpha=alpha, formula=shown, info=info, params=fit.params,
        cov=fit.cov, link="identity", model=fit.model, caveats=[*caveats, *fit.caveats],
        extras={"residuals": _residual_table(fit.fitted, y - fit.fitted)}, random_effects=fit.ranef,
    )


def _fit_mixed_bars(data, formula, terms, *, groups, reml, vc, alpha, engine, cluster=None) -> MixedResult:
    """A formula with lme4 bar terms: one grouping column; a lone ``(1 | g)`` is the random-intercept model."""
    found = list(dict.fromkeys(t.group for t in terms))
    if len(found) > 1:
        raise ModelError(
            f"The formula {formula!r} has random effects for several grouping columns {found}; fit_mixed takes one "
            f"(supported: {SUPPORTED_RANDOM_TERMS}). For random intercepts of groups nested in another grouping use "
            "groups= with vc=."
        )
    group = found[0]
    if groups is not None and groups != group:
        raise ModelError(
            f"groups={groups!r} and the formula's random-effect grouping {group!r} disagree; give the grouping once "
            "(in the formula, or as groups= with no bar term)."
        )
    if vc is not None:
        raise ModelError("`vc` cannot be combined with random-effect terms in the formula; use groups= and vc= for "
                         "nested random intercepts, or bar terms for random slopes.")
    fixed = split_random_terms(formula)[0]
    for term in terms:
        parse_formula(term.effects, data.columns if isinstance(data, pd.DataFrame) else None)
    if all(_intercept_only(t.effects) for t in terms) and len(terms) == 1:
        return _fit_mixed_intercept(data, fixed, groups=group, reml=reml, vc=None, alpha=alpha, engine=engine,
                                    vc_col=None, vc_vars=[], shown=formula, cluster=cluster)
    if cluster is not None:
        raise ModelError("`cluster` gives sandwich errors for a single random intercept; with random slopes the "
                         "slopes model the dependence instead.")
    if engine == "statsmodels":
        raise ModelError("Random slopes are fitted by the exact engine: use engine='auto' or 'numpy'.")
    re_vars = [v for t in terms for v in formula_variables(t.effects)]
    lhs, rhs, y, X, sub, info = _prepare(data, fixed, extra=[group, *re_vars])
    n_groups = int(sub[group].nunique())
    if n_groups < 2:
        raise ModelError(f"Random effects for {group!r} need at least 2 groups; found {n_groups}.")
    caveats = check_variance_components(sub, group)
    Z, blocks = _random_design(sub, terms, formula, data.columns)
    if len(y) <= n_groups * Z.shape[1]:
        raise ModelError(
            f"The {len(y)} rows are no more than the {n_groups * Z.shape[1]} random effects ({n_groups} groups of "
            f"{group!r} x {Z.shape[1]} effects {list(Z.columns)}): the random effects and the residual variance are "
            "not identified (lme4 refuses this too). Drop a random slope."
        )
    fit = fit_random_slopes(X.to_numpy(float), y, Z.to_numpy(float), sub[group].astype(str).to_numpy(),
                            blocks=blocks, reml=reml)
    mixed = _slopes_fit(fit, X, Z, group=group, blocks=blocks)
    table = tidy_table(X.columns, mixed.params, np.sqrt(np.diag(mixed.cov)), alpha=alpha,
                       std_estimate=_std_estimates(X, mixed.params, y))
    stats = _mixed_stats(mixed, n=len(y), k=X.shape[1], n_groups=n_groups, groups=group, vc_col=None,
                         method="REML" if reml else "ML", engine="numpy", formula=formula)
    return _regression_result(
        MixedResult, "mixed", table, stats, lhs=lhs, alpha=alpha, formula=formula, info=info, params=mixed.params,
        cov=mixed.cov, link="identity", model=fit, caveats=[*caveats, *mixed.caveats],
        extras={"residuals": _residual_table(mixed.fitted, y - mixed.fitted),
                "variance_components": _varcorr_table(fit, Z.columns, group, blocks),
                "theta": fit.theta.copy()},
        random_effects=mixed.ranef,
    )


def _intercept_only(effects: str) -> bool:
    """Whether a bar term's effects are just the intercept (``1``), read by patsy."""
    desc = parse_formula(effects)
    return [t.factors for t in desc.rhs_termlist] == [()]


def _random_design(sub, terms, formula, columns) -> tuple[pd.DataFrame, list[int]]:
    """The random-effects design ``Z`` of the bar terms and the sizes of its independent blocks.

    A ``|`` term is one block (its effects correlated); a ``||`` term gives one
    block per model term, as lme4 splits ``(1 + x || g)`` into ``(1 | g) + (0 + x | g)``.
    """
    parts, blocks = [], []
    for term in terms:
        Zt, zinfo = _design(sub, term.effects, intercept=True, columns=columns)
        if term.correlated:
            blocks.append(Zt.shape[1])
        else:
            for t in parse_formula(term.effects).rhs_termlist:
                if t in zinfo.term_slices:
                    sl = zinfo.term_slices[t]
                    blocks.append(sl.stop - sl.start)
        parts.append(Zt)
    Z = pd.concat(parts, axis=1)
    repeated = Z.columns[Z.columns.duplicated()].tolist()
    if repeated:
        raise ModelError(
            f"The random effects of {formula!r} repeat {repeated}: each effect may appear in one bar term only "
            f"(supported: {SUPPORTED_RANDOM_TERMS})."
        )
    return Z, blocks


def _re_pairs(names, blocks):
    """Pairs (i, j), i < j, of random effects in the same block (those with a correlation)."""
    out, start = [], 0
    for size in blocks:
        out += [(i, j) for i in range(start, start + size) for j in range(i + 1, start + size)]
        start += size
    return out


def _re_key(kind, group, a, b=None):
    """Glance name of a variance (``var_<g>``, ``var_<g>_<x>``) or a correlation (``cor_<g>_<x>``, ``cor_<g>_<x>:<z>``).

    The intercept is left out of names: ``var_<g>`` is its variance and ``cor_<g>_<x>`` its correlation with ``x``.
    """
    if b is None:
        return f"{kind}_{group}" if a == "Intercept" else f"{kind}_{group}_{a}"
    return f"{kind}_{group}_{b}" if a == "Intercept" else f"{kind}_{group}_{a}:{b}"


def _slopes_fit(fit, X, Z, *, group, blocks) -> _MixedFit:
    """The random-slope engine's fit in the shape ``_mixed_stats`` reads."""
    names = list(Z.columns)
    cov_re = fit.cov_re
    sd = np.sqrt(np.diag(cov_re))
    variances = {_re_key("var", group, n): float(cov_re[i, i]) for i, n in enumerate(names)}
    correlations = {
        _re_key("cor", group, names[i], names[j]): float(cov_re[i, j] / (sd[i] * sd[j])) if sd[i] * sd[j] > 0
        else np.nan
        for i, j in _re_pairs(names, blocks)
    }
    Za = Z.to_numpy(float)
    b_rows = fit.ranef[fit.codes]
    fitted = X.to_numpy(float) @ fit.beta + np.sum(Za * b_rows, axis=1)
    re_variance = float(np.mean(np.sum((Za @ cov_re) * Za, axis=1)))  # Nakagawa et al. (2017)
    caveats = []
    if fit.boundary:
        caveats.append(warn_caveat(
            f"The covariance of the random effects {names} of {group!r} is singular (a boundary fit, as lme4's "
            "isSingular): a variance is estimated at zero or a correlation at +-1. The data cannot support every "
            "random effect; simplify them (drop a slope, or use '||' for uncorrelated effects) and compare. "
            "Flagged in glance()['boundary']."
        ))
    if not fit.converged:
        caveats.append(warn_caveat(
            f"The random-slope fit did not converge (gradient not zero after {fit.n_eval} evaluations); "
            "the estimates may not be the optimum. Rescale the slope variables or simplify the random effects."
        ))
    ranef = pd.DataFrame(fit.ranef, columns=names)
    ranef.insert(0, "group", fit.group_labels)
    effects = ", ".join(names)
    shape = "correlated" if blocks == [len(names)] else ("uncorrelated" if all(b == 1 for b in blocks) else
                                                         f"blocks {blocks}")
    return _MixedFit(
        params=fit.beta, cov=fit.cov_beta, variances=variances, sigma2=fit.sigma2,
        log_likelihood=fit.log_likelihood, boundary=fit.boundary, converged=fit.converged, ranef=ranef,
        fitted=fitted, model=fit, caveats=caveats, correlations=correlations, re_variance=re_variance,
        n_cov_params=len(fit.theta), cov_type=f"random effects by {group}: {effects} ({shape})",
    )


def _varcorr_table(fit, names, group, blocks) -> pd.DataFrame:
    """``as.data.frame(VarCorr(fit))``: variances then correlations, and the residual variance."""
    names = list(names)
    cov = fit.cov_re
    sd = np.sqrt(np.diag(cov))
    rows = [{"group": group, "effect": n, "effect2": None, "variance": float(cov[i, i]), "sd_cor": float(sd[i])}
            for i, n in enumerate(names)]
    for i, j in _re_pairs(names, blocks):
        rows.append({"group": group, "effect": names[i], "effect2": names[j], "variance": float(cov[i, j]),
                     "sd_cor": float(cov[i, j] / (sd[i] * sd[j])) if sd[i] * sd[j] > 0 else np.nan})
    rows.append({"group": "Residual", "effect": None, "effect2": None, "variance": fit.sigma2,
                 "sd_cor": float(np.sqrt(fit.sigma2))})
    return pd.DataFrame(rows)


def _check_mixed_options(engine, vc) -> tuple[str | None, list[str]]:
    """Check ``engine`` and ``vc``; return the ``vc`` column (if one) and the variables of ``vc`` formulas."""
    if engine not in ("auto", "numpy", "statsmodels"):
        raise ModelError(f"The value for `engine` must be one of ['auto', 'numpy', 'statsmodels'], but {engine!r} was passed.")
    if isinstance(vc, dict):
        return None, [v for f in vc.values() for v in formula_variables(f)]
    if vc is not None and not isinstance(vc, str):
        raise ModelError(f"`vc` must be a column name or a dict of variance-component formulas, not {type(vc).__name__}.")
    return vc, []


@dataclass(frozen=True)
class _MixedFit:
    """What either mixed-model engine returns: fixed effects, variances, BLUPs, fit flags."""

    params: np.ndarray
    cov: np.ndarray
    variances: dict  # "var_<grouping>" -> variance
    sigma2: float
    log_likelihood: float
    boundary: bool
    converged: bool
    ranef: pd.DataFrame
    fitted: np.ndarray
    model: Any
    caveats: list
    # random slopes only: correlations ("cor_<g>_<x>"), the mean random-effect variance (Nakagawa's ICC),
    # the number of covariance parameters (lme4's theta) and the covariance type
    correlations: dict = field(default_factory=dict)
    re_variance: float | None = None
    n_cov_params: int | None = None
    cov_type: str | None = None


def _fit_numpy_mixed(X, y, sub, *, groups, reml) -> _MixedFit:
    """A single random intercept by the exact profiled-likelihood engine (``_lmm``)."""
    fit = fit_random_intercept(X.to_numpy(float), y, sub[groups].astype(str).to_numpy(), reml=reml)
    caveats = []
    if fit.boundary:
        caveats.append(_warn_boundary(groups, "estimated at zero (a singular fit, as lme4 reports)"))
    return _MixedFit(
        params=fit.beta, cov=fit.cov_beta, variances={f"var_{groups}": fit.sigma2_b}, sigma2=fit.sigma2,
        log_likelihood=fit.log_likelihood, boundary=fit.boundary, converged=fit.converged,
        ranef=pd.DataFrame({"group": fit.group_labels, "estimate": fit.ranef}),
        fitted=X.to_numpy(float) @ fit.beta + fit.ranef[fit.codes], model=fit, caveats=caveats,
    )


def _fit_numpy_nested(X, y, sub, *, groups, vc, reml) -> _MixedFit:
    """Intercepts of ``groups`` nested in the ``vc`` column's, by the exact engine (``_lmm``): lme4's
    ``(1 | vc) + (1 | vc:groups)``; the variances and BLUPs in the shape the statsmodels engine gives them."""
    fit = fit_nested_intercepts(X.to_numpy(float), y, sub[vc].astype(str).to_numpy(),
                                sub[groups].astype(str).to_numpy(), reml=reml)
    caveats = [_warn_boundary(name, "estimated at zero (a singular fit, as lme4 reports)")
               for name, variance in ((vc, fit.variance_outer), (groups, fit.variance_inner)) if variance == 0.0]
    fitted = X.to_numpy(float) @ fit.beta + fit.ranef_outer[fit.outer_codes] + fit.ranef_cell[fit.cell_codes]
    return _MixedFit(
        params=fit.beta, cov=fit.cov_beta, variances={f"var_{vc}": fit.variance_outer, f"var_{groups}": fit.variance_inner},
        sigma2=fit.sigma2, log_likelihood=fit.log_likelihood, boundary=fit.boundary, converged=fit.converged,
        ranef=pd.DataFrame({"group": fit.outer_labels, "estimate": fit.ranef_outer}), fitted=fitted, model=fit,
        caveats=caveats,
    )


def _mixed_stats(fit: _MixedFit, *, n, k, n_groups, groups, vc_col, method, engine, formula) -> pd.DataFrame:
    """The one-row ``glance()`` of a mixed model: information criteria, variance components, ICC, flags."""
    llf, sigma2, variances = fit.log_likelihood, fit.sigma2, fit.variances
    if fit.re_variance is not None:  # random slopes: Nakagawa's ICC, variances and correlations as VarCorr
        total = fit.re_variance + sigma2
        return pd.DataFrame([{
            "n": n,
            "n_groups": n_groups,
            "log_likelihood": float(llf),
            "aic": float(-2 * llf + 2 * (k + 1 + fit.n_cov_params)),
            "bic": float(-2 * llf + np.log(n) * (k + 1 + fit.n_cov_params)),
            "sigma2": float(sigma2),
            **{key: float(v) for key, v in variances.items()},
            **{key: float(v) for key, v in fit.correlations.items()},
            "icc": float(fit.re_variance / total) if total > 0 else np.nan,
            "boundary": bool(fit.boundary),
            "converged": bool(fit.converged),
            "method": method,
            "engine": engine,
            "cov_type": fit.cov_type,
            "formula": formula,
        }])
    total_var = sigma2 + sum(variances.values())
    k = k + 1 + len(variances)  # fixed effects, residual variance, one variance per grouping
    return pd.DataFrame([{
        "n": n,
        "n_groups": n_groups,
        "log_likelihood": float(llf),
        "aic": float(-2 * llf + 2 * k),
        "bic": float(-2 * llf + np.log(n) * k),
        "sigma2": float(sigma2),
        **{key: float(v) for key, v in variances.items()},
        "icc": float(variances[f"var_{groups}"] / total_var) if total_var > 0 else np.nan,
        **{f"icc_{key[4:]}": float(v / total_var) if total_var > 0 else np.nan
           for key, v in variances.items() if key != f"var_{groups}"},
        "boundary": bool(fit.boundary),
        "converged": bool(fit.converged),
        "method": method,
        "engine": engine,
        "cov_type": f"random intercept: {groups}" + (f" + {vc_col}" if vc_col else ""),
        "formula": formula,
    }])


def _warn_boundary(groups, how) -> str:
    return warn_caveat(
        f"The random-intercept variance of {groups!r} is {how}: the groups add no variance beyond the residual. "
        "Fixed effects of group-level covariates can then be degenerate (statsmodels MixedLM may even return "
        "them as exactly zero while claiming convergence); compare with fit_ols(..., cluster=...) and report "
        "the ICC as about 0. Flagged in glance()['boundary']."
    )


def _nested_components(frame: pd.DataFrame, outer: str, name: str):
    """The variance component ``{name: "0 + C(_nested)"}`` of ``MixedLM.from_formula``, built without patsy.

    statsmodels evaluates the formula once per ``outer`` group (a patsy design
    for each of thousands of teams: seconds); the matrices are the same here:
    per group in sorted order, its rows in order, one 0/1 column per nested
    level in sorted order (patsy's), named ``C(_nested)[level]``, row-major
    as patsy's.
    """
    from statsmodels.regression.mixed_linear_model import VCSpec  # deferred: statsmodels is heavy

    nested = frame["_nested"]
    by_group = frame.groupby(frame[outer].to_numpy()).groups
    mats, names = [], []
    for key in sorted(by_group.keys()):
        values = nested.loc[by_group[key]].to_numpy()
        levels, codes = np.unique(values, return_inverse=True)
        mat = np.zeros((len(values), len(levels)))
        mat[np.arange(len(values)), codes] = 1.0
        mats.append(mat)
        names.append([f"C(_nested)[{level}]" for level in levels])
    return VCSpec([name], [names], [mats])


def _statsmodels_mixed_model(X, y, sub, *, groups, vc):
    """The statsmodels MixedLM of the design, and how its variances map to ``var_<grouping>`` names."""
    from statsmodels.regression.mixed_linear_model import MixedLM  # deferred: statsmodels is heavy

    if not isinstance(vc, (str, dict)):
        model = MixedLM(y, X, groups=sub[groups].astype(str).to_numpy())
        return model, {f"var_{groups}": "re"}
    frame = sub.copy()
    frame["_y"] = y
    if isinstance(vc, str):
        frame["_nested"] = sub[vc].astype(str) + "/" + sub[groups].astype(str)
        outer = vc
        var_names = {f"var_{vc}": "re", f"var_{groups}": groups}
    else:
        outer = groups
        var_names = {f"var_{groups}": "re", **{f"var_{k}": k for k in vc}}
    frame[outer] = frame[outer].astype(str)
    if isinstance(vc, str):
        components = _nested_components(frame, outer, groups)
    else:  # the user's variance-component formulas: statsmodels builds them
        components = MixedLM.from_formula("_y ~ 1", frame, groups=outer, re_formula="1", vc_formula=vc).exog_vc
    model = MixedLM(y, X, groups=frame[outer].to_numpy(), exog_re=np.ones((len(y), 1)), exog_vc=components)
    return model, var_names


def _fit_statsmodels_mixed(X, y, sub, *, groups, vc, reml) -> _MixedFit:
    """General case through statsmodels MixedLM, with a boundary check."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning  # deferred: statsmodels is heavy

    model, var_names = _statsmodels_mixed_model(X, y, sub, groups=groups, vc=vc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(reml=reml)
    messages = [str(w.message) for w in caught]
    fe = np.asarray(res.fe_params, float)
    p = X.shape[1]
    cov = _gls_cov(model, res, p)
    variances = {}
    vcomp = dict(zip(model.exog_vc.names, np.atleast_1d(res.vcomp))) if getattr(model, "k_vc", 0) else {}
    for key, src in var_names.items():
        variances[key] = float(np.asarray(res.cov_re).ravel()[0]) if src == "re" else float(vcomp[src])
    sigma2 = float(res.scale)
    near_zero = [k for k, v in variances.items() if v <= 1e-6 * sigma2]
    boundary = bool(near_zero) or any("boundary" in m or "singular" in m for m in messages)
    converged = bool(res.converged) and not any(isinstance(w.message, ConvergenceWarning) for w in caught if "failed" in str(w.message))
    notes = []
    if boundary:
        which = near_zero[0][4:] if near_zero else groups
        notes.append(_warn_boundary(which, "at or near zero in statsmodels MixedLM (a boundary fit)"))
    if not converged:
        notes.append(warn_caveat("statsmodels MixedLM did not converge: " + "; ".join(dict.fromkeys(messages))[:300]))
    ranef_dict = res.random_effects
    ranef = pd.DataFrame(
        {"group": list(ranef_dict.keys()), "estimate": [float(np.asarray(v).ravel()[0]) for v in ranef_dict.values()]}
    )
    return _MixedFit(
        params=fe, cov=cov, variances=variances, sigma2=sigma2, log_likelihood=float(res.llf), boundary=boundary,
        converged=converged, ranef=ranef, fitted=np.asarray(res.fittedvalues, float), model=res, caveats=notes,
    )


def _gls_cov(model, res, p):
    """Covariance of the fixed effects given the variance components, as lme4's ``vcov``.

    statsmodels inverts the joint observed information of fixed effects and
    variance parameters, which differs from ``sigma^2 (X'V^-1 X)^-1`` (what
    lme4 reports) by a few per cent when a variance has few groups.
    """
    cov_re = np.asarray(res.cov_re, float) / res.scale
    vcomp = np.atleast_1d(np.asarray(res.vcomp, float)) / res.scale
    A = np.zeros((p, p))
    for i in range(len(model.group_labels)):
        X = model.exog_li[i]
        Z = model._aex_r[i]
        k_re = cov_re.shape[0]
        d_vc = model._expand_vcomp(vcomp, i) if getattr(model, "k_vc", 0) else np.zeros(0)
        D = np.zeros((Z.shape[1], Z.shape[1]))
        D[:k_re, :k_re] = cov_re
        D[np.arange(k_re, Z.shape[1]), np.arange(k_re, Z.shape[1])] = d_vc
        # X'(I + Z D Z')^-1 X = X'X - X'Z D (I + Z'Z D)^-1 Z'X  (Woodbury, D may be singular)
        ZtX = Z.T @ X
        inner = np.linalg.solve(np.eye(Z.shape[1]) + (Z.T @ Z) @ D, ZtX)
        A += X.T @ X - ZtX.T @ D @ inner
    return res.scale * np.linalg.inv(A)


# --------------------------------------------------------------------------- within


def fit_within(
    data: pd.DataFrame,
    formula: str,
    *,
    unit: str = "employee_id",
    cluster: str | list[str] | None = None,
    alpha: float = 0.05,
) -> RegressionResult:
    """Fit a within-person (unit fixed-effects) model: how engagement changes when x changes.

    Every unit's own mean is subtracted from the outcome and the covariates,
    so stable differences between people (personality, role, team) cannot
    confound the estimates. Covariates constant within every unit are not
    identified and raise an error.

    Parameters
    ----------
    {data}
    formula : str
        ``"outcome ~ time-varying covariates"`` (no intercept is estimated),
        e.g. ``"engagement ~ alignment_cascade + manager_program + C(wave)"``.
    unit : str, default "employee_id"
        Column identifying the person whose mean is removed.
    cluster : str or list of str, optional
        Column defining clusters for the standard errors; ``unit`` by default.
        A list clusters several ways (multiway CR1, as :func:`fit_ols`), e.g.
        ``unit="manager_id", cluster=["manager_id", "employee_id"]`` for a
        team's repeated surveys whose people answer several waves.
    {alpha}

    Returns
    -------
    RegressionResult
        ``tidy()`` as :func:`fit_ols` (``std_estimate`` in SDs of the within
        variation); ``glance()``: ``n, n_groups (units), n_clusters,
        r_squared_within, cov_type, formula`` (several cluster columns:
        ``n_clusters`` is the smallest count and ``n_clusters_<column>`` gives each).

    Raises
    ------
    ModelError
        A covariate that never changes within a unit, no unit with two rows,
        or fewer than 2 clusters.

    Warns
    -----
    StatisticalWarning
        Fewer than 30 clusters (also kept in the result's ``caveats``).

    See Also
    --------
    fit_mixed, fit_ols

    Notes
    -----
    OLS on the demeaned data with CR1 cluster-robust errors, small-sample factor
    ``G/(G-1) * (N-1)/(N-K)`` with ``K`` the number of slopes (as Stata's
    ``xtreg, fe vce(cluster id)``), and the normal reference for tests and
    intervals (as statsmodels ``OLS(...).fit(cov_type="cluster")`` on the
    demeaned data). Coefficients equal those of
    ``lm(y ~ x + factor(employee_id))`` in R.

    Examples
    --------
    {example}
    >>> res = ar.fit_within(panel, "engagement ~ alignment + C(wave)")
    >>> "alignment" in set(res.tidy()["term"])
    True
    """
    columns = _cluster_columns(cluster) or [unit]
    lhs, rhs, y, X, sub, info = _prepare(data, formula, extra=[unit, *(c for c in columns if c != unit)],
                                         intercept=False)
    units = cluster_codes(sub[unit])
    if np.bincount(units).max() < 2:
        raise ModelError(f"No {unit!r} has two or more rows; a within-person model needs repeated measures.")
    Xd = pd.DataFrame(demean(X.to_numpy(float), units), columns=X.columns)
    yd = demean(y, units)
    flat = [c for c in Xd.columns if np.allclose(Xd[c], 0.0)]
    if flat:
        raise ModelError(
            f"Covariate(s) {flat} never change within any {unit!r}: a within-person model cannot estimate them. "
            "Drop them, or use fit_mixed for between-person effects."
        )
    codes, caveats, counts = _multiway_codes(sub, columns)
    params, cov, fitted = _ols_cluster(Xd.to_numpy(float), yd, codes)
    resid = yd - fitted
    table = tidy_table(Xd.columns, params, np.sqrt(np.diag(cov)), alpha=alpha,  # normal, as statsmodels' cluster
                       std_estimate=_std_estimates(Xd, params, yd))
    stats = pd.DataFrame(
        [
            {
                "n": len(yd),
                "n_groups": int(units.max() + 1),
                **_cluster_count_stats(counts),
                "r_squared_within": float(1 - np.sum(resid**2) / np.sum(yd**2)),
                "cov_type": _cov_label(columns),
                "formula": formula,
            }
        ]
    )
    return _regression_result(
        RegressionResult, "within", table, stats, lhs=lhs, alpha=alpha, formula=formula, info=info, params=params,
        cov=cov, link="identity", model=None, caveats=caveats, extras={"residuals": _residual_table(fitted, resid)},
    )


def _ols_cluster(X: np.ndarray, y: np.ndarray, codes: np.ndarray):
    """OLS with CR1 cluster-robust covariance (``K`` = the columns of ``X``): (params, cov, fitted).

    The same algebra as statsmodels ``OLS(y, X).fit(cov_type="cluster")``:
    the pseudo-inverse gives the coefficients and the bread ``(X'X)^-1``.
    """
    pinv = np.linalg.pinv(X)
    params = pinv @ y
    fitted = X @ params
    bread = pinv @ pinv.T
    cov = cluster_robust_cov(X * (y - fitted)[:, None], bread, codes, n_params=X.shape[1])
    return params, cov, fitted


# --------------------------------------------------------------------------- logit


def _irls_logit(X, y):
    """Coefficients of a logistic regression by the shared engine; None when it separates."""
    fit = fit_logistic(X, y)
    return None if fit.separated else fit.params


def fit_logit(
    data: pd.DataFrame, formula: str, *, cluster: str | list[str] | None = None, alpha: float = 0.05
) -> RegressionResult:
    """Fit a logistic regression of a 0/1 outcome, with cluster-robust errors when asked.

    Parameters
    ----------
    {data}
    formula : str
        ``"outcome ~ right-hand side"``, e.g. ``"left_next_cycle ~ alignment_cascade + rating"``.
    cluster : str or list of str, optional
        Column whose values define clusters (usually ``"manager_id"``);
        standard errors are then cluster-robust. A list clusters several
        ways at once, e.g. ``["manager_id", "cycle"]`` (multiway).
    {alpha}

    Returns
    -------
    RegressionResult
        ``tidy()``: ``term, estimate (log-odds), std_error, statistic, p_value,
        conf_low, conf_high, exp_estimate, exp_conf_low, exp_conf_high`` (odds
        ratios) and ``std_estimate`` (log-odds per SD of a continuous covariate).
        ``glance()``: ``n, events, n_groups, log_likelihood, aic, bic, n_params,
        pseudo_r_squared, cov_type, formula``; with several cluster columns ``n_groups`` is the
        smallest count and ``n_groups_<column>`` gives each.

    Raises
    ------
    ModelError
        Outcome not 0/1, unknown column, constant covariate, infinite values,
        a ``cluster`` column with fewer than 2 clusters, or a ``cluster`` that
        is not a column name or list of them.

    Warns
    -----
    StatisticalWarning
        Perfect or quasi-complete separation (a level with only or no events,
        estimates running off to infinity), or fewer than 30 clusters; the
        warning names the terms and is kept in the result's ``caveats``.

    See Also
    --------
    fit_ordinal

    Notes
    -----
    Newton-Raphson by the toolkit's one logistic engine, whose separation rule
    decides the caveat; ``model`` holds that fit (coefficients, model-based
    covariance, fitted probabilities, the ``separated`` flag). Clustered errors
    are CR1 (factor ``G/(G-1) * (N-1)/(N-K)``, normal reference), as statsmodels
    ``Logit(...).fit(cov_type="cluster")``, and match
    ``sandwich::vcovCL(glm(y ~ x, binomial), cluster = ~manager_id, type = "HC1")``.
    With several cluster columns the variance is the multiway one of Cameron,
    Gelbach and Miller: the sum over every intersection ``S`` of the columns of
    ``(-1)^(|S|+1) G_S/(G_S-1)`` times its clustered meat, times ``(N-1)/(N-K)``,
    matching ``sandwich::vcovCL(fit, cluster = ~ a + b, type = "HC1")`` with its
    defaults (``cadjust = TRUE``, ``multi0 = FALSE``, ``fix = FALSE``: no
    eigenvalue fix, so a variance can in rare cases be negative and its
    standard error NaN); tests and intervals then use the normal reference.
    ``pseudo_r_squared`` is McFadden's ``1 - logLik / logLik(intercept only)``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> cycles = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis.cycles
    >>> res = ar.fit_logit(cycles, "left_next_cycle ~ alignment_cascade", cluster="manager_id")
    >>> "exp_estimate" in res.tidy().columns
    True
    """
    columns = _cluster_columns(cluster)
    lhs, rhs, y, X, sub, info = _prepare(data, formula, extra=columns, binary=True)
    codes, caveats, counts = _multiway_codes(sub, columns)
    design = X.to_numpy(float)
    fit = fit_logistic(design, y)
    cov = cluster_robust_cov(fit.scores(design, y), fit.cov, codes) if columns else fit.cov
    se = np.sqrt(np.diag(cov))
    slopes = [i for i, c in enumerate(X.columns) if c != "Intercept"]
    caveats += check_estimates(
        X.columns[slopes], fit.params[slopes], se[slopes], model=f"logistic model {formula!r}",
        X=X.iloc[:, slopes], y=y, kind="binary", converged=not fit.separated,
    )
    table = tidy_table(X.columns, fit.params, se, alpha=alpha, ratio=True,
                       std_estimate=_std_estimates(X, fit.params))
    stats = pd.DataFrame(
        [
            {
                "n": len(y),
                "events": int(y.sum()),
                **_group_stats(counts),
                "log_likelihood": fit.log_likelihood,
                "aic": -2 * fit.log_likelihood + 2 * X.shape[1],
                "bic": -2 * fit.log_likelihood + np.log(len(y)) * X.shape[1],
                "n_params": X.shape[1],
                "pseudo_r_squared": 1 - fit.log_likelihood / _null_log_likelihood(y),
                "cov_type": _cov_label(columns),
                "formula": formula,
            }
        ]
    )
    return _regression_result(
        RegressionResult, "logit", table, stats, lhs=lhs, alpha=alpha, formula=formula, info=info,
        params=fit.params, cov=cov, link="logit", model=fit, caveats=caveats, extras={},
    )


def _null_log_likelihood(y: np.ndarray) -> float:
    """Log-likelihood of the intercept-only logistic model (McFadden's baseline): every p = mean(y)."""
    share = float(np.mean(y))
    return float(np.sum(y * np.log(share) + (1 - y) * np.log(1 - share)))


# --------------------------------------------------------------------------- ordinal


def fit_ordinal(data: pd.DataFrame, formula: str, *, alpha: float = 0.05) -> OrdinalResult:
    """Fit a proportional-odds (ordered logit) model and check the proportional-odds assumption.

    Parameters
    ----------
    {data}
    formula : str
        ``"outcome ~ right-hand side"``; the outcome is ordered (a review rating,
        a single Likert item). Its sorted distinct values (or the categories of
        an ordered Categorical) are the ordered levels. No intercept is fitted:
        the cut-points take its place.
    {alpha}

    Returns
    -------
    OrdinalResult
        ``tidy()``: slopes (log cumulative odds of a *higher* category) with
        ``exp_estimate`` odds ratios and ``std_estimate`` (per SD), then the
        cut-points ``"1|2"``, ``"2|3"``, ... on the latent scale (as ``polr``'s
        ``zeta``; their standard errors by the delta method).
        ``glance()``: ``n, n_levels, log_likelihood, aic, bic, n_params,
        pseudo_r_squared, brant_chi2, brant_df, brant_p_value, cov_type, formula``.
        ``extras["proportional_odds"]``: the Brant test per term and omnibus
        (``term, chi2, df, p_value``). ``extras["cumulative_logits"]``: the
        slopes of separate binary logits for ``Y > k`` (``term, cut, estimate,
        std_error``), which the assumption says are equal across cuts.

    Raises
    ------
    ModelError
        Fewer than 3 levels, unknown column, constant covariate, infinite values.

    Warns
    -----
    StatisticalWarning
        The Brant omnibus test rejects proportional odds at ``alpha``, or a
        slope separates (a level all in the lowest or highest category, an
        absurd estimate); kept in the result's ``caveats``.

    See Also
    --------
    fit_logit

    Notes
    -----
    statsmodels ``OrderedModel(distr="logit")``: ``P(Y <= k) = F(zeta_k - x'b)``,
    the parameterisation of ``MASS::polr``. The Brant (1990) test compares the
    slopes of the ``J-1`` binary logits with a Wald test using their joint
    covariance (as ``brant::brant`` in R and Stata's ``brant``).

    References
    ----------
    Brant, R. (1990). Assessing proportionality in the proportional odds model
    for ordinal logistic regression. *Biometrics*, 46, 1171-1178.

    Examples
    --------
    >>> import alignment_research as ar
    >>> cycles = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis.cycles
    >>> res = ar.fit_ordinal(cycles, "rating ~ alignment_cascade")
    >>> "proportional_odds" in res.extras
    True
    """
    lhs, rhs = split_formula(formula)
    frame, levels = _ordinal_outcome(data, lhs)
    _, _, y, X, sub, info = _prepare(frame, formula, intercept=False)
    y = y.astype(int)
    present = np.unique(y)
    if len(present) < len(levels):
        levels = [levels[i] for i in present]
        y = np.searchsorted(present, y)
    J, p = len(levels), X.shape[1]
    res, est, cov = _fit_proportional_odds(X, y)
    se = np.sqrt(np.diag(cov))
    label = [_level_label(v) for v in levels]
    names = list(X.columns) + [f"{label[k]}|{label[k + 1]}" for k in range(J - 1)]
    std = np.r_[_std_estimates(X, est[:p]), np.full(J - 1, np.nan)]
    table = tidy_table(names, est, se, alpha=alpha, ratio=True, std_estimate=std)
    table.loc[p:, RATIO_COLUMNS] = np.nan
    caveats = check_estimates(
        X.columns, est[:p], se[:p], model=f"ordinal model {formula!r}", X=X, y=y, kind="ordinal",
    )  # not BFGS's own flag: at gtol=1e-10 it reports non-convergence at the optimum (R's estimates)
    brant, cumlogits = _brant_test(X.to_numpy(float), y, J, list(X.columns))
    omni = brant.iloc[-1]
    if omni["p_value"] < alpha:
        caveats.append(warn_caveat(
            f"The Brant test rejects proportional odds (chi2 = {omni['chi2']:.1f}, df = {int(omni['df'])}, "
            f"p = {omni['p_value']:.3g}); see extras['proportional_odds'] for the terms responsible and consider "
            "separate binary logits (extras['cumulative_logits'])."
        ))
    stats = _ordinal_stats(res, y, omni, formula=formula)
    return _regression_result(
        OrdinalResult, "ordinal", table, stats, lhs=lhs, alpha=alpha, formula=formula, info=info, params=est,
        cov=cov, link="ordinal", model=res, caveats=caveats,
        extras={"proportional_odds": brant, "cumulative_logits": cumlogits},
    )


def _ordinal_stats(res, y: np.ndarray, omni: pd.Series, *, formula: str) -> pd.DataFrame:
    """The one-row ``glance()`` of a proportional-odds fit, with McFadden's R² and the Brant omnibus test."""
    counts = np.bincount(y)
    null_ll = float(np.sum(counts * np.log(counts / len(y))))  # every row at the observed shares
    return pd.DataFrame(
        [
            {
                "n": len(y),
                "n_levels": len(counts),
                "log_likelihood": float(res.llf),
                "aic": float(res.aic),
                "bic": float(-2 * res.llf + np.log(len(y)) * len(res.params)),
                "n_params": len(res.params),
                "pseudo_r_squared": 1 - float(res.llf) / null_ll,
                "brant_chi2": float(omni["chi2"]),
                "brant_df": int(omni["df"]) if pd.notna(omni["df"]) else np.nan,  # NaN: binary logits separate
                "brant_p_value": float(omni["p_value"]),
                "cov_type": "nonrobust",
                "formula": formula,
            }
        ]
    )


def _ordinal_outcome(data: pd.DataFrame, lhs: str) -> tuple[pd.DataFrame, list]:
    """Code an ordered outcome 0..J-1 (rows without it dropped); return the data and the ordered levels."""
    check_columns(data, [lhs])
    check_finite(data, [lhs])
    frame = data.dropna(subset=[lhs]).reset_index(drop=True)
    outcome = frame[lhs]
    if isinstance(outcome.dtype, pd.CategoricalDtype):
        levels = [lv for lv in outcome.cat.categories if (outcome == lv).any()]
        codes = pd.Categorical(outcome, categories=levels).codes
    else:
        levels = sorted(pd.unique(outcome))
        codes = np.searchsorted(np.asarray(levels), outcome.to_numpy())
    if len(levels) < 3:
        raise ModelError(f"An ordinal model needs at least 3 ordered levels of {lhs!r}; found {levels}. Use fit_logit.")
    return frame.assign(**{lhs: codes.astype(float)}), levels


def _fit_proportional_odds(X: pd.DataFrame, y: np.ndarray):
    """Fit ``OrderedModel(distr="logit")``; return the fit, slopes then cut-points, and their covariance.

    statsmodels estimates the cut-points as ``a_1, log(zeta_2 - zeta_1), ...``;
    they are turned into ``zeta_1 = a_1, zeta_k = a_1 + sum_{i<=k} exp(a_i)``
    (``polr``'s ``zeta``) with the delta method for their covariance.
    """
    from statsmodels.miscmodels.ordinal_model import OrderedModel  # deferred: statsmodels is heavy

    model = OrderedModel(y, X, distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' HessianInversionWarning is checked below via bse
        res = model.fit(method="bfgs", maxiter=5000, disp=False, gtol=1e-10)
    p = X.shape[1]
    params = np.asarray(res.params, float)
    try:
        cov = np.asarray(res.cov_params(), float)
    except ValueError:  # the Hessian could not be inverted (separation): no standard errors, flagged by the caller
        cov = np.full((len(params), len(params)), np.nan)
    a = params[p:]
    zeta = model.transform_threshold_params(params)[1:-1]
    n_cuts = len(a)
    jac = np.zeros((n_cuts, n_cuts))
    jac[:, 0] = 1.0
    for k in range(1, n_cuts):
        jac[k:, k] = np.exp(a[k])
    full_jac = np.eye(len(params))
    full_jac[p:, p:] = jac
    return res, np.r_[params[:p], zeta], full_jac @ cov @ full_jac.T


def _level_label(value) -> str:
    """Label an outcome level: whole-number floats as integers (a rating of 3.0 reads as "3")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _brant_test(X: np.ndarray, y: np.ndarray, J: int, names: list[str]):
    """Brant's Wald test of equal slopes across the J-1 cumulative binary logits."""
    n, p = X.shape
    X1 = np.column_stack([np.ones(n), X])
    betas, pis, rows = [], [], []
    for k in range(J - 1):
        z = (y > k).astype(float)
        b = _irls_logit(X1, z)
        if b is None:
            empty = pd.DataFrame({"term": names + ["omnibus"], "chi2": np.nan, "df": np.nan, "p_value": np.nan})
            return empty, pd.DataFrame(columns=["term", "cut", "estimate", "std_error"])
        betas.append(b)
        pis.append(1 / (1 + np.exp(-(X1 @ b))))
    K = J - 1
    inv_info = []
    for k in range(K):
        w = pis[k] * (1 - pis[k])
        inv_info.append(np.linalg.inv(X1.T @ (X1 * w[:, None])))
    V = np.zeros((K * p, K * p))
    for k in range(K):
        for m in range(k, K):
            w = pis[m] - pis[k] * pis[m]  # P(Y > max(k, m)) - P(Y > k) P(Y > m)
            block = inv_info[k] @ (X1.T @ (X1 * w[:, None])) @ inv_info[m]
            V[k * p : (k + 1) * p, m * p : (m + 1) * p] = block[1:, 1:]
            V[m * p : (m + 1) * p, k * p : (k + 1) * p] = block[1:, 1:].T
        se = np.sqrt(np.diag(inv_info[k]))[1:]
        for j in range(p):
            rows.append({"term": names[j], "cut": f"> {k + 1}", "estimate": betas[k][1 + j], "std_error": se[j]})
    bstar = np.concatenate([b[1:] for b in betas])

    def wald(cols):
        D = []
        for k in range(1, K):
            for j in cols:
                r = np.zeros(K * p)
                r[j] = 1.0
                r[k * p + j] = -1.0
                D.append(r)
        D = np.asarray(D)
        d = D @ bstar
        chi2 = float(d @ np.linalg.solve(D @ V @ D.T, d))
        df = D.shape[0]
        return chi2, df, float(st.chi2.sf(chi2, df))

    out = [dict(zip(("chi2", "df", "p_value"), wald([j])), term=names[j]) for j in range(p)]
    out.append(dict(zip(("chi2", "df", "p_value"), wald(range(p))), term="omnibus"))
    return pd.DataFrame(out)[["term", "chi2", "df", "p_value"]], pd.DataFrame(rows)


# --------------------------------------------------------------------------- mediation


def _ols_beta(X, y):
    return np.linalg.lstsq(X, y, rcond=None)[0]


def _mediation_effects(T, M, Y, C, *, binary, t1, t0):
    """Plug-in counterfactual effects (Imai et al.): average indirect, direct, total, share."""
    n = len(T)
    Xm = np.column_stack([np.ones(n), T, C])
    a = _ols_beta(Xm, M)
    Xy = np.column_stack([np.ones(n), T, M, C])
    b = _irls_logit(Xy, Y) if binary else _ols_beta(Xy, Y)
    if b is None:
        return None
    m1 = M + a[1] * (t1 - T)  # each unit's mediator under treatment t1, keeping its own residual
    m0 = M + a[1] * (t0 - T)

    def mean_y(t, m):
        eta = b[0] + b[1] * t + b[2] * m + (C @ b[3:] if C.shape[1] else 0.0)
        return float(np.mean(1 / (1 + np.exp(-eta)))) if binary else float(np.mean(eta))

    acme = [mean_y(t, m1) - mean_y(t, m0) for t in (t1, t0)]
    ade = [mean_y(t1, m) - mean_y(t0, m) for m in (m1, m0)]
    total = mean_y(t1, m1) - mean_y(t0, m0)
    indirect, direct = float(np.mean(acme)), float(np.mean(ade))
    share = indirect / total if total != 0 else np.nan
    return {"indirect": indirect, "direct": direct, "total": total, "share_mediated": share, "a": a[1], "b": b[2]}


def fit_mediation(
    data: pd.DataFrame,
    *,
    treatment: str,
    mediator: str,
    outcome: str,
    covariates=(),
    cluster: str | None = None,
    treat_value: float = 1.0,
    control_value: float = 0.0,
    n_boot: int = 500,
    seed: int = 0,
    alpha: float = 0.05,
) -> MediationResult:
    """Estimate how much of an effect runs through a mediator, with bootstrap intervals.

    Two models are fitted: the mediator on the treatment (and covariates), by
    OLS; the outcome on the treatment, the mediator (and covariates), by OLS
    or, for a 0/1 outcome such as ``left_next_cycle``, by logistic regression.
    E.g. manager programme -> team alignment -> engagement, or alignment ->
    engagement -> voluntary exit.

    Parameters
    ----------
    {data}
    treatment : str
        The exposure column (0/1 or continuous).
    mediator : str
        The continuous mediator column.
    outcome : str
        The outcome column; a 0/1 outcome is modelled by logistic regression and
        effects are then differences in probability.
    covariates : sequence of str, default ()
        Numeric adjustment columns used in both models.
    {cluster}
        Bootstrap resamples whole clusters when given.
    treat_value, control_value : float, default 1.0 and 0.0
        The two treatment values compared (e.g. alignment 0.8 vs 0.4).
    n_boot : int, default 500
        Bootstrap resamples.
    seed : int, default 0
        Seed of the bootstrap (``np.random.default_rng``).
    {alpha}

    Returns
    -------
    MediationResult
        ``tidy()``: rows ``indirect``, ``direct``, ``total``, ``share_mediated``,
        ``a_path`` (treatment -> mediator), ``b_path`` (mediator -> outcome) with
        ``estimate, std_error`` (bootstrap SD), ``statistic, p_value`` (normal,
        from the bootstrap SE), ``conf_low, conf_high`` (percentile bootstrap).
        ``glance()``: ``n, n_boot, n_failed, outcome_model, cov_type, formula``.
        ``extras["bootstrap"]``: the bootstrap draws.

    Raises
    ------
    ModelError
        Unknown or non-numeric column, infinite values, too few rows, or
        ``cluster`` with fewer than 2 clusters.

    Warns
    -----
    StatisticalWarning
        Fewer than 30 clusters (also kept in the result's ``caveats``).

    See Also
    --------
    fit_ols, fit_logit

    Notes
    -----
    Effects are the average causal mediation effect and average direct effect
    of Imai, Keele & Tingley (2010) with each unit's counterfactual mediator
    ``M_i(t) = M_i + a (t - T_i)`` (its own residual kept), averaged over the two
    treatment arms. For linear models this equals the product of coefficients:
    indirect ``= a b (t1 - t0)``, direct ``= c' (t1 - t0)``. The share mediated
    is indirect / total and is unstable when the total effect is near zero.
    Causal reading needs no unmeasured mediator-outcome confounding.

    References
    ----------
    Imai, K., Keele, L., & Tingley, D. (2010). A general approach to causal
    mediation analysis. *Psychological Methods*, 15(4), 309-334.

    Examples
    --------
    {example}
    >>> res = ar.fit_mediation(panel, treatment="manager_program", mediator="alignment",
    ...                        outcome="engagement", n_boot=50, seed=1)
    >>> list(res.tidy()["term"][:3])
    ['indirect', 'direct', 'total']
    """
    covariates = list(covariates)
    sub, T, M, Y, C = _mediation_arrays(data, [treatment, mediator, outcome, *covariates], cluster)
    binary = bool(np.isin(Y, [0.0, 1.0]).all())
    effects = dict(binary=binary, t1=treat_value, t0=control_value)
    point = _mediation_effects(T, M, Y, C, **effects)
    if point is None:
        raise ModelError("The outcome model could not be fitted (separation); simplify the covariates.")
    rng = np.random.default_rng(seed)
    codes, caveats = _cluster_codes(sub, cluster)
    boot, failed = _bootstrap_mediation(T, M, Y, C, codes, n_boot=n_boot, rng=rng, **effects)
    if len(boot) < 2:  # too few draws for an interval: keep the columns, no rows
        boot = pd.DataFrame(columns=list(point), dtype=float)
    covs = "".join(f" + {c}" for c in covariates)
    stats = pd.DataFrame(
        [
            {
                "n": len(sub),
                "n_boot": n_boot,
                "n_failed": failed,
                "outcome_model": "logit" if binary else "linear",
                "effect_scale": "probability difference" if binary else "outcome units",
                "cov_type": f"bootstrap ({'clusters: ' + cluster if cluster else 'rows'})",
                "formula": f"{mediator} ~ {treatment}{covs}; {outcome} ~ {treatment} + {mediator}{covs}",
            }
        ]
    )
    return MediationResult(
        name="mediation", table=_mediation_table(point, boot, alpha=alpha), stats=stats, model=None,
        extras={"bootstrap": boot}, caveats=caveats, alpha=alpha, outcome=_outcome_words(outcome),
        scale="difference", measure="probability difference" if binary else "difference",
    )


def _mediation_arrays(data: pd.DataFrame, cols: list[str], cluster: str | None):
    """Complete numeric rows of treatment, mediator, outcome (and covariates): (rows, T, M, Y, C)."""
    check_columns(data, cols + [cluster])
    sub = data.dropna(subset=cols + ([cluster] if cluster else [])).reset_index(drop=True)
    try:
        arr = sub[cols].astype(float).to_numpy()
    except (TypeError, ValueError):
        raise ModelError(f"Columns {cols} must be numeric for mediation; encode categories as 0/1 first.") from None
    check_finite(data, cols)
    T, M, Y, C = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3:]
    if len(sub) < 10 + C.shape[1]:
        raise ModelError(f"Only {len(sub)} complete rows for a mediation analysis.")
    for name, v in zip(cols[:3], (T, M, Y)):
        if np.ptp(v) == 0:
            raise ModelError(f"{name!r} does not vary in the {len(v)} rows used.")
    return sub, T, M, Y, C


def _bootstrap_mediation(T, M, Y, C, clusters, *, n_boot, rng, **effects) -> tuple[pd.DataFrame, int]:
    """Effects on ``n_boot`` resamples of rows (or of whole clusters); return the draws and the failures."""
    if clusters is not None:
        members = pd.Series(np.arange(len(T))).groupby(clusters).apply(np.asarray).to_list()
    size = len(members) if clusters is not None else len(T)
    picks = [rng.integers(0, size, size) for _ in range(n_boot)]  # drawn first, in the order they always were
    if not effects["binary"]:  # linear paths: every draw from per-cluster cross-products, no loop over draws
        codes = np.arange(len(T))  # each row its own unit, or the position of its cluster among the members
        if clusters is not None:
            codes = np.repeat(np.arange(size), [len(rows) for rows in members])[np.argsort(np.concatenate(members))]
        return _linear_mediation_draws(T, M, Y, C, codes, size, picks, **effects), 0
    if clusters is not None:
        resamples = [np.concatenate([members[i] for i in pick]) for pick in picks]
    else:
        resamples = picks
    results = run_bootstrap(lambda idx: _mediation_effects(T[idx], M[idx], Y[idx], C[idx], **effects), resamples)
    draws = [e for e in results if e is not None]
    return pd.DataFrame(draws), len(results) - len(draws)


def _linear_mediation_draws(T, M, Y, C, codes, n_units, picks, *, binary, t1, t0) -> pd.DataFrame:
    """The linear mediation effects of every resample at once.

    A resample that takes unit ``g`` ``k`` times adds ``k`` times that unit's
    cross-products, so each draw's normal equations are its unit counts times
    the per-unit cross-products: the same OLS paths as refitting the resampled
    rows, and the effects are those of :func:`_mediation_effects` for linear
    paths (indirect ``a b (t1 - t0)``, direct ``c' (t1 - t0)``).
    """
    n = len(T)
    Z = np.column_stack([np.ones(n), T, C, M, Y])  # a path: M on (1, T, C); b path: Y on (1, T, M, C)
    p = Z.shape[1]
    per_unit = np.zeros((n_units, p * p))
    np.add.at(per_unit, codes, (Z[:, :, None] * Z[:, None, :]).reshape(n, p * p))
    k = C.shape[1]
    xa = np.arange(2 + k)  # 1, T, C
    xb = np.r_[0, 1, 2 + k, np.arange(2, 2 + k)]  # 1, T, M, C: the b path's own column order
    out = []
    chunk = max(1, 2_000_000 // max(n_units, 1))
    for s in range(0, len(picks), chunk):
        counts = np.stack([np.bincount(pick, minlength=n_units) for pick in picks[s:s + chunk]]).astype(float)
        S = (counts @ per_unit).reshape(-1, p, p)
        a = _solve_stack(S[:, xa[:, None], xa], S[:, xa, 2 + k])
        b = _solve_stack(S[:, xb[:, None], xb], S[:, xb, 3 + k])
        indirect = a[:, 1] * b[:, 2] * (t1 - t0)
        direct = b[:, 1] * (t1 - t0)
        total = direct + indirect
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(total != 0, indirect / total, np.nan)
        out.append(np.column_stack([indirect, direct, total, share, a[:, 1], b[:, 2]]))
    values = np.vstack(out) if out else np.zeros((0, 6))
    return pd.DataFrame(values, columns=["indirect", "direct", "total", "share_mediated", "a", "b"])


def _solve_stack(A: np.ndarray, rhs: np.ndarray, *, singular: str = "min_norm") -> np.ndarray:
    """Solve a stack of systems ``A[i] x = rhs[i]`` at once.

    When one is singular: ``singular="min_norm"`` solves every system by the minimum-norm solution (normal
    equations of a resample without variation); ``"missing"`` gives NaN for the singular systems only.
    """
    try:
        return np.linalg.solve(A, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        if singular == "min_norm":
            return (np.linalg.pinv(A, hermitian=True) @ rhs[..., None])[..., 0]
    out = np.full(rhs.shape, np.nan)
    for i in range(len(A)):
        try:
            out[i] = np.linalg.solve(A[i], rhs[i])
        except np.linalg.LinAlgError:
            continue
    return out


def _mediation_table(point: dict, boot: pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    """Point effects with bootstrap SD, normal test and percentile interval (missing with under 2 draws)."""
    terms = ["indirect", "direct", "total", "share_mediated", "a", "b"]
    est = np.array([point[t] for t in terms])
    if len(boot) > 1:
        se = boot[terms].std(ddof=1).to_numpy()
        lo, hi = boot[terms].quantile(alpha / 2).to_numpy(), boot[terms].quantile(1 - alpha / 2).to_numpy()
    else:
        se = lo = hi = np.full(len(terms), np.nan)
    return tidy_table(["indirect", "direct", "total", "share_mediated", "a_path", "b_path"], est, se, alpha=alpha,
                      conf_low=lo, conf_high=hi)


# --------------------------------------------------------------------------- drivers


def _dominance(R: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """General dominance weights of a stack of correlation matrices (outcome first): (weights, R², std betas).

    Each is one row (or value) per matrix; the R² of a subset of drivers is missing where its correlations are
    singular.
    """
    k = R.shape[-1] - 1
    rxy, Rxx = R[:, 0, 1:], R[:, 1:, 1:]
    r2 = {(): np.zeros(len(R))}
    for size in range(1, k + 1):
        for S in combinations(range(k), size):
            idx = list(S)
            b = rxy[:, idx]
            r2[S] = np.einsum("ij,ij->i", b, _solve_stack(Rxx[:, idx][:, :, idx], b, singular="missing"))
    weights = np.zeros((len(R), k))
    for j in range(k):
        others = [i for i in range(k) if i != j]
        per_size = [np.mean([r2[tuple(sorted(S + (j,)))] - r2[S] for S in combinations(others, size)], axis=0)
                    for size in range(0, k)]
        weights[:, j] = np.mean(per_size, axis=0)
    return weights, r2[tuple(range(k))], _solve_stack(Rxx, rxy, singular="missing")


#: Bootstrap resamples whose correlation matrices are made in one matrix product (resamples x rows of counts).
_RESAMPLES_AT_ONCE = 64


def _resample_correlations(x: np.ndarray, resamples: list) -> tuple[np.ndarray, np.ndarray]:
    """The correlation matrix of each resample of the rows of ``x``, and whether every column varies in it.

    Each resample's means and cross-products come from its row counts (one
    matrix product for a block of resamples) instead of a copy of its rows.
    A resample whose variance of some column is at rounding level is decided
    and correlated from its rows, as ``np.std`` and ``np.corrcoef`` would.
    """
    n, p = x.shape
    centred = x - x.mean(axis=0)
    iu, ju = np.triu_indices(p)
    columns = np.hstack([centred, centred[:, iu] * centred[:, ju]])
    scale = np.maximum(centred.var(axis=0), np.finfo(float).tiny)
    corr = np.empty((len(resamples), p, p))
    varies = np.ones(len(resamples), bool)
    for s in range(0, len(resamples), _RESAMPLES_AT_ONCE):
        part = resamples[s:s + _RESAMPLES_AT_ONCE]
        counts = np.vstack([np.bincount(idx, minlength=n) for idx in part]).astype(float)
        sums = counts @ columns / n
        mean = sums[:, :p]
        cov = np.empty((len(part), p, p))
        cov[:, iu, ju] = cov[:, ju, iu] = sums[:, p:]
        cov -= mean[:, :, None] * mean[:, None, :]
        var = np.diagonal(cov, axis1=1, axis2=2)
        corr[s:s + len(part)] = cov / np.sqrt(var[:, :, None] * var[:, None, :])
        for r in np.flatnonzero((var < 1e-8 * scale).any(axis=1)):  # a column (nearly) constant in the resample
            rows = x[part[r]]
            varies[s + r] = bool(np.all(np.std(rows, axis=0) > 0))
            if varies[s + r]:
                corr[s + r] = np.corrcoef(rows, rowvar=False)
    return corr, varies


def driver_analysis(
    data: pd.DataFrame,
    outcome: str = "engagement",
    drivers=("alignment", "leadership", "feedback", "alignment_cascade"),
    *,
    by: str | None = None,
    n_boot: int = 200,
    seed: int = 0,
    min_group_size: int = 5,
    person: str | None = "employee_id",
    alpha: float = 0.05,
) -> DriverResult:
    """Rank what drives engagement: each driver's share of explained variance, with intervals.

    Engagement platforms show driver rankings without uncertainty; this gives
    the relative importance of each driver (general dominance: its average
    contribution to R² over all subsets of the other drivers, which sums to
    the model's R²) and standardised betas, with bootstrap intervals, for the
    whole sample and per group (e.g. department). Group sizes count distinct
    people (:func:`size_gate`): groups with fewer than ``min_group_size``
    people are pooled into one group (``"Other departments (each < 5
    people)"``), which is analysed when it reaches the size and suppressed
    otherwise; a group's size is also hidden when it would reveal a suppressed
    one by subtraction (complementary suppression).

    Parameters
    ----------
    {data}
    outcome : str, default "engagement"
        The outcome column.
    drivers : sequence of str
        Numeric driver columns (at most 10: the method fits all 2^k subsets).
    by : str, optional
        Column to break the results down by (e.g. ``"department"``).
    n_boot : int, default 200
        Bootstrap resamples (rows resampled within each group).
    seed : int, default 0
        Seed of the bootstrap.
    min_group_size : int, default 5
        Smallest group, in distinct people, whose results may be shown
        (``StudyConfig.min_group_size``).
    person : str or None, default "employee_id"
        Column identifying a person (group sizes count distinct people).
    {alpha}

    Returns
    -------
    DriverResult
        ``tidy()``: one row per group and driver: ``term`` (driver),
        ``estimate`` (R² contribution), ``std_error`` (bootstrap SD),
        ``statistic``, ``p_value`` (missing: importance is not tested against 0),
        ``conf_low, conf_high`` (percentile), then ``group, n`` (people),
        ``share`` (of the group's R²), ``share_conf_low, share_conf_high,
        std_estimate`` (standardised beta), ``rank, suppressed``. ``glance()``:
        one row per group: ``group, n`` (people), ``n_rows`` (responses),
        ``r_squared, suppressed``. ``n`` and ``n_rows`` are missing where
        suppressed; all results are missing for a group below the size.

    Raises
    ------
    ModelError
        Unknown or non-numeric column, more than 10 drivers.
    PrivacyError
        ``person`` is not a column of ``data``.

    See Also
    --------
    size_gate, pool_small_levels

    Notes
    -----
    Dominance analysis (Budescu 1993; Azen & Budescu 2003) equals the Shapley
    value decomposition of R² (Lipovetsky & Conklin 2001). Rows with a missing
    driver are dropped (complete cases).

    Examples
    --------
    {example}
    >>> res = ar.driver_analysis(panel, drivers=["alignment", "leadership"], n_boot=20)
    >>> round(float(res.tidy()["share"].sum()), 6)
    1.0
    """
    drivers = list(drivers)
    if not 1 <= len(drivers) <= 10:
        raise ModelError(f"driver_analysis takes 1 to 10 drivers; {len(drivers)} were passed.")
    check_columns(data, [outcome, *drivers, by])
    sub = data.dropna(subset=[outcome, *drivers]).reset_index(drop=True)
    try:
        arr = sub[[outcome, *drivers]].astype(float).to_numpy()
    except (TypeError, ValueError):
        raise ModelError(f"{[outcome, *drivers]} must be numeric.") from None
    rng = np.random.default_rng(seed)
    plan = _driver_groups(sub, by, min_group_size=min_group_size, person=person)
    tables, glance = [], []
    for g, idx in plan.groups:
        small = g in plan.too_small
        n_shown = np.nan if small or g in plan.hidden_size else plan.sizes[g][0]
        fit = _driver_fit(arr[idx], n_boot=n_boot, rng=rng, alpha=alpha, allowed=not small)
        glance.append({"group": g, "n": n_shown, "n_rows": np.nan if np.isnan(n_shown) else plan.sizes[g][1],
                       "r_squared": fit["r_squared"], "suppressed": bool(small)})
        tables.append(tidy_table(
            drivers, fit["weights"], fit["std_error"], alpha=alpha, statistic=np.full(len(drivers), np.nan),
            p_value=np.full(len(drivers), np.nan), conf_low=fit["conf_low"], conf_high=fit["conf_high"],
            group=g, n=n_shown, share=fit["share"], share_conf_low=fit["share_conf_low"],
            share_conf_high=fit["share_conf_high"], std_estimate=fit["beta"],
            rank=pd.Series(fit["weights"]).rank(ascending=False, method="min").to_numpy(), suppressed=bool(small),
        ))
    stats = pd.DataFrame(glance)
    stats["cov_type"] = f"bootstrap ({n_boot} resamples)"
    stats["formula"] = f"{outcome} ~ " + " + ".join(drivers)
    table = pd.concat(tables, ignore_index=True)
    table.attrs["alpha"] = alpha  # plot_drivers labels the intervals with the level
    return DriverResult(name="drivers", table=table, stats=stats, model=None,
                        extras={}, alpha=alpha, outcome=_outcome_words(outcome), scale="difference",
                        measure="R² contribution")


@dataclass(frozen=True)
class _DriverGroups:
    """Which groups driver_analysis fits, their sizes in people and rows, and which are hidden."""

    groups: list  # (label, row positions), "all" first and the pooled group last
    sizes: dict  # label -> (people, rows)
    too_small: set  # fewer than min_group_size people: no results
    hidden_size: set  # results shown but the size hidden (complementary suppression)


def _driver_groups(sub: pd.DataFrame, by, *, min_group_size, person) -> _DriverGroups:
    """Privacy first, in people: small groups pooled, then which groups (and sizes) may be shown at all."""
    everyone = group_sizes(sub.assign(_all="all"), "_all", person=person)
    sizes = {"all": (int(everyone["n"].sum()), int(everyone["n_rows"].sum()))}
    hidden_size, too_small = set(), {"all"} if sizes["all"][0] < min_group_size else set()
    groups = [("all", np.arange(len(sub)))]
    if by is None:
        return _DriverGroups(groups, sizes, too_small, hidden_size)
    sub[by] = pool_small_levels(sub, by, min_group_size=min_group_size, person=person, small_pool="keep").data[by]
    gate = size_gate(sub, by, min_group_size=min_group_size, person=person)
    raw = group_sizes(sub, by, person=person)
    raw = raw.assign(_pooled=raw[by].astype(str) == pooled_label(by, min_group_size=min_group_size))
    raw = raw.sort_values(["_pooled", by], kind="stable")  # the pooled group last
    labels = sub[by].astype(str)
    for g, n_people, n_rows in zip(raw[by].astype(str), raw["n"], raw["n_rows"]):
        groups.append((g, np.flatnonzero((labels == g).to_numpy())))
        sizes[g] = (int(n_people), int(n_rows))
    reasons = dict(zip(gate[by].astype(str), gate["suppression"].fillna("")))
    too_small |= {g for g, r in reasons.items() if r == "small group"}
    hidden_size = {g for g, r in reasons.items() if r == "complementary"}
    return _DriverGroups(groups, sizes, too_small, hidden_size)


def _driver_fit(x: np.ndarray, *, n_boot, rng, alpha, allowed) -> dict:
    """Dominance weights, R², standardised betas and bootstrap intervals of one group (outcome in column 0).

    Everything is missing when the group may not be shown (``allowed`` False),
    has too few rows, or a column does not vary.
    """
    n, k = x.shape[0], x.shape[1] - 1
    missing = np.full(k, np.nan)
    fit = {"weights": missing, "r_squared": np.nan, "beta": missing, "std_error": missing, "conf_low": missing,
           "conf_high": missing, "share_conf_low": missing, "share_conf_high": missing}
    if allowed and n > k + 2 and np.all(np.std(x, axis=0) > 0):
        weights, r2, beta = _dominance(np.corrcoef(x, rowvar=False)[None])
        fit["weights"], fit["r_squared"], fit["beta"] = weights[0], float(r2[0]), beta[0]
        resamples = [rng.integers(0, n, n) for _ in range(n_boot)]  # the loop's draws, in its order
        corr, varies = _resample_correlations(x, resamples)
        bw, br2, _ = _dominance(corr[varies])  # resamples in which a column does not vary are left out
        if len(bw) > 1:
            B = np.hstack([bw, bw / br2[:, None]])
            fit["conf_low"], fit["conf_high"] = (np.nanquantile(B[:, :k], q, axis=0) for q in (alpha / 2, 1 - alpha / 2))
            fit["share_conf_low"], fit["share_conf_high"] = (
                np.nanquantile(B[:, k:], q, axis=0) for q in (alpha / 2, 1 - alpha / 2)
            )
            fit["std_error"] = np.nanstd(B[:, :k], axis=0, ddof=1)
    r2 = fit["r_squared"]
    fit["share"] = fit["weights"] / r2 if np.isfinite(r2) and r2 > 0 else np.full(k, np.nan)
    return fit


def plot_drivers(data: pd.DataFrame, *, group: str = "all", ax=None, **kwargs):
    """Draw each driver's share of explained variance with its bootstrap interval.

    Parameters
    ----------
    data : DataFrame
        ``DriverResult.tidy()``: ``term, group, share, share_conf_low, share_conf_high``.
    group : str, default "all"
        Which group to draw.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.barh`.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on (one bar per driver, largest first).

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> t = pd.DataFrame({"term": ["a", "b"], "group": "all", "share": [0.7, 0.3],
    ...                   "share_conf_low": [0.6, 0.2], "share_conf_high": [0.8, 0.4]})
    >>> ax = ar.plot_drivers(t)
    """
    ax = axes_for(ax)
    level = conf_label(data.attrs.get("alpha", 0.05))
    t = data[data["group"] == group].sort_values("share", ascending=True, kind="mergesort")
    y = np.arange(len(t))
    share = t["share"].to_numpy(float)
    err = np.vstack([share - t["share_conf_low"].to_numpy(float), t["share_conf_high"].to_numpy(float) - share])
    kwargs.setdefault("color", "C0")
    ax.barh(y, share * 100, xerr=err * 100, capsize=3, **kwargs)
    ax.set_yticks(y)
    ax.set_yticklabels(t["term"].astype(str))
    ax.set_xlabel(f"Share of explained variance (%, {level})")
    ax.set_title(f"Drivers of engagement ({group})")
    return ax


# --------------------------------------------------------------------------- joining survey scores to review cycles


def cycle_engagement(cycles: pd.DataFrame, survey_panel: pd.DataFrame, config, *, scales=("engagement",)) -> pd.DataFrame:
    """Add each employee's mean survey score within a review cycle to the ``cycles`` table.

    Used for the path alignment -> engagement -> voluntary exit: the cycle's
    cascade alignment and the engagement measured during that cycle both
    precede ``left_next_cycle`` (an exit in the following cycle), so nothing
    is looked up from the future.

    Parameters
    ----------
    cycles : DataFrame
        The ``cycles`` analysis table (``employee_id, spell, cycle, ...``).
    survey_panel : DataFrame
        The ``survey_panel`` analysis table (``employee_id, spell, survey_date`` and scale scores).
    config : StudyConfig
        The study configuration (``config.cycles`` gives each cycle's dates).
    scales : sequence of str, default ("engagement",)
        Scale columns to average.

    Returns
    -------
    DataFrame
        A copy of ``cycles`` with one column per scale (the mean over the
        employee's responses dated within the cycle; missing when none) and
        ``n_responses``.

    Raises
    ------
    ModelError
        A column is missing or a cycle of ``cycles`` is not in ``config.cycles``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> t = ar.cycle_engagement(clean.analysis.cycles, clean.analysis.survey_panel, clean.config)
    >>> "engagement" in t.columns
    True
    """
    scales = list(scales)
    keys = ["employee_id"] + (["spell"] if "spell" in cycles.columns and "spell" in survey_panel.columns else [])
    check_columns(cycles, [*keys, "cycle"], what="cycles")
    check_columns(survey_panel, [*keys, "survey_date", *scales], what="survey_panel")
    bounds = pd.DataFrame(
        [(str(c.name), pd.Timestamp(c.start), pd.Timestamp(c.end)) for c in config.cycles],
        columns=["cycle", "start", "end"],
    )
    unknown = sorted(set(cycles["cycle"].astype(str)) - set(bounds["cycle"]))
    if unknown:
        raise ModelError(f"Cycles {unknown[:5]} of the cycles table are not in the study configuration's cycles.")
    s = survey_panel[[*keys, "survey_date", *scales]].copy()
    s["survey_date"] = pd.to_datetime(s["survey_date"])
    idx = np.searchsorted(bounds["start"].to_numpy(), s["survey_date"].to_numpy(), side="right") - 1
    inside = (idx >= 0) & (s["survey_date"].to_numpy() <= bounds["end"].to_numpy()[np.clip(idx, 0, None)])
    s = s[inside].assign(cycle=bounds["cycle"].to_numpy()[idx[inside]])
    agg = s.groupby([*keys, "cycle"], as_index=False).agg(
        **{sc: (sc, "mean") for sc in scales}, n_responses=("survey_date", "size")
    )
    out = cycles.drop(columns=[c for c in [*scales, "n_responses"] if c in cycles.columns]).copy()
    out["_cycle"] = out["cycle"].astype(str)
    agg = agg.rename(columns={"cycle": "_cycle"})
    for k in keys:
        agg[k] = agg[k].astype(out[k].dtype)
    merged = out.reset_index().merge(agg, on=[*keys, "_cycle"], how="left").set_index("index")
    merged.index.name = cycles.index.name
    merged["n_responses"] = merged["n_responses"].fillna(0).astype(int)
    return merged.drop(columns="_cycle")


# --------------------------------------------------------------------------- generalised linear mixed model


@dataclass(frozen=True, repr=False)
class GLMMResult(MixedResult):
    """A fitted logistic (or Poisson) mixed model with a random intercept per group.

    ``tidy()`` holds log odds (log rate) ratios with the ratios in ``exp_*``;
    ``random_effects`` the conditional modes of the group intercepts (on the
    link scale); ``glance()`` the variance of the intercepts, the Laplace
    log-likelihood and the fit flags.

    Attributes
    ----------
    family : str
        ``"binomial"`` or ``"poisson"``.
    """

    family: str = "binomial"


_GLMM_FAMILIES = {"binomial": ("logit", "odds ratio"), "poisson": ("log", "rate ratio")}


def fit_glmm(
    data: pd.DataFrame, formula: str, *, groups: str, family: str = "binomial", alpha: float = 0.05
) -> GLMMResult:
    """Fit a logistic (or Poisson) mixed model with a random intercept per group (e.g. per manager).

    The binary-outcome counterpart of :func:`fit_mixed`: people in one team
    share their manager's intercept, e.g. ``left_within_year ~ alignment_cascade
    + manager_program + (1 | manager_id)``. Estimates are conditional on the
    team (a log odds ratio within a typical team), not population averages.

    Parameters
    ----------
    {data}
    formula : str
        ``"outcome ~ right-hand side"``: a 0/1 (or boolean) outcome for
        ``family="binomial"``, a count for ``family="poisson"``; e.g.
        ``"left_next_cycle ~ alignment_cascade + C(job_level)"``.
    groups : str
        Column whose levels get a random intercept (usually ``"manager_id"``).
    family : {"binomial", "poisson"}, default "binomial"
        Logit link for a 0/1 outcome; log link for a non-negative integer count.
    {alpha}

    Returns
    -------
    GLMMResult
        ``tidy()``: ``term, estimate`` (log odds or log rate ratio), ``std_error,
        statistic, p_value, conf_low, conf_high, exp_estimate, exp_conf_low,
        exp_conf_high`` (the ratios) and ``std_estimate`` (per SD of a continuous
        covariate); z tests, as ``summary(glmer(...))``. ``glance()``: ``n,
        events`` (binomial: rows with 1; poisson: the total count), ``n_groups,
        var_<groups>, sd_<groups>, log_likelihood, aic, bic, deviance,
        converged, boundary, method`` ("Laplace"), ``family, cov_type, formula``.
        ``random_effects``: ``group, estimate`` (conditional modes, link scale).
        ``extras["std_error_rx"]``: ``term, std_error_rx`` (lme4's
        ``vcov(fit, use.hessian = FALSE)``).

    Raises
    ------
    ModelError
        Unknown column or family, an outcome that is not 0/1 (binomial) or a
        non-negative integer (poisson), a covariate that does not vary, fewer
        than 2 groups, or a variance that is not identified (every group has
        one row).

    Warns
    -----
    StatisticalWarning
        The intercept variance is estimated at zero (a boundary fit, as lme4's
        "singular"), the optimiser did not converge, the variance is barely
        identified, or a term separates the outcome (the caveat of
        :func:`fit_logit`); each is kept in the result's ``caveats``.

    See Also
    --------
    fit_logit : the same model without team intercepts (clustered errors instead).
    fit_mixed : a continuous outcome.

    Notes
    -----
    The Laplace approximation of ``lme4::glmer(y ~ x + (1 | manager_id),
    family = binomial)`` (``nAGQ = 1``): the deviance over the intercept's
    standard deviation and the fixed effects is minimised jointly (glmer's
    second stage), with every team's conditional mode found by a vectorised
    Newton step per team, so each evaluation costs O(N) (``_glmm.py``).
    Standard errors are lme4's default ``vcov``: the fixed-effects block of
    twice the inverse Hessian of the deviance over (sd, fixed effects); on the
    boundary, lme4's ``RX``-based form. Against glmer run with tight optimiser
    tolerances, estimates, standard errors, the variance and ``logLik`` agree
    to about 1e-6 relative; glmer's defaults stop earlier (differences up to
    about 1e-3 in estimates and 1e-2 in standard errors are glmer's stopping
    error, not ours). ``deviance`` is glmer's ``deviance()``: the conditional
    deviance at the modes; ``log_likelihood`` is the Laplace one, with every
    constant, as ``logLik``. ``aic``/``bic`` count the fixed effects and the variance.

    Examples
    --------
    >>> import numpy as np, pandas as pd, alignment_research as ar
    >>> rng = np.random.default_rng(0)
    >>> team = np.repeat(np.arange(40), 25)
    >>> x = rng.normal(size=1000)
    >>> eta = -1 + 0.5 * x + rng.normal(0, 0.8, 40)[team]
    >>> d = pd.DataFrame({"left": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "manager_id": team})
    >>> res = ar.fit_glmm(d, "left ~ x", groups="manager_id")
    >>> round(float(res.tidy()["estimate"].iloc[1]), 2), bool(res.glance()["converged"].iloc[0])
    (0.55, True)
    """
    from ._glmm import fit_glmm_laplace  # deferred: scipy's optimiser and sparse matrices load on the first GLMM fit

    if family not in _GLMM_FAMILIES:
        raise ModelError(f"The value for `family` must be one of {list(_GLMM_FAMILIES)}, but {family!r} was passed.")
    if not isinstance(groups, str):
        raise ModelError(f"`groups` must be one column name (e.g. 'manager_id'), but {groups!r} was passed.")
    link, measure = _GLMM_FAMILIES[family]
    lhs, rhs, y, X, sub, info = _prepare(data, formula, extra=[groups], binary=family == "binomial")
    if family == "poisson" and (np.any(y < 0) or np.any(y != np.round(y))):
        raise ModelError(f"The outcome {lhs!r} must be a non-negative whole-number count for family='poisson'; "
                         f"found values such as {sorted(set(y[(y < 0) | (y != np.round(y))]))[:4]}.")
    n_groups = sub[groups].nunique()
    if n_groups < 2:
        raise ModelError(f"A random intercept for {groups!r} needs at least 2 groups; found {n_groups}.")
    caveats = check_variance_components(sub, groups)
    fit = fit_glmm_laplace(X.to_numpy(float), y, sub[groups].to_numpy(), family=family)
    se = np.sqrt(np.diag(fit.cov_beta))
    slopes = [i for i, c in enumerate(X.columns) if c != "Intercept"]
    model_name = f"{'logistic' if family == 'binomial' else 'Poisson'} mixed model {formula!r}"
    if family == "binomial":
        caveats += check_estimates(
            X.columns[slopes], fit.beta[slopes], se[slopes], model=model_name, X=X.iloc[:, slopes], y=y,
            kind="binary", converged=not fit.separated,
        )
    if fit.boundary:
        caveats.append(warn_caveat(
            f"The random-intercept variance of {groups!r} is estimated at zero (a singular fit, as lme4 reports): "
            "the groups add nothing beyond the fixed effects, and the fixed effects equal fit_logit's. Report the "
            "between-group variance as about 0. Flagged in glance()['boundary']."
        ))
    if not fit.converged:
        caveats.append(warn_caveat(
            f"The Laplace fit of the {model_name} did not converge (largest gradient of the deviance "
            f"{float(np.max(np.abs(fit.gradient))):.2g}); its estimates may not be the optimum. Simplify the model "
            "or check for a category without events."
        ))
    table = tidy_table(X.columns, fit.beta, se, alpha=alpha, ratio=True, std_estimate=_std_estimates(X, fit.beta))
    k = X.shape[1] + 1
    stats = pd.DataFrame([{
        "n": len(y),
        "events": int(y.sum()),
        "n_groups": int(n_groups),
        f"var_{groups}": fit.variance,
        f"sd_{groups}": fit.theta,
        "log_likelihood": fit.log_likelihood,
        "aic": -2 * fit.log_likelihood + 2 * k,
        "bic": -2 * fit.log_likelihood + np.log(len(y)) * k,
        "deviance": fit.deviance,
        "converged": bool(fit.converged),
        "boundary": bool(fit.boundary),
        "method": "Laplace",
        "family": family,
        "cov_type": f"random intercept: {groups}",
        "formula": formula,
    }])
    rx = pd.DataFrame({"term": list(X.columns), "std_error_rx": np.sqrt(np.diag(fit.cov_beta_rx))})
    return GLMMResult(
        name="glmm", table=table, stats=stats, alpha=alpha, outcome=_outcome_words(lhs), scale="ratio",
        measure=measure, formula=formula,
        design_info=info if family == "binomial" else None,  # predictions on the log scale are not implemented
        params=np.asarray(fit.beta, float), cov_params=np.asarray(fit.cov_beta, float), link=link,
        model=fit, caveats=caveats, extras={"std_error_rx": rx},
        random_effects=pd.DataFrame({"group": fit.group_labels, "estimate": fit.ranef}), family=family,
    )


fill_doc(fit_glmm)


# Shared parameter text (seaborn's docstring pattern).
for _f in (fit_ols, fit_mixed, fit_within, fit_logit, fit_ordinal, fit_mediation, driver_analysis):
    fill_doc(_f, example=_EXAMPLE_PANEL)
del _f
