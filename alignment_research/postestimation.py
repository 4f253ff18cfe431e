"""Post-estimation for any fitted regression: predictions, marginal effects, per-group effects, adjusted p-values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy
import scipy.stats as st

from ._docs import fill_doc
from ._estimators import holm_adjust
from ._formula import check_columns, columns_read, formula_terms, formula_variables, split_formula
from .engagement import RegressionResult, fit_ols
from .errors import ModelError
from .plots import axes_for
from .privacy import group_sizes, pool_small_levels, pooled_label, size_gate, suppress_small_groups
from .results import RATIO_COLUMNS, TIDY_COLUMNS, ModelResult, conf_label, tidy_table
from .retention import fit_cox, text_as_objects

__all__ = [
    "predicted_values",
    "marginal_effects",
    "adjust_pvalues",
    "effect_by_group",
    "fit_group_effects",
    "GroupEffectsResult",
    "wald_test",
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


def plot_predicted(data: pd.DataFrame, *, x: str = "x", by: str | None = None, xlabel=None, ylabel=None, labels=None,
                   ax=None, **kwargs):
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
    labels : dict, optional
        Legend text of each level of ``by`` (``{0: "Manager not in the
        programme", 1: "Manager in the programme"}``); ``"<by> = <level>"``
        for a level it does not name.
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
            kw.setdefault("label", (labels or {}).get(lv, f"{by} = {lv}"))
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
    Holm: the toolkit's one step-down (``_estimators.holm_adjust``), because
    statsmodels' ``multipletests`` runs a full garbage collection on every Holm
    call, over a second in a process holding a study's tables (paid once per
    heterogeneity analysis). Benjamini-Hochberg and Bonferroni come from
    ``multipletests``. All equal R's ``p.adjust(p, "holm")`` / ``"BH"`` /
    ``"bonferroni"``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.adjust_pvalues([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    if method not in ("holm", "fdr_bh", "bonferroni"):
        raise ModelError(f"The value for `method` must be one of ['holm', 'fdr_bh', 'bonferroni'], but {method!r} was passed.")
    values = p[column] if isinstance(p, pd.DataFrame) else p
    arr = np.asarray(values, float)
    ok = np.isfinite(arr)
    if np.any((arr[ok] < 0) | (arr[ok] > 1)):
        raise ModelError("p-values must lie in [0, 1].")
    adj = np.full(arr.shape, np.nan)
    if ok.any() and method == "holm":
        adj[ok] = holm_adjust(arr[ok])
    elif ok.any():
        from statsmodels.stats.multitest import multipletests  # deferred: statsmodels is heavy

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
    listed with a ``note``; none is silently dropped. This is the table of
    :func:`fit_group_effects` for one term and one grouping column; that
    function also gives the heterogeneity test and fits Cox models.

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
        (people; missing when suppressed), ``estimate, conf_low, conf_high,
        p_value, p_adjusted, conf_low_adjusted, conf_high_adjusted, note``
        (the adjusted interval is simultaneous over the groups, see
        :func:`fit_group_effects`).

    Raises
    ------
    ModelError
        ``term`` or ``by`` is not in the data or the formula, or no group can be estimated.
    PrivacyError
        ``person`` is not a column of ``data``.

    See Also
    --------
    fit_group_effects, size_gate, pool_small_levels

    Examples
    --------
    {example}
    >>> table = ar.effect_by_group(panel, "engagement ~ manager_program + alignment_cascade",
    ...                            term="manager_program", by="department", cluster="manager_id")
    >>> list(table.columns)[:3]
    ['department', 'n', 'estimate']
    """
    fitted = fit_group_effects(data, formula, term=term, by=by, cluster=cluster, method=method,
                               min_group_size=min_group_size, person=person, alpha=alpha)
    table = fitted.tidy().rename(columns={"group": by})
    return table[[by, "n", "estimate", "conf_low", "conf_high", "p_value", "p_adjusted", "conf_low_adjusted",
                  "conf_high_adjusted", "note"]]


# --------------------------------------------------------------------------- heterogeneity


