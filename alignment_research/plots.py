"""Figures: one style for the whole toolkit, axes-level functions over tidy tables."""

from __future__ import annotations

import importlib
import sys

import matplotlib
import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, NullFormatter

__all__ = ["set_theme", "plot_forest", "axes_for", "figure_labels", "figure_text", "PALETTE"]

#: Colour-blind-safe palette used everywhere.
PALETTE = "colorblind"


def set_theme(**kwargs) -> None:
    """Apply the toolkit's figure style (explicit call, never on import).

    Parameters
    ----------
    **kwargs
        Passed to :func:`seaborn.set_theme`, overriding the defaults.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.set_theme()
    """
    kwargs.setdefault("style", "whitegrid")
    kwargs.setdefault("palette", PALETTE)
    kwargs.setdefault("context", "notebook")
    kwargs.setdefault("rc", {"figure.figsize": (7.5, 4.5), "figure.dpi": 100, "axes.titleweight": "bold"})
    sns.set_theme(**kwargs)
    _show_figure_words()


def _show_figure_words() -> None:
    """In an IPython kernel, make a displayed figure's plain-text output list its words (``figure_text``).

    A notebook figure is stored as a picture plus a line of text; with this the
    text names every title, axis label and legend entry, so nbval compares a
    figure's words when it re-executes a notebook, and a test can read them
    from the committed notebooks without executing them again.
    """
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is None:
        return
    backend = matplotlib.get_backend()
    if backend.startswith("module://"):
        # loading the inline backend resets every formatter of Figure (IPython's select_figure_formats), so it is
        # loaded first and the words registered after it
        importlib.import_module(backend.removeprefix("module://"))
    plain = shell.display_formatter.formatters["text/plain"]
    plain.for_type(matplotlib.figure.Figure, lambda fig, p, cycle: p.text(figure_text(fig)))


def axes_for(ax=None, *, figsize=None):
    """Return the Axes a plot function draws on: ``ax`` itself, or a new figure's Axes.

    Every plot function calls this first, so a plot never draws over whatever
    figure happens to be current (an earlier ``result.plot()``, say).

    Parameters
    ----------
    ax : matplotlib Axes, optional
        Axes given by the caller; returned unchanged.
    figsize : tuple of float, optional
        Size in inches of the new figure when ``ax`` is None; the theme's
        ``figure.figsize`` by default.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``, or the single Axes of a new figure.

    Examples
    --------
    >>> import alignment_research as ar
    >>> first, second = ar.plots.axes_for(), ar.plots.axes_for()
    >>> first.figure is second.figure
    False
    """
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


_RATIO_TICKS = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0])


