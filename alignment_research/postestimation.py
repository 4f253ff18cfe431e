"""Post-estimation for any fitted regression: predictions, marginal effects, per-group effects, adjusted p-values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import scipy.stats as st

from ._docs import fill_doc
from ._formula import check_columns, formula_variables, split_formula
from .engagement import RegressionResult, fit_ols
from .errors import ModelError
from .plots import axes_for
from .privacy import pool_small_levels, pooled_label, size_gate
from .results import conf_label, tidy_table

__all__ = [
    "predicted_values",
    "marginal_effects",
    "adjust_pvalues",
    "effect_by_group",
    "plot_predicted",
    "plot_residuals",
]

_EXAMPLE_PANEL = """    >>> import alignment_research as ar
    >>> panel = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis.survey_panel"""


# --------------------------------------------------------------------------- predictions


def _categorical_variables(design_info) -> set:
    out = set()
    for factor, fi in design_info.factor_infos.items():
        if fi.type == "categorical":
            out.update(formula_variables(factor.code))
    return out


def _typical_row(data: pd.DataFrame, variables, categorical=()) -> dict:
    row = {}
    for v in variables:
        col = data[v].dropna()
        if v not in categorical and pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            row[v] = float(col.mean())
        else:
            row[v] = col.value_counts().sort_index(kind="mergesort").idxmax()
    return row


def _grid(result, data, x, by, values, n_points):
    if not isinstance(result, RegressionResult) or result.design_info is None or result.link == "ordinal":
        raise ModelError("Predictions need a result of fit_ols, fit_mixed or fit_logit.")
    if result.name == "within":
        raise ModelError("A within-person model has no intercept to predict levels from; use fit_mixed or fit_ols.")
    _, rhs = split_formula(result.formula)
    variables = formula_variables(rhs)
    check_columns(data, variables)
    if x not in variables:
        raise ModelError(f"{x!r} is not in the model's formula {result.formula!r}.")
    base = _typical_row(data, variables, _categorical_variables(result.design_info))
    if values is None:
        lo, hi = data[x].quantile([0.02, 0.98])
        values = np.linspace(lo, hi, n_points)
    by_values = [None] if by is None else sorted(data[by].dropna().unique())
    rows = []
    for b in by_values:
        for v in values:
            r = dict(base)
            r[x] = v
            if by is not None:
                r[by] = b
            rows.append(r)
    grid = pd.DataFrame(rows)
    for v in variables:  # keep categorical columns' levels so patsy codes them as in the fit
        if isinstance(data[v].dtype, pd.CategoricalDtype):
            grid[v] = pd.Categorical(grid[v], categories=data[v].cat.categories)
    return grid


def _grid_matrix(result, grid) -> np.ndarray:
    info = result.design_info
    M = pd.DataFrame(np.asarray(patsy.build_design_matrices([info], grid)[0], float), columns=info.column_names)
    return M[list(result.table["term"])].to_numpy(float)


def predicted_values(
    result: RegressionResult,
    data: pd.DataFrame,
    *,
    x: str,
    by: str | None = None,
    values=None,
    n_points: int = 25,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Predict the outcome across the range of ``x`` (optionally per level of ``by``), with intervals.

    Other covariates are held at their mean (numeric) or most common level
    (categorical). For a mixed model the prediction is for a typical group
    (random intercept 0).

    Parameters
    ----------
    result : RegressionResult
        From :func:`fit_ols`, :func:`fit_mixed` or :func:`fit_logit`.
    data : DataFrame
        The data the model was fitted on (for typical values and the range of ``x``).
    x : str
        The covariate on the horizontal axis (e.g. ``"alignment_cascade"``).
    by : str, optional
        A covariate whose levels get separate lines (e.g. ``"manager_program"``).
    values : array_like, optional
        Values of ``x``; by default ``n_points`` from its 2nd to 98th percentile.
    n_points : int, default 25
        Grid size when ``values`` is not given.
    {alpha}

    Returns
    -------
    DataFrame
        ``x, by (if given), estimate, std_error, conf_low, conf_high`` (the
        outcome scale: probabilities for a logit), one row per grid point.

    Raises
    ------
    ModelError
        ``x`` not in the model, or a within-person or ordinal result.

    See Also
    --------
    plot_predicted, marginal_effects

    Examples
    --------
    {example}
    >>> res = ar.fit_ols(panel, "engagement ~ alignment_cascade * manager_program")
    >>> pv = ar.predicted_values(res, panel, x="alignment_cascade", by="manager_program", n_points=5)
    >>> len(pv)
    10
    """
    grid = _grid(result, data, x, by, values, n_points)
    Xg = _grid_matrix(result, grid)
    eta = Xg @ result.params
    se = np.sqrt(np.einsum("ij,jk,ik->i", Xg, result.cov_params, Xg))
    q = st.norm.ppf(1 - alpha / 2)
    lo, hi = eta - q * se, eta + q * se
    if result.link == "logit":
        f = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        eta, lo, hi = f(eta), f(lo), f(hi)
        se = se * eta * (1 - eta)
    out = pd.DataFrame({"x": grid[x].to_numpy(float)})
    if by is not None:
        out[by] = grid[by].to_numpy()
    out["estimate"], out["std_error"], out["conf_low"], out["conf_high"] = eta, se, lo, hi
    out.attrs["alpha"] = alpha  # the plot labels its band with the level
    return out


