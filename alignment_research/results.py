"""The result object every ``fit_*`` function returns, and the one builder of tidy tables."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

__all__ = ["ModelResult", "TIDY_COLUMNS", "RATIO_COLUMNS", "tidy_table", "conf_label"]

#: The columns every ``tidy()`` table starts with, in this order.
TIDY_COLUMNS = ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]

#: The columns a ratio model (Cox, logit, ordinal) adds: the estimate and interval exponentiated.
RATIO_COLUMNS = ["exp_estimate", "exp_conf_low", "exp_conf_high"]

#: What ``scale`` may be: an additive difference, or a ratio whose log is estimated.
SCALES = ("difference", "ratio")

_REPR_ROWS = 12  # terms printed by ``repr``; ``tidy()`` and ``summary()`` have them all


def conf_label(alpha: float) -> str:
    """Name the confidence level of ``alpha``, e.g. ``"95% CI"``.

    Parameters
    ----------
    alpha : float
        Intervals are at level ``1 - alpha``.

    Returns
    -------
    str
        ``"<level>% CI"`` with the level written without trailing zeros.

    Examples
    --------
    >>> conf_label(0.05), conf_label(0.5), conf_label(0.001)
    ('95% CI', '50% CI', '99.9% CI')
    """
    return f"{100 * (1 - float(alpha)):.10g}% CI"


def tidy_table(terms, estimate, std_error, *, alpha: float = 0.05, dist: str = "norm", df=None,
               ratio: bool = False, statistic=None, p_value=None, conf_low=None, conf_high=None,
               **extra) -> pd.DataFrame:
    """Build a tidy coefficient table: one row per term, the columns of ``TIDY_COLUMNS``.

    Every model builds its table here, so intervals always follow ``alpha`` and
    the reference distribution, and ratio columns are added the same way.

    Parameters
    ----------
    terms : sequence of str
        Term names.
    estimate, std_error : array-like
        Estimates (log ratios for a ratio model) and their standard errors.
    alpha : float, default 0.05
        Intervals are at level ``1 - alpha``.
    dist : {"norm", "t"}, default "norm"
        Reference distribution of ``estimate / std_error``.
    df : float or array-like, optional
        Degrees of freedom for ``dist="t"`` (one value, or one per term).
    ratio : bool, default False
        Add ``exp_estimate, exp_conf_low, exp_conf_high``.
    statistic, p_value, conf_low, conf_high : array-like, optional
        Given values replace the computed ones (a likelihood-ratio test, a
        bootstrap interval, ...).
    **extra : array-like
        Further columns appended after the standard ones (e.g. ``std_estimate``).

    Returns
    -------
    DataFrame
        ``term, estimate, std_error, statistic, p_value, conf_low, conf_high``,
        then the ratio columns and ``extra``.

    Examples
    --------
    >>> t = tidy_table(["x"], [0.5], [0.25], ratio=True)
    >>> round(float(t["conf_low"].iloc[0]), 4), round(float(t["exp_estimate"].iloc[0]), 4)
    (0.01, 1.6487)
    """
    if dist not in ("norm", "t"):
        raise ValueError(f"dist must be 'norm' or 't', not {dist!r}")
    est = np.asarray(estimate, float).reshape(-1)
    se = np.asarray(std_error, float).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = est / se if statistic is None else np.asarray(statistic, float).reshape(-1)
    if dist == "t":
        p = 2 * st.t.sf(np.abs(stat), df)
        q = st.t.ppf(1 - alpha / 2, df)
    else:
        p = 2 * st.norm.sf(np.abs(stat))
        q = st.norm.ppf(1 - alpha / 2)
    table = pd.DataFrame(
        {
            "term": list(terms),
            "estimate": est,
            "std_error": se,
            "statistic": stat,
            "p_value": p if p_value is None else np.asarray(p_value, float).reshape(-1),
            "conf_low": est - q * se if conf_low is None else np.asarray(conf_low, float).reshape(-1),
            "conf_high": est + q * se if conf_high is None else np.asarray(conf_high, float).reshape(-1),
        }
    )
    if ratio:
        with np.errstate(over="ignore"):  # a diverging estimate gives an infinite ratio (a caveat says so)
            for exp_col, col in zip(RATIO_COLUMNS, ("estimate", "conf_low", "conf_high")):
                table[exp_col] = np.exp(table[col])
    for column, values in extra.items():
        if values is not None:
            table[column] = values
    return table


class ResultSummary(str):
    """The text of :meth:`ModelResult.summary`; shows as a fixed-width block in a notebook."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