@dataclass(frozen=True, repr=False)
class GroupEffectsResult(ModelResult):
    """Effects of a term in each group (gender, location, level, department), with a heterogeneity test.

    Made by :func:`fit_group_effects`. ``tidy()`` has one row per term,
    grouping column and group; ``glance()`` one row per term and grouping
    column with the test that the effect is the same in every group.
    ``plot(term=, by=)`` draws one term's per-group estimates with their
    simultaneous intervals.
    """

    min_group_size: int = 5

    def plot(self, *, term: str | None = None, by: str | None = None, ax=None, **kwargs):
        """Draw the per-group estimates of one term and grouping column, with simultaneous intervals.

        Parameters
        ----------
        term, by : str, optional
            The analysis to draw; the first of ``glance()`` by default.
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure by default.
        **kwargs
            Passed to :func:`plot_forest`.

        Returns
        -------
        matplotlib.axes.Axes
            One row per estimated group.
        """
        from .plots import plot_forest  # deferred: matplotlib is heavy and only needed to draw

        first = self.stats.iloc[0]
        term = first["term"] if term is None else term
        by = first["by"] if by is None else by
        t = self.table[(self.table["term"] == term) & (self.table["by"] == by)].dropna(subset=["estimate"])
        shown = t.assign(term=t["group"].astype(str), conf_low=t["conf_low_adjusted"],
                         conf_high=t["conf_high_adjusted"]).drop(columns=[c for c in RATIO_COLUMNS if c in t])
        return plot_forest(shown, ratio=self.is_ratio, ax=ax, **kwargs)


#: Column order of :class:`GroupEffectsResult` tables.
_GROUP_COLUMNS = ["by", "group", "n", "n_clusters", "p_adjusted", "conf_low_adjusted", "conf_high_adjusted"]

#: A group needs this many clusters for a cluster-robust slope of its own; below it the group is listed, not estimated.
FEW_CLUSTERS = 10


#: The column a Cox fit counts subjects by (with ``spell``).
_SUBJECT = "employee_id"


@dataclass(frozen=True)
class _CodedRows:
    """The pooled rows of one grouping column, coded once for every term's group counts.

    ``group``: each row's position among the gate's groups; ``clusters``:
    each row's cluster code (-1 when missing; None without clustering).
    Counting over these integers gives the counts the grouped text columns
    give, without factorising the text again for every term.
    """

    rows: pd.DataFrame
    gate: pd.DataFrame
    group: np.ndarray
    clusters: np.ndarray | None
    present: dict  # column -> its non-missing mask, filled as the terms ask
    labels: dict  # column -> its values as codes (NaN: missing), for columns the fits only count or cluster on

    @classmethod
    def of(cls, rows: pd.DataFrame, by: str, *, codes: dict, cluster, person, min_group_size: int,
           counted=()) -> "_CodedRows":
        """Pool and code the rows of ``by``.

        ``codes``: integer codes (``pd.factorize``, -1 missing) of some
        columns of ``rows``, computed once for every grouping column;
        ``counted``: the columns to hand the fits as codes (see :meth:`fit_rows`).
        """
        keep = rows[by].notna().to_numpy()  # the rows with a group (dropna)
        rows = rows[keep]
        codes = {c: values[keep] for c, values in codes.items()}
        rows, gate, group = _pooled_groups(rows, by, min_group_size=min_group_size, person=person,
                                           people=codes.get(person))
        column = (cluster if isinstance(cluster, str) else cluster[0]) if cluster else None
        clusters = None
        if column is not None and column in rows.columns:
            clusters = codes[column] if column in codes else pd.factorize(rows[column])[0]
        labels = {}
        for name in counted:
            if name in rows.columns and name != by:
                values = codes[name] if name in codes else pd.factorize(rows[name])[0]
                labels[name] = np.where(values < 0, np.nan, values)
        return cls(rows, gate, group, clusters, {}, labels)

    def fit_rows(self, keep: np.ndarray, by: str, columns) -> pd.DataFrame:
        """The ``keep`` rows a fit reads: the ``columns`` the table has, and ``_group``, the group's text.

        The cluster and person columns go as codes: the same clusters and
        people in the same order of first appearance (hence the same fit:
        a fit only factorises, counts and drops their missing values),
        without hashing their text again for every fit.
        """
        names = [c for c in dict.fromkeys(columns) if c in self.rows.columns and c != "_group"]
        frame = self.rows.loc[keep, names]
        coded = {c: values[keep] for c, values in self.labels.items() if c in frame.columns}
        return frame.assign(**coded, _group=self.rows[by].to_numpy()[keep])

    def complete(self, columns, *, strict: bool = False) -> np.ndarray:
        """Rows with a value in every one of ``columns``, as ``dropna(subset=columns)``.

        Columns the table lacks are passed over, or with ``strict`` raise the
        KeyError that selecting them raises.
        """
        missing = [c for c in columns if c not in self.rows.columns]
        if strict and missing:
            raise KeyError(f"{missing} not in index")
        keep = np.ones(len(self.rows), dtype=bool)
        for column in dict.fromkeys(c for c in columns if c in self.rows.columns):
            if column not in self.present:
                self.present[column] = self.rows[column].notna().to_numpy()
            keep &= self.present[column]
        return keep

    def per_group(self, values, keep, how: str, n_groups: int) -> np.ndarray:
        """A statistic of ``values`` over each group's rows (``keep`` of them): NaN for a group without any.

        ``how`` is ``"nunique"`` (distinct values) or ``"spread"`` (``max - min``).
        """
        values = values if isinstance(values, pd.Series) else pd.Series(values)
        group = self.group
        if keep is not None:
            values, group = values[keep], group[keep]
        grouped = values.reset_index(drop=True).groupby(group, sort=True)
        out = grouped.nunique() if how == "nunique" else grouped.agg(lambda x: x.max() - x.min())
        return out.reindex(range(n_groups)).to_numpy(float)