def _plain_log_axis(ax, values) -> None:
    """Log-scale x axis labelled with plain numbers (0.5, 1, 2), never 3x10^-1."""
    ax.set_xscale("log")
    values = np.asarray(values, float)
    values = values[np.isfinite(values) & (values > 0)]
    lo, hi = values.min() / 1.15, values.max() * 1.15
    ax.set_xlim(lo, hi)
    ticks = _RATIO_TICKS[(_RATIO_TICKS >= lo) & (_RATIO_TICKS <= hi)]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_forest(data: pd.DataFrame, *, ratio: bool = False, terms=None, xlabel: str | None = None, ax=None,
                **kwargs):
    """Draw estimates with confidence intervals, one row per term.

    Parameters
    ----------
    data : DataFrame
        A ``tidy()`` table: ``term, estimate, conf_low, conf_high`` and, when
        ``ratio``, ``exp_estimate, exp_conf_low, exp_conf_high``.
    ratio : bool, default False
        Plot hazard/odds ratios on a log axis with a reference line at 1.
    terms : list of str, optional
        Terms to show (in this order); all by default.
    xlabel : str, optional
        The x-axis label, with its unit (e.g. "Exit rate ratio (95% CI, log
        scale)"); by default "Ratio (95% CI, log scale)" or "Estimate (95% CI)".
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.errorbar`.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> t = pd.DataFrame({"term": ["a"], "estimate": [0.2], "conf_low": [0.1], "conf_high": [0.3]})
    >>> ax = ar.plot_forest(t)
    """
    ax = axes_for(ax)
    table = data if terms is None else data.set_index("term").loc[list(terms)].reset_index()
    if ratio:
        if "exp_conf_low" in table:
            est, lo, hi = (table[c].to_numpy(float) for c in ("exp_estimate", "exp_conf_low", "exp_conf_high"))
        else:
            est, lo, hi = (np.exp(table[c].to_numpy(float)) for c in ("estimate", "conf_low", "conf_high"))
    else:
        est, lo, hi = (table[c].to_numpy(float) for c in ("estimate", "conf_low", "conf_high"))
    y = np.arange(len(table))[::-1]
    kwargs.setdefault("fmt", "o")
    kwargs.setdefault("color", "black")
    kwargs.setdefault("capsize", 3)
    ax.errorbar(est, y, xerr=[est - lo, hi - est], **kwargs)
    ax.axvline(1.0 if ratio else 0.0, color="grey", linestyle="--", linewidth=1)
    if ratio:
        _plain_log_axis(ax, np.concatenate([lo, hi, [1.0]]))
    ax.set_yticks(y)
    ax.set_yticklabels(table["term"].astype(str))
    ax.set_xlabel(xlabel or ("Ratio (95% CI, log scale)" if ratio else "Estimate (95% CI)"))
    return ax


def figure_labels(fig) -> pd.DataFrame:
    """Every word a figure shows a reader outside its data: titles, axis labels, legend titles and entries.

    Tests use it to check that what was drawn reads in words (no 0/1
    legend, no raw column name), on any figure the toolkit or a notebook drew.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.

    Returns
    -------
    pandas.DataFrame
        ``axes, kind, text``: ``axes`` numbers the figure's Axes (-1 for a
        figure-level legend or title), ``kind`` is one of "title", "xlabel",
        "ylabel", "legend title", "legend"; empty texts are left out.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ax = ar.plots.axes_for()
    >>> _ = ax.plot([0, 1], [0, 1], label="Manager in the programme")
    >>> _ = ax.legend(title="Team"); _ = ax.set_xlabel("Tenure (months)")
    >>> ar.figure_labels(ax.figure)["text"].tolist()
    ['Tenure (months)', 'Team', 'Manager in the programme']
    """
    rows = []

    def legend_rows(number, legend):
        if legend is None:
            return
        rows.append((number, "legend title", legend.get_title().get_text()))
        rows.extend((number, "legend", t.get_text()) for t in legend.get_texts())

    for number, ax in enumerate(fig.axes):
        rows += [(number, "title", ax.get_title()), (number, "xlabel", ax.get_xlabel()),
                 (number, "ylabel", ax.get_ylabel())]
        legend_rows(number, ax.get_legend())
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None:
        rows.append((-1, "title", suptitle.get_text()))
    for legend in fig.legends:
        legend_rows(-1, legend)
    table = pd.DataFrame(rows, columns=["axes", "kind", "text"])
    return table.loc[table["text"].str.strip() != ""].reset_index(drop=True)


def figure_text(fig) -> str:
    """A figure in words: matplotlib's one-line summary, then one ``kind: text`` line per word it shows.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.

    Returns
    -------
    str
        ``<Figure size WxH with N Axes>`` followed by the rows of
        :func:`figure_labels` as ``kind: text`` lines (line breaks inside a
        text become spaces).

    Examples
    --------
    >>> import alignment_research as ar
    >>> ax = ar.plots.axes_for()
    >>> _ = ax.set_xlabel("Tenure (months)")
    >>> ar.plots.figure_text(ax.figure).splitlines()[1:]
    ['xlabel: Tenure (months)']
    """
    words = figure_labels(fig)
    lines = [repr(fig)] + [f"{kind}: {' '.join(str(text).split())}" for kind, text in zip(words["kind"], words["text"])]
    return "\n".join(lines)