def marginal_effects(
    result: RegressionResult, data: pd.DataFrame, *, x: str, by: str | None = None, alpha: float = 0.05
) -> pd.DataFrame:
    """Return the slope of the prediction in ``x`` (per unit of x), per level of ``by``.

    With an interaction (``alignment_cascade * manager_program``) this is the
    effect of alignment in each programme group; without one it is the same in
    every group. Other covariates are held at typical values (see
    :func:`predicted_values`); for a logit the slope is on the probability scale.

    Parameters
    ----------
    result : RegressionResult
        From :func:`fit_ols`, :func:`fit_mixed` or :func:`fit_logit`.
    data : DataFrame
        The data the model was fitted on.
    x : str
        The numeric covariate whose effect is wanted.
    by : str, optional
        The moderator whose levels get separate slopes.
    {alpha}

    Returns
    -------
    DataFrame
        ``term, by (if given), estimate, std_error, statistic, p_value, conf_low,
        conf_high`` (delta method).

    Raises
    ------
    ModelError
        ``x`` not in the model.

    See Also
    --------
    predicted_values

    Examples
    --------
    {example}
    >>> res = ar.fit_ols(panel, "engagement ~ alignment_cascade * manager_program")
    >>> len(ar.marginal_effects(res, panel, x="alignment_cascade", by="manager_program"))
    2
    """
    base = float(data[x].mean())
    h = 1e-4 * max(1.0, abs(base))
    grid = _grid(result, data, x, by, np.array([base - h / 2, base + h / 2]), 2)
    Xg = _grid_matrix(result, grid)
    rows = []
    for i in range(0, len(Xg), 2):
        x0, x1 = Xg[i], Xg[i + 1]
        if result.link == "logit":
            p0, p1 = 1 / (1 + np.exp(-(x0 @ result.params))), 1 / (1 + np.exp(-(x1 @ result.params)))
            grad = (p1 * (1 - p1) * x1 - p0 * (1 - p0) * x0) / h
            est = (p1 - p0) / h
        else:
            grad = (x1 - x0) / h
            est = float(grad @ result.params)
        se = float(np.sqrt(grad @ result.cov_params @ grad))
        rows.append((est, se, None if by is None else grid[by].iloc[i]))
    table = tidy_table([x] * len(rows), [r[0] for r in rows], [r[1] for r in rows], alpha=alpha)
    if by is not None:
        table.insert(1, by, [r[2] for r in rows])
    return table


def plot_predicted(data: pd.DataFrame, *, x: str = "x", by: str | None = None, xlabel=None, ylabel=None, ax=None, **kwargs):
    """Draw predicted values with confidence bands, one line per level of ``by``.

    Parameters
    ----------
    data : DataFrame
        :func:`predicted_values` output: ``x, [by], estimate, conf_low, conf_high``.
    x : str, default "x"
        Column of the horizontal axis.
    by : str, optional
        Column whose levels get separate lines (and a legend).
    xlabel, ylabel : str, optional
        Axis labels.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.plot`.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on: one line and one band per level.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> t = pd.DataFrame({"x": [0, 1], "estimate": [3.0, 3.5], "conf_low": [2.9, 3.4], "conf_high": [3.1, 3.6]})
    >>> ax = ar.plot_predicted(t)
    """
    ax = axes_for(ax)
    levels = [None] if by is None else sorted(data[by].dropna().unique())
    for i, lv in enumerate(levels):
        t = data if lv is None else data[data[by] == lv]
        t = t.sort_values(x, kind="mergesort")
        kw = dict(kwargs)
        kw.setdefault("color", f"C{i}")
        if lv is not None:
            kw.setdefault("label", f"{by} = {lv}")
        ax.plot(t[x], t["estimate"], **kw)
        ax.fill_between(t[x], t["conf_low"], t["conf_high"], color=kw["color"], alpha=0.2, linewidth=0)
    if by is not None:
        ax.legend(frameon=False)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or f"Predicted value ({conf_label(data.attrs.get('alpha', 0.05))})")
    return ax