@dataclass(frozen=True, repr=False)
class ModelResult:
    """A fitted model: tidy coefficients, a one-row summary, a plot, and what it is.

    Subclasses are declared ``@dataclass(frozen=True, repr=False)`` so that
    ``print(result)`` stays the short summary of this class.

    Attributes
    ----------
    name : str
        Short model name (``"cox"``, ``"ols"``, ...).
    table : DataFrame
        One row per term, columns ``TIDY_COLUMNS`` plus ``RATIO_COLUMNS`` where
        a ratio applies (built by :func:`tidy_table`).
    stats : DataFrame
        One row of fit statistics: ``n``, ``events`` where relevant,
        ``log_likelihood``, ``aic``, concordance or R², ``cov_type``, ``formula``.
    model : object
        The backend fit (statsmodels results or our own estimator state) for experts.
    extras : dict
        Further tidy tables a method produces (diagnostics, curves, ...).
    caveats : tuple of str
        Statistical caveats of the fit, one sentence each (few clusters,
        separation, a variance component barely identified, ...): the text of
        every ``StatisticalWarning`` the fit raised, kept so that it reaches
        reports even where warnings are silenced. Empty when there are none.
    alpha : float
        Intervals in ``table`` are at level ``1 - alpha``.
    outcome : str or None
        What the model explains (``"voluntary exit"``, ``"engagement"``, ...).
    scale : {"difference", "ratio"}
        ``"ratio"`` when ``estimate`` is a log ratio (hazard, odds) and the
        ``exp_*`` columns hold the ratio; ``"difference"`` otherwise.
    time_unit : str or None
        Unit of the time axis of a survival model (``"months"``), else None.
    measure : str or None
        What one estimate is, in words a report can use: ``"hazard ratio"``,
        ``"odds ratio"``, ``"difference"`` (None: say ``"ratio"`` or
        ``"difference"`` after ``scale``).

    Examples
    --------
    >>> import pandas as pd
    >>> res = ModelResult("ols", tidy_table(["x"], [0.3], [0.1]), pd.DataFrame({"n": [100]}),
    ...                   outcome="engagement")
    >>> res.conf_label, res.scale
    ('95% CI', 'difference')
    """

    name: str
    table: pd.DataFrame
    stats: pd.DataFrame
    model: Any = None
    extras: dict = field(default_factory=dict)
    caveats: tuple = ()
    alpha: float = 0.05
    outcome: str | None = None
    scale: str = "difference"
    time_unit: str | None = None
    measure: str | None = None

    def __post_init__(self):
        # a list (or any iterable of sentences) is stored as an immutable tuple without duplicates
        object.__setattr__(self, "caveats", tuple(dict.fromkeys(str(c) for c in (self.caveats or ()))))
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, not {self.scale!r}")
        if not 0 < float(self.alpha) < 1:
            raise ValueError(f"alpha must be between 0 and 1, not {self.alpha!r}")

    @property
    def conf_label(self) -> str:
        """The interval level as text, e.g. ``"95% CI"``."""
        return conf_label(self.alpha)

    @property
    def measure_name(self) -> str:
        """``measure``, or ``"ratio"``/``"difference"`` after ``scale`` when none was given."""
        return self.measure or self.scale

    @property
    def is_ratio(self) -> bool:
        """Whether estimates are log ratios (read ``exp_*`` for the ratio)."""
        return self.scale == "ratio"

    def tidy(self) -> pd.DataFrame:
        """Return one row per term: estimate, standard error, test, interval."""
        return self.table.copy()

    def glance(self) -> pd.DataFrame:
        """Return the one-row summary of the fit."""
        return self.stats.copy()

    def plot(self, *, ax=None, **kwargs):
        """Draw a forest plot of the estimates and return the Axes."""
        from .plots import plot_forest  # deferred: matplotlib is heavy and only needed to draw

        return plot_forest(self.table, ratio="exp_estimate" in self.table, ax=ax, **kwargs)

    # ------------------------------------------------------------------ text
    def _headline(self) -> str:
        parts = [self.name]
        if self.outcome:
            parts.append(f"outcome: {self.outcome}")
        if len(self.stats) and "n" in self.stats:
            n = self.stats["n"].iloc[0]
            if pd.notna(n):
                parts.append(f"n = {int(n):,}")
        parts.append(f"{self.scale}{' (exp shown)' if self.is_ratio else ''}")
        parts.append(self.conf_label)
        return f"{type(self).__name__}: " + ", ".join(parts)

    def _display_table(self) -> pd.DataFrame:
        """The columns a reader needs: the ratio and its interval for ratio models."""
        t = self.table
        if self.is_ratio and "exp_estimate" in t:
            cols = ["term", "exp_estimate", "exp_conf_low", "exp_conf_high", "p_value"]
        else:
            cols = ["term", "estimate", "conf_low", "conf_high", "p_value"]
        return t[[c for c in cols if c in t]]

    def __repr__(self) -> str:
        table = self._display_table()
        lines = [f"<{self._headline()}>"]
        if len(table):
            lines.append(table.head(_REPR_ROWS).round(3).to_string(index=False))
        if len(table) > _REPR_ROWS:
            lines.append(f"... {len(table) - _REPR_ROWS} more terms: .tidy() has them all")
        lines += [f"Caveat: {c}" for c in self.caveats]
        return "\n".join(lines)

    def summary(self) -> ResultSummary:
        """Return a statsmodels-style text summary: fit statistics, then every term.

        Returns
        -------
        ResultSummary
            A string; in a notebook it shows as a fixed-width block.

        Examples
        --------
        >>> import pandas as pd
        >>> res = ModelResult("ols", tidy_table(["x"], [0.3], [0.1]), pd.DataFrame({"n": [100]}))
        >>> "[0.025" in res.summary()
        True
        """
        width = 78
        info = [("Model", self.name), ("Outcome", self.outcome or "-"), ("Scale", self.scale),
                ("Intervals", self.conf_label)]
        if self.time_unit:
            info.append(("Time unit", self.time_unit))
        if len(self.stats):
            for key, value in self.stats.iloc[0].items():
                info.append((str(key), _fmt_value(value)))
        cells = [f"{k + ':':<16}{v:>21}" if len(v) <= 21 else f"{k + ':':<16}{v}" for k, v in info]
        rows, pending = [], []
        for cell in cells:  # two columns of key: value, long values on a line of their own
            if len(cell) > 37:
                rows.append(cell)
                continue
            pending.append(cell)
            if len(pending) == 2:
                rows.append(f"{pending[0]}    {pending[1]}")
                pending = []
        if pending:
            rows.append(pending[0])
        lo, hi = f"[{self.alpha / 2:g}", f"{1 - self.alpha / 2:g}]"
        t = self.table
        names = [str(x) for x in t["term"]] if "term" in t else []
        name_w = max([len(n) for n in names] + [10])
        head = f"{'':<{name_w}} {'coef':>10} {'std err':>10} {'stat':>8} {'P>|stat|':>9} {lo:>10} {hi:>10}"
        body = []
        for i, name in enumerate(names):
            vals = [t[c].iloc[i] if c in t else np.nan for c in TIDY_COLUMNS[1:]]
            text = [_fmt_num(v) for v in vals]
            text[3] = "" if pd.isna(vals[3]) else f"{float(vals[3]):.4f}"  # p-values as statsmodels: 0.0000
            body.append(f"{name:<{name_w}} " + " ".join(f"{v:>{w}}" for v, w in zip(text, (10, 10, 8, 9, 10, 10))))
        rule = "=" * max(width, len(head))
        out = [rule, *rows, rule, head, "-" * len(rule), *body, rule]
        if self.is_ratio and "exp_estimate" in t:
            out.append("coef is a log ratio; tidy() has the ratio in exp_estimate.")
        out += [f"Caveat: {c}" for c in self.caveats]
        return ResultSummary("\n".join(out))

    def _repr_html_(self) -> str:
        head = self.stats.round(3).to_html(index=False)
        body = self.table.round(3).to_html(index=False)
        notes = "".join(f"<li>{html.escape(c)}</li>" for c in self.caveats)
        notes = f"<p><b>Caveats</b></p><ul>{notes}</ul>" if notes else ""
        return f"<p><b>{type(self).__name__}: {self.name}</b></p>{head}<br>{body}{notes}"


def _fmt_num(value) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if np.isnan(v):
        return ""
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"{v:.3e}"
    return f"{v:.4f}"


def _fmt_value(value) -> str:
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "-"
        return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e12 else f"{value:.4g}"
    return str(value)