def _clusters_per_group(coded: _CodedRows, cluster, variables, n_groups: int) -> np.ndarray:
    """Distinct clusters among each group's complete rows (the first cluster column; NaN without clustering)."""
    if not cluster:
        return np.full(n_groups, np.nan)
    column = cluster if isinstance(cluster, str) else cluster[0]
    used = [c for c in variables if c]
    names = list(dict.fromkeys([column, *formula_variables(" + ".join(used))]))
    keep = coded.complete(names)
    return np.nan_to_num(coded.per_group(coded.clusters, keep, "nunique", n_groups), nan=0.0)


_TEST_COLUMNS = ["term", "by", "n_groups", "test", "statistic", "df", "df_denom", "p_value", "n", "cov_type", "formula"]


def _slope_rows(table: pd.DataFrame, term: str) -> pd.DataFrame:
    """The per-group slopes ``C(_group)[g]:term`` of a fit's tidy table, with their group ``g``."""
    slopes = table[table["term"].str.endswith(f":{term}") & table["term"].str.startswith("C(_group)[")].copy()
    slopes["group"] = slopes["term"].str.extract(r"^C\(_group\)\[(.*)\]:", expand=False)
    return slopes


def wald_test(estimate, cov, contrasts, *, df_denom=None) -> dict:
    """Test the linear hypothesis ``contrasts @ estimate = 0`` (a Wald test).

    Parameters
    ----------
    estimate : array_like
        The estimates (length p).
    cov : array_like
        Their covariance matrix (p x p), model-based or cluster-robust.
    contrasts : array_like
        The hypothesis matrix L (q x p), one row per restriction.
    df_denom : float, optional
        Residual degrees of freedom: then the statistic is ``W / q`` on the F
        distribution with ``(q, df_denom)`` degrees of freedom (an OLS F
        test); otherwise ``W`` on the chi-squared with ``q``.

    Returns
    -------
    dict
        ``test`` (``"F"`` or ``"Wald chi2"``), ``statistic``, ``df`` (q),
        ``df_denom`` (NaN for chi-squared) and ``p_value``.

    Notes
    -----
    ``W = (L b)' (L V L')^{-1} (L b)``. With ``df_denom`` this is statsmodels'
    ``f_test`` (and R's ``anova`` of nested OLS models when ``V`` is the
    model-based covariance).

    Examples
    --------
    >>> import numpy as np, alignment_research as ar
    >>> out = ar.postestimation.wald_test([1.0, 0.0], np.eye(2) * 0.25, [[1.0, -1.0]])
    >>> out["test"], round(out["statistic"], 3)
    ('Wald chi2', 2.0)
    """
    b = np.asarray(estimate, float).reshape(-1)
    V = np.asarray(cov, float)
    L = np.atleast_2d(np.asarray(contrasts, float))
    diff = L @ b
    W = float(diff @ np.linalg.solve(L @ V @ L.T, diff))
    q = L.shape[0]
    if df_denom is not None:
        F = W / q
        return {"test": "F", "statistic": F, "df": q, "df_denom": float(df_denom),
                "p_value": float(st.f.sf(F, q, df_denom))}
    return {"test": "Wald chi2", "statistic": W, "df": q, "df_denom": np.nan, "p_value": float(st.chi2.sf(W, q))}


