"""Day numbers: the engine's integer calendar (days since 1970-01-01), and two link functions.

The engine works on integer day numbers, never on dates: ``to_day_number`` turns a
date into one, ``to_dates`` turns an array back into ``datetime64[ns]``.
``NO_DAY`` (the largest int64) stands for "no date" (no termination, no
programme start), so an open spell compares as ending after every day.
``frame_from_parts`` joins the rows the engine keeps batch by batch as numpy
columns (a DataFrame per batch cost more than drawing the batch).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

__all__ = ["NO_DAY", "YEAR", "cycle_years", "expit", "frame_from_parts", "logit", "to_dates", "to_day_number"]

if TYPE_CHECKING:  # annotations only
    from .truth import Truth

_DAY0 = np.datetime64("1970-01-01", "D")
NO_DAY = np.iinfo(np.int64).max  # "no date" sentinel in internal day arrays
YEAR = 365.25  # days per year, for rates per year and person-years


def to_day_number(d: dt.date) -> int:
    """Convert a date into its day number (days since 1970-01-01).

    Parameters
    ----------
    d : datetime.date
        The date.

    Returns
    -------
    int
        Its day number.

    Examples
    --------
    >>> import datetime as dt
    >>> from alignment_research.simulate.days import to_day_number
    >>> to_day_number(dt.date(1970, 1, 11))
    10
    """
    return int((np.datetime64(d, "D") - _DAY0).astype(np.int64))


def to_dates(days) -> np.ndarray:
    """Convert day numbers into ``datetime64[ns]`` dates (``NaT`` for ``NO_DAY``).

    Parameters
    ----------
    days : array-like of int
        Day numbers, `NO_DAY` for "no date".

    Returns
    -------
    numpy.ndarray
        The dates, ``datetime64[ns]``.

    Examples
    --------
    >>> from alignment_research.simulate.days import NO_DAY, to_dates
    >>> to_dates([10, NO_DAY]).astype(str).tolist()
    ['1970-01-11T00:00:00.000000000', 'NaT']
    """
    days = np.asarray(days, dtype=np.int64)
    out = (_DAY0 + np.where(days == NO_DAY, 0, days).astype("timedelta64[D]")).astype("datetime64[ns]")
    out[days == NO_DAY] = np.datetime64("NaT")
    return out


def cycle_years(truth: Truth) -> list[int]:
    """List the calendar years of the review cycles: the year before the window, then every window year.

    Parameters
    ----------
    truth : Truth
        The true parameters (``window_start``, ``window_end``).

    Returns
    -------
    list of int
        The cycle years in order.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research.simulate.days import cycle_years
    >>> truth = ar.default_truth()
    >>> cycle_years(truth) == list(range(truth.window_start.year - 1, truth.window_end.year + 1))
    True
    """
    return list(range(truth.window_start.year - 1, truth.window_end.year + 1))


def expit(x):
    """Compute the logistic function ``1 / (1 + exp(-x))``.

    Parameters
    ----------
    x : float or numpy.ndarray
        Values on the logit scale.

    Returns
    -------
    float or numpy.ndarray
        Probabilities.

    Examples
    --------
    >>> from alignment_research.simulate.days import expit
    >>> float(expit(0.0))
    0.5
    """
    return 1.0 / (1.0 + np.exp(-x))


def logit(p):
    """Compute the log odds ``log(p / (1 - p))``, the inverse of `expit`.

    Parameters
    ----------
    p : float or numpy.ndarray
        Probabilities strictly between 0 and 1.

    Returns
    -------
    float or numpy.ndarray
        Values on the logit scale.

    Examples
    --------
    >>> from alignment_research.simulate.days import expit, logit
    >>> float(logit(0.5)), round(float(expit(logit(0.2))), 12)
    (0.0, 0.2)
    """
    return np.log(p) - np.log1p(-p)


def frame_from_parts(parts: list[dict], columns: list[str]) -> pd.DataFrame:
    """One table from batches of rows, each batch ``{column: numpy array}`` (the engine's row stores).

    Parameters
    ----------
    parts : list of dict
        The batches, in order; each holds an array of equal length per column.
    columns : list of str
        The columns, in the order wanted.

    Returns
    -------
    pandas.DataFrame
        The batches' rows one after another, with a fresh ``RangeIndex``: the
        table ``pd.concat`` of one DataFrame per batch gives, dtypes included.

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.days import frame_from_parts
    >>> parts = [{"spell": np.array([0, 1]), "kind": np.array(["a", "b"], object)},
    ...          {"spell": np.array([2]), "kind": np.array(["c"], object)}]
    >>> frame_from_parts(parts, ["spell", "kind"])["kind"].tolist()
    ['a', 'b', 'c']
    """
    return pd.DataFrame({c: np.concatenate([part[c] for part in parts]) for c in columns})