def plot_residuals(data: pd.DataFrame, *, ax=None, **kwargs):
    """Draw residuals against fitted values with a smoothed trend (a model check).

    Parameters
    ----------
    data : DataFrame
        ``result.extras["residuals"]``: ``fitted, residual``.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on: the points, a zero line and a binned-mean line.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> t = pd.DataFrame({"fitted": [1.0, 2.0, 3.0, 4.0], "residual": [0.1, -0.2, 0.05, 0.0]})
    >>> ax = ar.plot_residuals(t)
    """
    ax = axes_for(ax)
    kwargs.setdefault("s", 6)
    kwargs.setdefault("alpha", 0.3)
    kwargs.setdefault("color", "C0")
    ax.scatter(data["fitted"], data["residual"], **kwargs)
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    bins = pd.qcut(data["fitted"], q=min(20, max(2, len(data) // 20)), duplicates="drop")
    trend = data.groupby(bins, observed=True)[["fitted", "residual"]].mean()
    ax.plot(trend["fitted"], trend["residual"], color="C3", linewidth=2)
    ax.set_xlabel("Fitted value")
    ax.set_ylabel("Residual")
    return ax


# --------------------------------------------------------------------------- multiplicity


def adjust_pvalues(p, *, method: str = "holm", column: str = "p_value"):
    """Adjust p-values for many comparisons (Holm or Benjamini-Hochberg).

    Parameters
    ----------
    p : array_like or DataFrame
        P-values, or a table with a ``column`` of them (missing values are left missing).
    method : {"holm", "fdr_bh", "bonferroni"}, default "holm"
        Holm controls the family-wise error rate; ``"fdr_bh"`` (Benjamini-Hochberg)
        the false discovery rate.
    column : str, default "p_value"
        Column of p-values when ``p`` is a DataFrame.

    Returns
    -------
    ndarray or DataFrame
        The adjusted p-values, or a copy of the table with ``p_adjusted`` added.

    Raises
    ------
    ModelError
        Unknown method or p-values outside [0, 1].

    Notes
    -----
    statsmodels ``multipletests``; equals R's ``p.adjust(p, "holm")`` / ``"BH"``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.adjust_pvalues([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    from statsmodels.stats.multitest import multipletests  # deferred: statsmodels is heavy

    if method not in ("holm", "fdr_bh", "bonferroni"):
        raise ModelError(f"The value for `method` must be one of ['holm', 'fdr_bh', 'bonferroni'], but {method!r} was passed.")
    values = p[column] if isinstance(p, pd.DataFrame) else p
    arr = np.asarray(values, float)
    ok = np.isfinite(arr)
    if np.any((arr[ok] < 0) | (arr[ok] > 1)):
        raise ModelError("p-values must lie in [0, 1].")
    adj = np.full(arr.shape, np.nan)
    if ok.any():
        adj[ok] = multipletests(arr[ok], method=method)[1]
    if isinstance(p, pd.DataFrame):
        out = p.copy()
        out["p_adjusted"] = adj
        return out
    return adj


def effect_by_group(
    data: pd.DataFrame,
    formula: str,
    *,
    term: str,
    by: str,
    cluster: str | None = None,
    method: str = "holm",
    min_group_size: int = 5,
    person: str | None = "employee_id",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Estimate one term's effect separately in each group, with adjusted p-values.

    Fits ``outcome ~ C(by) + C(by):term + <other terms>`` by OLS (so the other
    covariates keep one common slope) on the groups where an effect can be
    estimated: at least ``min_group_size`` people and some variation in ``term``.
    Group sizes count distinct people (:func:`size_gate`). Groups with fewer
    people are pooled into one group (``"Other departments (each < 5
    people)"``), estimated when it reaches the size; a group still below it is
    listed with a ``note`` and no numbers, and the size of the next smallest
    group is hidden too so that it cannot be recovered by subtraction
    (complementary suppression). Groups without variation in ``term`` are
    listed with a ``note``; none is silently dropped.

    Parameters
    ----------
    {data}
    formula : str
        ``"outcome ~ term + other terms"``; ``term`` must be one of the terms.
    term : str
        The covariate whose effect is estimated per group (e.g. ``"manager_program"``).
    by : str
        The grouping column (e.g. ``"department"``).
    {cluster}
    method : {"holm", "fdr_bh", "bonferroni"}, default "holm"
        Adjustment of the per-group p-values for the number of groups compared.
    min_group_size : int, default 5
        Groups with fewer distinct people are pooled; a pooled group still
        below the size gets no estimate and no count.
    person : str or None, default "employee_id"
        Column identifying a person.
    {alpha}

    Returns
    -------
    DataFrame
        One row per group, sorted by group (the pooled group last): ``<by>, n``
        (people; missing when suppressed), ``estimate, conf_low, conf_high, p_value, p_adjusted, note``.

    Raises
    ------
    ModelError
        ``term`` or ``by`` is not in the data or the formula, or no group can be estimated.
    PrivacyError
        ``person`` is not a column of ``data``.

    See Also
    --------
    size_gate, pool_small_levels

    Examples
    --------
    {example}
    >>> table = ar.effect_by_group(panel, "engagement ~ manager_program + alignment_cascade",
    ...                            term="manager_program", by="department", cluster="manager_id")
    >>> list(table.columns)[:3]
    ['department', 'n', 'estimate']
    """
    lhs, rhs = split_formula(formula)
    check_columns(data, [by, term])
    terms = [t.strip() for t in rhs.split("+")]
    if term not in terms:
        raise ModelError(f"`term` {term!r} must be one of the formula's terms {terms}.")
    others = [t for t in terms if t != term]
    rows = data.dropna(subset=[by])
    rows = pool_small_levels(rows, by, min_group_size=min_group_size, person=person, small_pool="keep").data
    rows = rows.assign(**{by: rows[by].astype(str)})
    gate = size_gate(rows, by, min_group_size=min_group_size, person=person)
    spread = rows.groupby(by, observed=True)[term].agg(lambda x: x.max() - x.min()).rename("spread")
    gate = gate.merge(spread.reset_index(), on=by, how="left")
    reason = gate["suppression"].fillna("").to_numpy(str)
    small = reason == "small group"
    usable = gate.loc[~small & (gate["spread"].fillna(0) > 0).to_numpy(), by]
    if len(usable) == 0:
        raise ModelError(f"No group of {by!r} has {min_group_size}+ people with variation in {term!r}.")
    fit_rows = rows[rows[by].isin(usable)].assign(_group=lambda d: d[by])
    rhs_by = " + ".join(["C(_group)", f"C(_group):{term}", *others])
    fitted = fit_ols(fit_rows, f"{lhs} ~ {rhs_by}", cluster=cluster, alpha=alpha).tidy()
    fitted = fitted[fitted["term"].str.endswith(f":{term}")].copy()
    fitted[by] = fitted["term"].str.extract(r"C\(_group\)\[(.*)\]:", expand=False)
    fitted = adjust_pvalues(fitted, method=method)
    out = gate[[by, "n"]].merge(fitted[[by, "estimate", "conf_low", "conf_high", "p_value", "p_adjusted"]],
                               on=by, how="left")
    out["note"] = np.where(
        small, f"suppressed: fewer than {min_group_size} people",
        np.where(out["estimate"].isna(), f"no variation in {term}",
                 np.where(reason == "complementary", "size hidden: it would reveal a suppressed group", "")))
    last = out[by] == pooled_label(by, min_group_size=min_group_size)  # the pooled group last
    return out.assign(_last=last).sort_values(["_last", by], kind="stable").drop(columns="_last").reset_index(drop=True)


# Shared parameter text (seaborn's docstring pattern).
for _f in (predicted_values, marginal_effects, adjust_pvalues, effect_by_group):
    fill_doc(_f, example=_EXAMPLE_PANEL)
del _f
