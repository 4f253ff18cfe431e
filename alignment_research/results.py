"""The result object every ``fit_*`` function returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["ModelResult", "TIDY_COLUMNS"]

#: The columns every ``tidy()`` table starts with, in this order.
TIDY_COLUMNS = ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]


@dataclass(frozen=True)
class ModelResult:
    """A fitted model: tidy coefficients, a one-row summary, a plot.

    Attributes
    ----------
    name : str
        Short model name (``"cox"``, ``"ols"``, ...).
    table : DataFrame
        One row per term, columns ``TIDY_COLUMNS`` plus ``exp_estimate``,
        ``exp_conf_low``, ``exp_conf_high`` where a ratio applies.
    summary : DataFrame
        One row: ``n``, ``events`` where relevant, ``log_likelihood``, ``aic``,
        concordance or R², ``cov_type``, ``formula``.
    model : object
        The backend fit (lifelines fitter, statsmodels results, or our own
        estimator state) for experts.
    extras : dict
        Further tidy tables a method produces (diagnostics, curves, ...).
    caveats : tuple of str
        Statistical caveats of the fit, one sentence each (few clusters,
        separation, a variance component barely identified, ...): the text of
        every ``StatisticalWarning`` the fit raised, kept so that it reaches
        reports even where warnings are silenced. Empty when there are none.
    """

    name: str
    table: pd.DataFrame
    summary: pd.DataFrame
    model: Any = None
    extras: dict = field(default_factory=dict)
    caveats: tuple = ()

    def __post_init__(self):
        # a list (or any iterable of sentences) is stored as an immutable tuple without duplicates
        object.__setattr__(self, "caveats", tuple(dict.fromkeys(str(c) for c in (self.caveats or ()))))

    def tidy(self) -> pd.DataFrame:
        """Return one row per term: estimate, standard error, test, interval."""
        return self.table.copy()

    def glance(self) -> pd.DataFrame:
        """Return a one-row summary of the fit."""
        return self.summary.copy()

    def plot(self, *, ax=None, **kwargs):
        """Draw a forest plot of the estimates and return the Axes."""
        from .plots import plot_forest

        ratio = "exp_estimate" in self.table.columns
        return plot_forest(self.table, ratio=ratio, ax=ax, **kwargs)

    def __repr__(self) -> str:
        head = self.summary.round(3).to_string(index=False)
        body = self.table.round(3).to_string(index=False)
        notes = "".join(f"\nCaveat: {c}" for c in self.caveats)
        return f"<{type(self).__name__}: {self.name}>\n{head}\n\n{body}" + (f"\n{notes}" if notes else "")

    def _repr_html_(self) -> str:
        import html

        head = self.summary.round(3).to_html(index=False)
        body = self.table.round(3).to_html(index=False)
        notes = "".join(f"<li>{html.escape(c)}</li>" for c in self.caveats)
        notes = f"<p><b>Caveats</b></p><ul>{notes}</ul>" if notes else ""
        return f"<p><b>{type(self).__name__}: {self.name}</b></p>{head}<br>{body}{notes}"