@dataclass(frozen=True)
class _GroupFit:
    """One term by one grouping column: per-group rows, the heterogeneity test, the fit's statistics."""

    table: pd.DataFrame
    test: dict
    fit: ModelResult


def _with_baseline(data, by, baseline, person):
    """``data`` with ``by`` joined from ``baseline`` (one row per person and spell) when ``data`` lacks it."""
    if by in data.columns or baseline is None:
        return data
    check_columns(baseline, [by], what="The baseline table")
    keys = [k for k in (person, "spell") if k is not None and k in data.columns and k in baseline.columns]
    if not keys:
        raise ModelError(f"Cannot join {by!r} from the baseline table: it shares no key ({person!r}, 'spell') with the data.")
    extra = baseline[[*keys, by]].drop_duplicates(subset=keys)
    return data.merge(extra, on=keys, how="left", validate="many_to_one")


def _pooled_groups(rows, by, *, min_group_size, person, people=None) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The rows of a group, small groups pooled (as text), the size gate of the groups, each row's gate position.

    The same for every term. ``rows`` all have a group; ``people``: their
    person codes (``pd.factorize``), when known. Every size rule counts
    distinct people, so the pooling and the gate read one row per group and
    person (a few per person instead of every interval of a table); only the
    gate's ``n_rows`` counts all rows. Pooling maps each level to its label
    whatever row it is on, so the pooled column of all rows is the label of
    its level.
    """
    if person is None or person not in rows.columns:  # rows are people, or the size rules raise their error
        rows = pool_small_levels(rows, by, min_group_size=min_group_size, person=person, small_pool="keep").data
        rows = rows.assign(**{by: rows[by].astype(str)})
        gate = size_gate(rows, by, min_group_size=min_group_size, person=person)
        level, labels = pd.factorize(rows[by])
        return rows, gate, pd.Index(gate[by]).get_indexer(labels)[level]
    level, levels = pd.factorize(rows[by])
    people = (pd.factorize(rows[person])[0] if people is None else people).astype(np.int64)  # -1: missing
    first = np.flatnonzero(~pd.Series(level * (people.max() + 2) + people + 1).duplicated().to_numpy())
    distinct = rows[[by, person]].iloc[first]  # one row per (group, person)
    distinct = pool_small_levels(distinct, by, min_group_size=min_group_size, person=person, small_pool="keep").data
    distinct = distinct.assign(**{by: distinct[by].astype(str)})
    row_of_level = np.empty(len(levels), dtype=np.intp)
    row_of_level[level[first][::-1]] = np.arange(len(first))[::-1]  # a distinct row of each level
    label = distinct[by].take(row_of_level)  # the pooled label of each level
    pooled = label.take(level)
    rows = rows.assign(**{by: pd.Series(pooled.to_numpy(), index=rows.index, dtype=pooled.dtype)})
    sizes = group_sizes(distinct, by, person=person)  # n: people
    counts = pd.Series(np.bincount(level, minlength=len(levels)), index=label.to_numpy())
    sizes["n_rows"] = sizes[by].map(counts.groupby(level=0).sum()).astype("int64")  # n_rows: every row
    gate = suppress_small_groups(sizes, count="n", min_group_size=min_group_size, group_cols=[by],
                                 value_cols=["n_rows"])
    return rows, gate, pd.Index(gate[by]).get_indexer(label.to_numpy())[level]


def _fit_one(coded: _CodedRows, gate, lhs, others, *, term, by, model, surv, cluster, method, min_group_size,
             person, alpha) -> _GroupFit:
    """Fit ``C(_group) + C(_group):term + others`` once on pooled rows, test equal slopes, widen the intervals."""
    rows = coded.rows
    reason = gate["suppression"].fillna("").to_numpy(str)
    small = reason == "small group"
    varies = np.nan_to_num(coded.per_group(rows[term], None, "spread", len(gate)), nan=0.0) > 0
    events = np.ones(len(gate), bool)
    if model == "cox":  # a slope needs exits at two values of the term at least, else it runs off to 0 or infinity
        used = [c for c in (term, *surv.values(), cluster, *formula_variables(" + ".join(others) or "1")) if c]
        exits = coded.complete(used, strict=True)  # the complete rows the fit will use, then their exits
        exits &= (pd.to_numeric(rows[surv["event"]], errors="coerce") == 1).to_numpy()
        events = np.nan_to_num(coded.per_group(rows[term], exits, "nunique", len(gate)), nan=0.0) >= 2
    clusters = _clusters_per_group(coded, cluster, [lhs, term, *surv.values(), *others], len(gate))
    enough = ~(clusters < FEW_CLUSTERS)  # a cluster-robust slope on a handful of clusters has no reliable error
    usable = ~small & varies & events & enough
    if not usable.any():
        raise ModelError(f"No group of {by!r} has {min_group_size}+ people with variation in {term!r}"
                         + (" and exits at two of its values." if model == "cox" else "."))
    clusters_named = [cluster] if isinstance(cluster, str) else list(cluster or [])
    read = [lhs, *formula_variables(" + ".join([term, *others])), *surv.values(), *clusters_named, _SUBJECT, "spell"]
    fit_rows = coded.fit_rows(usable[coded.group], by, [c for c in read if c])
    rhs = " + ".join(["C(_group)", f"C(_group):{term}", *others])
    if model == "cox":  # coxph's robust Wald test: chi-squared
        fitted = fit_cox(fit_rows, rhs, cluster=cluster, alpha=alpha, **surv)
        cov, df_denom, df_interval = fitted.model.var, None, None
    else:
        fitted = fit_ols(fit_rows, f"{lhs} ~ {rhs}", cluster=cluster, alpha=alpha)
        cov = fitted.cov_params
        if cluster:  # intervals on the normal as fit_ols; the F test on (q, G - 1), as statsmodels' f_test
            df_denom, df_interval = float(fitted.glance()["n_groups"].iloc[0] - 1), None
        else:  # t and F on N - K
            df_denom = df_interval = float(fitted.model.df_resid)
    full = fitted.tidy()
    slopes = _slope_rows(full, term)
    index = slopes.index.to_numpy()
    k = len(index)
    contrasts = np.zeros((k - 1, len(full)))
    contrasts[:, index[0]] = -1.0
    contrasts[np.arange(k - 1), index[1:]] = 1.0
    test = wald_test(full["estimate"], cov, contrasts, df_denom=df_denom) if k > 1 else {
        "test": "F" if df_denom else "Wald chi2", "statistic": np.nan, "df": 0, "df_denom": np.nan, "p_value": np.nan}
    test.update(n_groups=k, n=int(fitted.glance()["n"].iloc[0]), cov_type=fitted.glance()["cov_type"].iloc[0],
                formula=fitted.glance()["formula"].iloc[0])
    # simultaneous intervals: Bonferroni width over the k groups (conservative for Holm, see fit_group_effects)
    wide = tidy_table(slopes["group"], slopes["estimate"], slopes["std_error"], alpha=alpha / k,
                      dist="norm" if df_interval is None else "t", df=df_interval, ratio=model == "cox")
    slopes = adjust_pvalues(slopes, method=method)
    slopes["conf_low_adjusted"] = wide["conf_low"].to_numpy()
    slopes["conf_high_adjusted"] = wide["conf_high"].to_numpy()
    if model == "cox":
        slopes["exp_conf_low_adjusted"] = wide["exp_conf_low"].to_numpy()
        slopes["exp_conf_high_adjusted"] = wide["exp_conf_high"].to_numpy()
    out = gate[[by, "n"]].rename(columns={by: "group"}).merge(slopes.drop(columns="term"), on="group", how="left")
    out["n_clusters"] = np.where(small, np.nan, clusters)
    missing = f"no variation in {term}" if model == "ols" else f"not estimable: exits at fewer than two values of {term}"
    few = np.array([f"not estimated: only {c:.0f} {cluster} clusters (fewer than {FEW_CLUSTERS})" for c in clusters])
    out["note"] = np.where(
        small, f"suppressed: fewer than {min_group_size} people",
        np.where(~enough, few, np.where(out["estimate"].isna(), missing,
                 np.where(reason == "complementary", "size hidden: it would reveal a suppressed group", ""))))
    last = out["group"] == pooled_label(by, min_group_size=min_group_size)  # the pooled group last
    out = out.assign(_last=last).sort_values(["_last", "group"], kind="stable").drop(columns="_last")
    out.insert(0, "term", term)
    out.insert(1, "by", by)
    return _GroupFit(out.reset_index(drop=True), test, fitted)


def fit_group_effects(
    data: pd.DataFrame,
    formula: str,
    *,
    term,
    by,
    model: str = "ols",
    duration: str | None = None,
    entry: str | None = None,
    start: str | None = None,
    stop: str | None = None,
    event: str = "event",
    cluster: str | None = None,
    method: str = "holm",
    min_group_size: int = 5,
    person: str | None = "employee_id",
    baseline: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> GroupEffectsResult:
    """Estimate who an effect works for: one effect per group, simultaneous intervals and a heterogeneity test.

    For each ``term`` and each grouping column in ``by``, one model is fitted
    with a separate slope of ``term`` in every group and one common slope for
    the other covariates: ``outcome ~ C(by) + C(by):term + <other terms>``
    (OLS, ``model="ols"``) or the Cox model ``C(by) + C(by):term + <other
    terms>`` (``model="cox"``), with cluster-robust standard errors when
    ``cluster`` is given. Then:

    - the **heterogeneity test**: a joint Wald test that the per-group slopes
      are all equal (``k - 1`` contrasts for ``k`` groups), on the model's
      own covariance (cluster-robust when clustered). For a Cox model this is
      the Wald test of the ``term:C(by)`` interaction terms of
      ``term * C(by)``, the same hypothesis in another parametrisation;
    - **adjusted intervals**: per-group intervals at the simultaneous level
      ``1 - alpha`` over the ``k`` groups (Bonferroni width, see Notes),
      beside the Holm-adjusted p-values (``method``);
    - **small-group suppression** as in :func:`effect_by_group`: groups under
      ``min_group_size`` people are pooled, a pool still too small is listed
      without numbers or count, and complementary suppression hides the next
      smallest size. A term that only involves ``by`` (``C(job_level)`` when
      grouping by job level) is left out of the other terms.

    Parameters
    ----------
    {data}
    formula : str
        ``"outcome ~ term + other terms"`` for OLS; the right-hand side only
        for a Cox model. Each ``term`` must be one of the terms.
    term : str or list of str
        The covariate(s) whose effect is estimated per group (e.g.
        ``["alignment_cascade", "manager_program"]``).
    by : str or list of str
        The grouping column(s), e.g. ``["gender", "location", "job_level",
        "department"]``; one analysis per term and column.
    model : {"ols", "cox"}, default "ols"
        Engagement (OLS, :func:`fit_ols`) or retention (Cox, :func:`fit_cox`).
    duration, entry, start, stop : str, optional
        The survival-time columns of a Cox model, as in :func:`fit_cox`.
    {event}
    {cluster}
    method : {"holm", "fdr_bh", "bonferroni"}, default "holm"
        Adjustment of the per-group p-values.
    min_group_size : int, default 5
        Groups with fewer distinct people are pooled or suppressed.
    person : str or None, default "employee_id"
        Column identifying a person (group sizes count people).
    baseline : DataFrame, optional
        A table with one row per person and spell (the ``person`` table)
        from which a ``by`` column missing from ``data`` is joined on
        ``person`` (and ``spell``), e.g. ``location``.
    {alpha}

    Returns
    -------
    GroupEffectsResult
        ``tidy()``: one row per term, grouping column and group: ``term,
        estimate, std_error, statistic, p_value, conf_low, conf_high`` (per
        group, at level ``1 - alpha``; log hazard ratios for Cox, then
        ``exp_estimate, exp_conf_low, exp_conf_high``), ``by, group, n``
        (people; missing when hidden), ``n_clusters`` (distinct clusters
        among the group's complete rows; with clustering a group needs
        ``FEW_CLUSTERS`` (10) of them, else it is listed with a ``note``
        and not estimated: a cluster-robust error on a handful of clusters
        is far too small), ``p_adjusted,
        conf_low_adjusted, conf_high_adjusted`` (and
        ``exp_conf_low_adjusted, exp_conf_high_adjusted`` for Cox), ``note``. ``glance()``: one row
        per term and grouping column: ``term, by, n_groups`` (groups
        estimated), ``test`` (``"F"`` for OLS, ``"Wald chi2"`` for
        Cox), ``statistic, df, df_denom, p_value, n`` (rows
        used), ``cov_type, formula``. ``extras["fits"]``: the fitted models,
        keyed by ``(term, by)``.

    Raises
    ------
    ModelError
        An unknown model, a term not in the formula, a missing column, or no
        group that can be estimated.
    PrivacyError
        ``person`` is not a column of ``data``.

    See Also
    --------
    effect_by_group, describe_who_it_works_for

    Notes
    -----
    *Intervals.* Holm's step-down procedure has no interval of its own that
    keeps its extra power: the intervals compatible with it (Strassburger &
    Bretz, 2008) shrink to the null value for the rejected hypotheses. The
    intervals given are Bonferroni's, at level ``1 - alpha / k`` each, which
    cover all ``k`` group effects at once with probability at least ``1 -
    alpha``. Every group whose interval excludes no effect is also rejected
    by Holm (Holm's smallest adjusted p-value equals Bonferroni's, the others
    are smaller), so the intervals are conservative: a group can have
    ``p_adjusted < alpha`` while its interval still touches no effect.
    Intervals use the fit's own reference distribution: t with ``N - K``
    degrees of freedom for OLS without clustering, the normal otherwise.

    *Test.* ``W = (L b)' (L V L')^{-1} (L b)`` with ``L`` the contrasts of
    each slope against the first group's. For OLS without clustering the F
    statistic ``W / (k - 1)`` on ``(k - 1, N - K)`` degrees of freedom is
    statsmodels' ``f_test`` and R's ``anova(lm(y ~ g + x + ...), lm(y ~ g +
    g:x + ...))``. With clustering ``V`` is ``sandwich::vcovCL(type =
    "HC1")`` and ``W / (k - 1)`` is referred to the F distribution on ``(k -
    1, G - 1)`` degrees of freedom for ``G`` clusters (statsmodels'
    ``f_test`` on a clustered fit; Cameron & Miller's small-sample advice:
    the chi-squared over-rejects with few clusters). For Cox, ``V`` is
    ``coxph``'s robust variance with ``cluster(manager_id)`` and ``W`` is
    referred to the chi-squared with ``k - 1`` degrees of freedom, as R's
    robust Wald test.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure.
    *Scandinavian Journal of Statistics*, 6, 65-70.
    Cameron, A. C. & Miller, D. L. (2015). A practitioner's guide to
    cluster-robust inference. *Journal of Human Resources*, 50, 317-372.
    Strassburger, K. & Bretz, F. (2008). Compatible simultaneous lower
    confidence bounds for the Holm procedure and other Bonferroni-based
    closed tests. *Statistics in Medicine*, 27, 4914-4927.

    Examples
    --------
    {example}
    >>> who = ar.fit_group_effects(panel, "engagement ~ manager_program + alignment_cascade",
    ...                            term="manager_program", by=["gender", "department"], cluster="manager_id")
    >>> who.glance()[["term", "by", "test"]].values.tolist()
    [['manager_program', 'gender', 'F'], ['manager_program', 'department', 'F']]
    """
    if model not in ("ols", "cox"):
        raise ModelError(f"The value for `model` must be one of ['ols', 'cox'], but {model!r} was passed.")
    terms = [term] if isinstance(term, str) else list(term)
    bys = [by] if isinstance(by, str) else list(by)
    if model == "cox":
        lhs, rhs = None, formula
        surv = dict(duration=duration, entry=entry, start=start, stop=stop, event=event)
    else:
        (lhs, rhs), surv = split_formula(formula), {}
    rhs_terms = formula_terms(rhs)
    clusters = [cluster] if isinstance(cluster, str) else list(cluster or [])
    named = [*terms, *clusters, *(c for c in surv.values() if c is not None)]
    if all(c in data.columns for c in named) and (baseline is not None or all(c in data.columns for c in bys)):
        # (else a column is missing: the error below lists every column of the table, as it always has)
        data = columns_read(data, formula, [*named, person, "spell", *bys])
    if model == "cox":
        data = text_as_objects(data, [c for c in formula_variables(rhs) if c not in (person, "spell")])
    tables, tests, fits = [], [], {}
    # a Cox fit only factorises its cluster and person columns: it gets their codes (its text is hashed once here)
    counted = [c for c in dict.fromkeys([clusters[0] if clusters else None, _SUBJECT]) if c is not None
               and c not in formula_variables(formula)] if model == "cox" else []
    codes = {c: pd.factorize(data[c])[0] for c in dict.fromkeys([person, *clusters[:1], *counted])
             if c is not None and c in data.columns}
    for column in bys:
        rows = _with_baseline(data, column, baseline, person)  # a left join: the same rows in the same order
        check_columns(rows, [column, *terms])
        for t in terms:
            if t not in rhs_terms:
                raise ModelError(f"`term` {t!r} must be one of the formula's terms {rhs_terms}.")
        coded = _CodedRows.of(rows, column, codes={c: v for c, v in codes.items() if c != column}, cluster=cluster,
                              person=person, min_group_size=min_group_size, counted=counted)
        gate = coded.gate
        for t in terms:
            others = [o for o in rhs_terms if o != t and formula_variables(o) != [column]]
            one = _fit_one(coded, gate, lhs, others, term=t, by=column, model=model, surv=surv, cluster=cluster,
                           method=method, min_group_size=min_group_size, person=person, alpha=alpha)
            tables.append(one.table)
            tests.append({"term": t, "by": column, **one.test})
            fits[(t, column)] = one.fit
    table = pd.concat(tables, ignore_index=True)
    ratio = model == "cox"
    lead = TIDY_COLUMNS + (RATIO_COLUMNS if ratio else [])
    tail = _GROUP_COLUMNS + (["exp_conf_low_adjusted", "exp_conf_high_adjusted"] if ratio else []) + ["note"]
    first = fits[(terms[0], bys[0])]
    caveats = [c for f in fits.values() for c in f.caveats]
    return GroupEffectsResult(
        "group_effects", table[lead + tail], pd.DataFrame(tests)[_TEST_COLUMNS], model=fits,
        extras={"fits": fits}, caveats=caveats, alpha=alpha, outcome=first.outcome, scale=first.scale,
        time_unit=first.time_unit, measure=first.measure, min_group_size=min_group_size,
    )


# Shared parameter text (seaborn's docstring pattern).
for _f in (predicted_values, marginal_effects, adjust_pvalues, effect_by_group, fit_group_effects):
    fill_doc(_f, example=_EXAMPLE_PANEL)
del _f
